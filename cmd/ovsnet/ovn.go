package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/ovn"
)

func ovnCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "ovn join|leave|status",
		Short: "Make this host a chassis of an OVN deployment (networks across many hosts)",
		Long: `OVN is Open vSwitch's own distributed control plane: a central node runs the
northbound and southbound databases and ovn-northd (Debian's ovn-central),
and every host runs ovn-controller (ovn-host), which programs the host's
OVS from the southbound database and makes Geneve tunnels to every other
chassis by itself. Past two or three hosts it replaces ovsnet's static
tunnel mesh: a new host needs one command, on that host only.

"ovsnet ovn join" sets what ovn-controller reads in this host's
Open_vSwitch row (ovn-remote, ovn-encap-type, ovn-encap-ip, system-id, and
ovn-bridge-datapath-type=netdev where the kernel has no openvswitch
module, in which case the encap address moves to an OVS bridge "ovs-DEV",
as ovsnet's OVS tunnels do), then checks that ovn-controller runs and that
its chassis appears in the southbound database with that address.`,
		Example: "  ovsnet ovn join --sb tcp:192.0.2.10:6642 --encap-ip 192.0.2.1\n  ovsnet ovn status -o json\n  ovsnet ovn leave",
	}
	c.AddCommand(ovnJoinCmd(g), ovnLeaveCmd(g), ovnStatusCmd(g))
	return c
}

func ovnJoinCmd(g *globals) *cobra.Command {
	var o ovn.JoinOptions
	var encap string
	c := &cobra.Command{
		Use:   "join --sb tcp:CENTRAL:6642 --encap-ip IP [--encap-type geneve|vxlan] [--uplink DEV] [--wait 10s]",
		Short: "Join the OVN deployment whose southbound database is --sb",
		Long: `Join this host to the OVN deployment whose southbound database is --sb, with
--encap-ip as its tunnel address (an address of this host the other
chassis reach). It keeps an existing system-id (the chassis' name) or makes
one, and waits up to --wait for the chassis to appear in the southbound
database. Running it again with the same options changes nothing; with
others, it moves the chassis to them.

--uplink DEV makes the host able to hold a router's gateway (ovsnet router
create --gateway-chassis): DEV, a device on the outside segment with no
address of its own, goes on an OVS bridge "ovn-uplink" that OVN knows as
the physical network "ovsnet-uplink". Join again without it, or leave, to
give DEV back.`,
		Example: "  ovsnet ovn join --sb tcp:192.0.2.10:6642 --encap-ip 192.0.2.1\n  ovsnet ovn join --sb tcp:192.0.2.10:6642 --encap-ip 192.0.2.1 --uplink eth1",
		Args:    exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			if o.SB == "" {
				return fmt.Errorf("--sb is required: the southbound database, such as tcp:192.0.2.10:6642")
			}
			a, err := netip.ParseAddr(encap)
			if err != nil {
				return fmt.Errorf("--encap-ip %q is not an address: give this host's address on the network between the chassis", encap)
			}
			o.EncapIP = a
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			st, err := ovn.Join(c.Context(), h, o)
			if st != nil && err == nil {
				return g.print(c, st, fmt.Sprintf("joined OVN at %s as chassis %s (%s %s)", st.SB, st.SystemID, st.EncapType, st.EncapIP))
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.SB, "sb", "", "the southbound database: tcp:HOST:6642 (or unix:PATH)")
	f.StringVar(&o.NB, "nb", "", "the northbound database (tcp:HOST:6641), where ovsnet network makes networks unless told otherwise")
	f.StringVar(&encap, "encap-ip", "", "this host's tunnel address")
	f.StringVar(&o.EncapType, "encap-type", "geneve", "geneve or vxlan")
	f.StringVar(&o.Uplink, "uplink", "", "a device on the outside segment, for routers' gateways on this chassis")
	f.DurationVar(&o.Wait, "wait", 10*time.Second, "how long to wait for the chassis in the southbound database")
	return c
}

func ovnLeaveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Undo ovsnet ovn join",
		Long: `Remove what "ovsnet ovn join" set (system-id stays), remove the chassis from
the southbound database, remove the uplink bridge, and give the encap
address back to its device if no ovsnet tunnel uses it. A host ovsnet did not join is left alone (it
says how to leave by hand). Leaving twice is fine.`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := ovn.Leave(c.Context(), h); err != nil {
				return err
			}
			return g.print(c, map[string]bool{"left": true}, "left OVN (or was not a member)")
		},
	}
}

func ovnStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this host's chassis: its settings, ovn-controller, the southbound database",
		Args:  exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			st, err := ovn.Read(c.Context(), h)
			if st == nil {
				return err
			}
			text := fmt.Sprintf("chassis %s, southbound %s, %s %s, ovn-controller running: %v, in the southbound database: %v (%s)",
				st.SystemID, st.SB, st.EncapType, st.EncapIP, st.Controller, st.InSB, st.SBEncaps)
			if st.Uplink != "" {
				text += ", uplink " + st.Uplink
			}
			if perr := g.print(c, st, text); perr != nil {
				return perr
			}
			return err
		},
	}
}
