package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/tunnel"
)

func tunnelCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "tunnel add|del|list",
		Short: "Join a bridge to the same network on other hosts (VXLAN, GRE or Geneve)",
		Long: `A network spans hosts when each host creates the bridge with the same
--subnet and its own --ip-range, and adds a tunnel to every other host (a full
mesh: ARP and unknown unicast go to every tunnel but never from one tunnel to
another, so there are no loops). Containers on different hosts then share one
L2 segment; isolation (--icc=false) and anti-spoofing hold across hosts.

On the userspace datapath a VXLAN tunnel is a kernel VXLAN device ovsnet
makes ("vx..."; one per bridge, each remote an entry of its forwarding
table), joined to the bridge's internal port "tk..." through tc redirects
and a macvlan "mv...": the kernel encapsulates, the containers keep their
offloads, and the underlay device is left alone. A GRE tunnel is likewise a
kernel gretap device ("gr...", one per remote, its port "tg...") where the
kernel has ip_gre (ovsnet doctor says whether it has).
Geneve (and VXLAN or GRE with --device ovs, and GRE on a kernel without
ip_gre) are OVS's own tunnel ports: OVS
encapsulates by itself and needs the local underlay address on an OVS
bridge, so the first such tunnel moves the address (and its routes) from
its device to a bridge "ovs-DEV" and the host's last one (tunnel del,
del-br) moves it back; containers on such a bridge compute their own
checksums. On the kernel datapath every tunnel is OVS's own port, a kernel
vport that the kernel encapsulates and routes for: the underlay device and
its address stay as they are, and containers keep their offloads.`,
		Example: `  # host A (192.0.2.1)                      # host B (192.0.2.2)
  ovsnet add-br br0 --subnet 10.97.0.0/16 --ip-range 10.97.1.0/24     # B: --ip-range 10.97.2.0/24
  ovsnet tunnel add br0 192.0.2.2                                      # B: ovsnet tunnel add br0 192.0.2.1
  ovsnet tunnel add br0 192.0.2.3 --type gre --key 7
  ovsnet tunnel list`,
	}
	c.AddCommand(tunnelAddCmd(g), tunnelDelCmd(g), tunnelListCmd(g))
	return c
}

func tunnelAddCmd(g *globals) *cobra.Command {
	var o mesh.Options
	var key uint32
	c := &cobra.Command{
		Use:   "add BRIDGE REMOTE_IP [--type vxlan|gre|geneve] [--key N] [--local-ip IP] [--device kernel|ovs]",
		Short: "Add a tunnel from BRIDGE to the host at REMOTE_IP",
		Long: `Add a tunnel to the host whose underlay address is REMOTE_IP (the other host
runs the same command with this host's address, and the same --type and
--key). The local address is the source of the route to REMOTE_IP unless
--local-ip says otherwise. Unless the bridge was given --mtu, its containers'
MTU becomes the underlay's less the encapsulation (VXLAN and Geneve 50
bytes, GRE with its key 42) for containers attached from now on. Running it again changes
nothing.`,
		Example: "  ovsnet tunnel add br0 192.0.2.2\n  ovsnet tunnel add br0 192.0.2.3 --type gre --key 7 --local-ip 192.0.2.1",
		Args:    exactArgs("BRIDGE", "REMOTE_IP"),
		RunE: func(c *cobra.Command, args []string) error {
			o.Bridge, o.Remote = args[0], args[1]
			if c.Flags().Changed("key") {
				o.Key = &key
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			t, created, err := tunnel.Add(c.Context(), h, o)
			if err != nil {
				return err
			}
			verb := "added"
			if !created {
				verb = "exists, unchanged:"
			}
			return g.print(c, map[string]any{"tunnel": t, "created": created},
				fmt.Sprintf("tunnel %s %s %s %s -> %s (key %d, port %s)", verb, t.Type, t.Local, t.Remote, t.Bridge, t.Key, t.Port))
		},
	}
	f := c.Flags()
	f.StringVar(&o.Type, "type", "vxlan", "vxlan, gre or geneve (on the kernel datapath each is a kernel vport; on the userspace one VXLAN, and GRE where the kernel has ip_gre, are kernel devices, and the rest move the underlay address onto an OVS bridge)")
	f.Uint32Var(&key, "key", 0, "VXLAN or Geneve network identifier, or GRE key (the same on both hosts)")
	f.StringVar(&o.LocalIP, "local-ip", "", "this host's underlay address (default: the route's source toward REMOTE_IP)")
	f.StringVar(&o.Device, "device", "", "VXLAN or GRE on the userspace datapath: kernel (a kernel VXLAN or gretap device, the default where the kernel has it) or ovs (OVS's own tunnel port, which moves the underlay address)")
	return c
}

func tunnelDelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "del BRIDGE REMOTE_IP",
		Short:   "Remove BRIDGE's tunnel to REMOTE_IP",
		Example: "  ovsnet tunnel del br0 192.0.2.2",
		Args:    exactArgs("BRIDGE", "REMOTE_IP"),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := tunnel.Del(c.Context(), h, args[0], args[1]); err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "remote": args[1], "deleted": true},
				fmt.Sprintf("tunnel %s -> %s deleted", args[0], args[1]))
		},
	}
}

func tunnelListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list [BRIDGE]",
		Short:   "List tunnels (of every ovsnet bridge, or of BRIDGE)",
		Example: "  ovsnet tunnel list\n  ovsnet tunnel list br0 -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			br := ""
			if len(args) == 1 {
				br = args[0]
			}
			ts, err := tunnel.List(c.Context(), h, br)
			if err != nil {
				return err
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%-12s %-16s %-6s %-9s %-16s %-12s %s\n", "BRIDGE", "REMOTE", "TYPE", "KEY", "LOCAL", "PORT", "STATE")
			for _, t := range ts {
				fmt.Fprintf(&b, "%-12s %-16s %-6s %-9d %-16s %-12s %s\n", t.Bridge, t.Remote, t.Type, t.Key, t.Local, t.Port, t.State)
			}
			if ts == nil {
				ts = []intent.Tunnel{}
			}
			return g.print(c, ts, strings.TrimSuffix(b.String(), "\n"))
		},
	}
}
