package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller"
)

func addPortCmd(g *globals) *cobra.Command {
	var o controller.PortOptions
	var ip, ipaddress string
	c := &cobra.Command{
		Use:   "add-port BRIDGE INTERFACE CONTAINER [--ip[=ADDR/PLEN]] [--ipaddress=ADDR/PLEN] [--gateway=IP] [--macaddress=MAC] [--mtu=N] [--vlan=N] [--type veth|internal]",
		Short: "Attach a container to a bridge as INTERFACE (ovs-docker add-port)",
		Long: `Attach CONTAINER to BRIDGE: create a link whose container end is INTERFACE,
give it a MAC, MTU and addresses, and make the default route point at the
gateway. Without --ip or --ipaddress the interface gets no address, as with
ovs-docker. --ip alone allocates the lowest free address of each of the
bridge's subnets. Any failure undoes everything.

--type internal moves an OVS internal port into the container (fastest on
the userspace datapath, the default there); --type veth uses a veth pair
(the default on the kernel datapath).`,
		Example: `  ovsnet add-port ovs-br1 eth1 container1 --ipaddress=173.16.1.2/24
  ovsnet add-port ovs-br1 eth1 web1 --ip -p 8080:80 -p 127.0.0.1:9090:90 -p 53/udp
  ovsnet add-port ovs-br1 eth2 pid:4242 --ip=173.16.1.9/24 --macaddress=02:42:ac:10:01:09 --mtu=1400 --vlan=10`,
		Args: exactArgs("BRIDGE", "INTERFACE", "CONTAINER"),
		RunE: func(c *cobra.Command, args []string) error {
			o.Bridge, o.Iface, o.Container = args[0], args[1], args[2]
			if c.Flags().Changed("ip") {
				o.Addresses = append(o.Addresses, ip)
			}
			if ipaddress != "" {
				o.Addresses = append(o.Addresses, ipaddress)
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			p, err := h.AddPort(c.Context(), o)
			if err != nil {
				return err
			}
			return g.print(c, p, p.Describe())
		},
	}
	f := c.Flags()
	f.StringVar(&ip, "ip", "", "address ADDR/PLEN, or no value for the lowest free one of each subnet")
	f.Lookup("ip").NoOptDefVal = "auto"
	f.StringVar(&ipaddress, "ipaddress", "", "address ADDR/PLEN (ovs-docker's flag)")
	f.StringVar(&o.Gateway, "gateway", "", "default gateway (default: the bridge's gateway)")
	f.StringVar(&o.MAC, "macaddress", "", "MAC address of INTERFACE (default: random, locally administered)")
	f.IntVar(&o.MTU, "mtu", 0, "MTU of INTERFACE, 68..65535 (default: the bridge's)")
	f.IntVar(&o.VLAN, "vlan", 0, "access VLAN tag 1..4094")
	f.StringVar(&o.Type, "type", "", "veth or internal (default: by datapath, see --help)")
	f.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a port: [HOST_IP:][HOST_PORT:]PORT[/tcp|udp] (repeatable; NAT bridges)")
	return c
}

func delPortCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "del-port BRIDGE INTERFACE CONTAINER",
		Short:   "Detach CONTAINER's INTERFACE from BRIDGE (fails if it is not attached)",
		Example: "  ovsnet del-port ovs-br1 eth1 container1",
		Args:    exactArgs("BRIDGE", "INTERFACE", "CONTAINER"),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := h.DelPort(c.Context(), args[0], args[1], args[2]); err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "interface": args[1], "container": args[2], "deleted": 1},
				fmt.Sprintf("detached %s:%s from %s", args[2], args[1], args[0]))
		},
	}
}

func delPortsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "del-ports BRIDGE CONTAINER",
		Short:   "Detach all of CONTAINER's interfaces from BRIDGE (none attached is fine)",
		Example: "  ovsnet del-ports ovs-br1 container1",
		Args:    exactArgs("BRIDGE", "CONTAINER"),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			n, err := h.DelPorts(c.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "container": args[1], "deleted": n},
				fmt.Sprintf("detached %d interface(s) of %s from %s", n, args[1], args[0]))
		},
	}
}

func setVLANCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "set-vlan BRIDGE INTERFACE CONTAINER VLAN",
		Short:   "Set the access VLAN (1..4094) of CONTAINER's INTERFACE",
		Example: "  ovsnet set-vlan ovs-br1 eth1 container1 10",
		Args:    exactArgs("BRIDGE", "INTERFACE", "CONTAINER", "VLAN"),
		RunE: func(c *cobra.Command, args []string) error {
			vlan, err := strconv.Atoi(args[3])
			if err != nil {
				return fmt.Errorf("VLAN %q is not a number in 1..4094", args[3])
			}
			if vlan < 1 || vlan > 4094 {
				return fmt.Errorf("VLAN %d is outside 1..4094", vlan)
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := h.SetVLAN(c.Context(), args[0], args[1], args[2], vlan); err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "interface": args[1], "container": args[2], "vlan": vlan},
				fmt.Sprintf("%s:%s on %s is now in VLAN %d", args[2], args[1], args[0], vlan))
		},
	}
}
