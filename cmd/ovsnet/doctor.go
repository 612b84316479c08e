package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/doctor"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn"
)

func doctorCmd(g *globals) *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "doctor [--controller 127.0.0.1:9476]",
		Short: "Check this host for what ovsnet needs and what makes it slow, each finding with its fix",
		Long: `Check the host and print each finding with its fix: OVSDB and ovs-vswitchd
reachable, OVS's version, the datapath, userspace TSO in force (without it
the userspace datapath carries containers' TCP at about a tenth of a Linux
bridge's), the iptables backend and ovsnet rules left on the other one, IP
forwarding, the MTU under the bridges and tunnels, the controller's health,
the Docker API for container names, intent in OVSDB that does not decode,
ports in error and dangling links.

A finding is ok, a note (worth knowing) or a problem (it blocks ovsnet or
costs most of its speed); doctor exits 1 when there is a problem. -o json
gives the findings as a list.`,
		Example: "  ovsnet doctor\n  ovsnet doctor -o json",
		Args:    exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			h, connErr := network.Open(c.Context(), g.endpoint(), ovn.Backend{})
			if connErr == nil {
				defer h.Close()
			}
			fs := doctor.Run(c.Context(), h, connErr, doctor.Options{Endpoint: g.endpoint(), Controller: addr})
			var b strings.Builder
			problems := 0
			for _, f := range fs {
				fmt.Fprintf(&b, "%-8s %s: %s\n", strings.ToUpper(f.Status), f.Check, f.Detail)
				if f.Fix != "" && f.Status != doctor.StatusOK {
					fmt.Fprintf(&b, "         fix: %s\n", f.Fix)
				}
				if f.Status == doctor.StatusProblem {
					problems++
				}
			}
			if err := g.print(c, fs, strings.TrimRight(b.String(), "\n")); err != nil {
				return err
			}
			if problems > 0 {
				return fmt.Errorf("%d problem(s) found (above)", problems)
			}
			return nil
		},
	}
	c.Flags().StringVar(&addr, "controller", "127.0.0.1:9476", "the controller's --listen address")
	return c
}
