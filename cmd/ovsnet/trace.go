package main

import (
	"fmt"
	"strings"

	"github.com/ovsnet/ovsnet/controller/network/trace"
	"github.com/spf13/cobra"
)

func traceCmd(g *globals) *cobra.Command {
	var o trace.Options
	c := &cobra.Command{
		Use:   "trace BRIDGE --from CONTAINER|IP --to CONTAINER|IP [--proto icmp|tcp|udp] [--dport N]",
		Short: "Show which flows a packet between two endpoints passes, and whether it gets through",
		Long: `Builds the first packet of a connection from the endpoints' real MACs and
addresses, runs it through the bridge's flow tables (ovs-appctl
ofproto/trace), prints the tables it passed in plain words, and ends with
one line: "verdict: allowed" or "verdict: dropped (<where and why>)".
An IP that no container on the bridge holds is traced through the gateway.

On a network spanning hosts (tunnel add), an address in the bridge's
subnet that no container here holds is another host's container: the
packet goes to the MAC ovsnet derives from it, and the verdict says it
"leaves through the tunnel for HOST, whose pipeline decides", with the
command to run there: --from that container's address traces the packet
as it comes in through the tunnel, through this host's isolation and
links.

On an OVN network (ovsnet network) the packet goes through OVN's logical
pipelines instead, with ovn-trace over the southbound database this
chassis joined: the containers may be on any chassis, and the stages
(port security, ACLs, L2 lookup) are OVN's. When the source runs on this
chassis, a line before the verdict says what its integration bridge does
with the packet (ofproto/trace's datapath actions: a tunnel to the
destination's chassis, an output, or drop).`,
		Example: `  ovsnet trace br-iso --from web --to db --proto tcp --dport 5432
  ovsnet trace ovs-br1 --from container1 --to 172.16.1.1
  ovsnet trace br0 --from web --to 10.97.2.2        # another host's container: leaves through the tunnel
  ovsnet trace br0 --from 10.97.2.2 --to web        # on that host: as it comes in through the tunnel
  ovsnet trace lab --from web --to db --proto tcp --dport 5432   # an OVN network`,
		Args: exactArgs("BRIDGE"),
		RunE: func(c *cobra.Command, args []string) error {
			o.Bridge = args[0]
			if o.From == "" || o.To == "" {
				return fmt.Errorf("trace needs --from CONTAINER and --to CONTAINER|IP")
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			r, err := h.Trace(c.Context(), o)
			if err != nil {
				return err
			}
			var b strings.Builder
			fmt.Fprintf(&b, "packet: %s\n", r.Packet)
			for _, s := range r.Steps {
				if s.Priority < 0 {
					fmt.Fprintf(&b, "table %d, %s: no flow matches\n", s.Table, s.Stage)
					continue
				}
				m := s.Match
				if m == "" {
					m = "any packet"
				}
				fmt.Fprintf(&b, "table %d, %s: matched %s (priority %d) -> %s\n", s.Table, s.Stage, m, s.Priority, s.Actions)
			}
			if r.Local != "" {
				fmt.Fprintf(&b, "this chassis: %s\n", r.Local)
			}
			fmt.Fprintf(&b, "verdict: %s", r.Verdict)
			r.Raw = ""
			return g.print(c, r, b.String())
		},
	}
	f := c.Flags()
	f.StringVar(&o.From, "from", "", "source container")
	f.StringVar(&o.To, "to", "", "destination container or IP address")
	f.StringVar(&o.Proto, "proto", "icmp", "icmp, tcp or udp")
	f.IntVar(&o.DPort, "dport", 0, "destination port (tcp, udp)")
	return c
}
