package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/ovn"
)

func networkCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "network create|ls|rm",
		Short: "OVN networks: one network across every chassis of an OVN deployment",
		Long: `An OVN network is a logical switch in OVN's northbound database: the same
network on every host that joined the deployment (ovsnet ovn join), with
its addresses handed out by OVN's own IPAM, so hosts need no address
ranges of their own. --ovn names the northbound database (tcp:CENTRAL:6641);
without it, the one recorded by ovsnet ovn join --nb.

With --icc=false its containers reach each other only where ovsnet link
lets them, whichever chassis they run on: the network's ports are one OVN
port group, and its ACLs drop IP between them unless a link allows it
(allow-related, so replies and related ICMP pass). A port joins the group
in the transaction that creates it, isolated before it sends anything.`,
		Example: "  ovsnet network create lab --subnet 10.60.0.0/16 --ovn tcp:192.0.2.10:6641\n  ovsnet network create iso --subnet 10.61.0.0/24 --icc=false\n  ovsnet link iso web db --port 5432\n  ovsnet network ls\n  ovsnet network rm lab",
	}
	var nb string
	c.PersistentFlags().StringVar(&nb, "ovn", "", "the northbound database: tcp:HOST:6641 (or unix:PATH); default: the one ovsnet ovn join --nb recorded")
	c.AddCommand(networkCreateCmd(g, &nb), networkLsCmd(g, &nb), networkRmCmd(g, &nb))
	return c
}

// northbound is --ovn, or the one this host recorded.
func (g *globals) northbound(ctx context.Context, nb string) (string, error) {
	if nb != "" {
		return nb, g.checkOutput()
	}
	h, err := g.open(ctx)
	if err != nil {
		return "", err
	}
	defer h.Close()
	return ovn.NB(ctx, h, "")
}

// southbound is sb, else the southbound database this host joined.
func (g *globals) southbound(ctx context.Context, sb string) (string, error) {
	if sb != "" {
		return sb, nil
	}
	h, err := g.open(ctx)
	if err != nil {
		return "", err
	}
	defer h.Close()
	return ovn.SB(ctx, h)
}

func networkCreateCmd(g *globals, nb *string) *cobra.Command {
	var o ovn.NetworkOptions
	c := &cobra.Command{
		Use:   "create NAME --subnet CIDR [--subnet6 CIDR] [--gateway IP] [--icc=false] [--nat=false] [--ovn NB]",
		Short: "Create an OVN network (a logical switch); again with the same settings changes nothing",
		Args:  exactArgs("NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			if o.Subnet == "" {
				return fmt.Errorf("--subnet is required: the network's IPv4 CIDR, such as 10.60.0.0/16")
			}
			var err error
			o.Name = args[0]
			if o.NB, err = g.northbound(c.Context(), *nb); err != nil {
				return err
			}
			created, err := ovn.CreateNetwork(c.Context(), o)
			if err != nil {
				return err
			}
			verb := "created"
			if !created {
				verb = "exists, unchanged:"
			}
			return g.print(c, map[string]any{"network": o.Name, "created": created}, fmt.Sprintf("network %s %s (%s)", verb, o.Name, o.Subnet))
		},
	}
	c.Flags().StringVar(&o.Subnet, "subnet", "", "the network's IPv4 CIDR")
	c.Flags().StringVar(&o.Subnet6, "subnet6", "", "an IPv6 CIDR beside it: containers get an address of each (routed, not translated)")
	c.Flags().StringVar(&o.Gateway, "gateway", "", "the gateway address (default: the subnet's first), never handed to a container")
	c.Flags().BoolVar(&o.NAT, "nat", true, "containers reach the outside through the host they run on (masqueraded) and may publish ports there; --nat=false: no gateway")
	c.Flags().BoolVar(&o.ICC, "icc", true, "containers reach each other; --icc=false isolates them (on every chassis) unless linked (ovsnet link NAME SRC DST)")
	return c
}

func networkLsCmd(g *globals, nb *string) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [--ovn NB]",
		Short: "List ovsnet's OVN networks",
		Args:  exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			ns, err := ovn.ListNetworks(c.Context(), ep)
			if err != nil {
				return err
			}
			lines := []string{}
			for _, n := range ns {
				iso := ""
				if !n.ICC {
					iso = ", isolated (icc=false)"
				}
				sub := n.Subnet
				if n.Subnet6 != "" {
					sub += " " + n.Subnet6
				}
				lines = append(lines, fmt.Sprintf("%s %s (gateway %s), %d port(s)%s", n.Name, sub, n.Gateway, n.Ports, iso))
			}
			if len(lines) == 0 {
				lines = append(lines, "no OVN networks (ovsnet network create NAME --subnet CIDR)")
			}
			return g.print(c, ns, strings.Join(lines, "\n"))
		},
	}
}

func networkRmCmd(g *globals, nb *string) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME [--ovn NB]",
		Short: "Remove an OVN network that has no ports",
		Args:  exactArgs("NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			if err := ovn.RemoveNetwork(c.Context(), ep, args[0]); err != nil {
				return err
			}
			return g.print(c, map[string]string{"removed": args[0]}, "removed network "+args[0])
		},
	}
}
