package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"
)

func routerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "router create|ls|rm|attach|detach",
		Short: "OVN routers: route between OVN networks, on every chassis",
		Long: `A router is an OVN logical router in the northbound database, distributed:
each chassis routes what its own containers send, so traffic between two
networks crosses no third host. Attaching a network gives the router a
port holding the network's gateway address (and MAC), and the network's
containers attached from then on get their default route to it; with
--address A the router's port holds A instead, which becomes the
network's gateway.

Routing is not reachability: what comes through a router into a network
is dropped, whatever the network's --icc, unless ovsnet link lets it in
(ovsnet link DSTNET SRC DST, where SRC is a container on another network
of the router; allow-related, so replies pass), and replies to what the
network's own containers started pass.

A network is on one router at most. Networks made with --nat (their way
out is the host each container runs on) are refused; make routed networks
with --nat=false. A router leads out of OVN only if it was made with a
gateway (router create --gateway-chassis): then its networks leave through
one chassis as one address, with failover to the next chassis named. Put
a network on its router before its containers, and take them off before
detaching it: a container's routes are set when it attaches.`,
		Example: `  ovsnet network create web --subnet 10.70.1.0/24 --nat=false
  ovsnet network create db --subnet 10.70.2.0/24 --nat=false
  ovsnet router create r1
  ovsnet router attach r1 web
  ovsnet router attach r1 db
  ovsnet add-port web eth1 app --ip && ovsnet add-port db eth1 pg --ip
  ovsnet link db app pg --port 5432     # app (on web) may reach pg (on db)
  ovsnet router ls
  ovsnet router detach r1 web && ovsnet router rm r1`,
	}
	var nb string
	c.PersistentFlags().StringVar(&nb, "ovn", "", "the northbound database: tcp:HOST:6641 (or unix:PATH); default: the one ovsnet ovn join --nb recorded")
	c.AddCommand(routerCreateCmd(g, &nb), routerLsCmd(g, &nb), routerRmCmd(g, &nb), routerAttachCmd(g, &nb, true), routerAttachCmd(g, &nb, false))
	return c
}

func routerCreateCmd(g *globals, nbf *string) *cobra.Command {
	var o ovn.RouterOptions
	var chassis []string
	var addr, hop string
	c := &cobra.Command{
		Use:   "create ROUTER [--gateway-chassis A[,B...] --gateway-address CIDR --gateway-next-hop IP [--sb SB]] [--ovn NB]",
		Short: "Create a router, with or without a gateway out of OVN; again changes nothing",
		Long: `Create a router. Without a gateway it routes between its networks only.

With --gateway-chassis it also leads out of OVN through one chassis at a
time: the router holds --gateway-address on the outside segment, on the
first chassis named, its routed networks' IPv4 traffic to anywhere else
leaves there masqueraded (SNAT) as that one address, by
--gateway-next-hop. If that chassis stops, the next one named takes the
address over (OVN's HA chassis group, by BFD between the chassis). Each
gateway chassis needs an uplink (ovsnet ovn join ... --uplink DEV on
it); chassis are named by their OVN name or hostname and checked in the
southbound database (--sb, by default this host's). A service on the
gateway's address publishes a port through it (ovsnet service --help).`,
		Example: `  ovsnet router create r1
  ovsnet router create edge --gateway-chassis host-a,host-b \
      --gateway-address 198.51.100.10/24 --gateway-next-hop 198.51.100.1`,
		Args: exactArgs("ROUTER"),
		RunE: func(c *cobra.Command, args []string) error {
			var err error
			o.Name = args[0]
			if o.NB, err = g.northbound(c.Context(), *nbf); err != nil {
				return err
			}
			if len(chassis) > 0 || addr != "" || hop != "" {
				if o.Gateway, err = parseGateway(chassis, addr, hop); err != nil {
					return err
				}
				if o.SB, err = g.southbound(c.Context(), o.SB); err != nil {
					return err
				}
			}
			created, err := ovn.CreateRouter(c.Context(), o)
			if err != nil {
				return err
			}
			text := "created router " + args[0]
			if !created {
				text = "router " + args[0] + " exists, unchanged"
			}
			return g.print(c, map[string]any{"router": args[0], "created": created}, text)
		},
	}
	f := c.Flags()
	f.StringSliceVar(&chassis, "gateway-chassis", nil, "the chassis that may hold the gateway, by priority (OVN name or hostname; each needs an uplink)")
	f.StringVar(&addr, "gateway-address", "", "the router's address with its prefix on the outside segment, the one address its networks leave as")
	f.StringVar(&hop, "gateway-next-hop", "", "the outside's router, in --gateway-address's subnet")
	f.StringVar(&o.SB, "sb", "", "the southbound database to check the gateway chassis in; default: this host's (ovsnet ovn join --sb)")
	return c
}

// parseGateway reads router create's gateway flags; all three are needed.
func parseGateway(chassis []string, addr, hop string) (*nb.RouterGateway, error) {
	if len(chassis) == 0 || addr == "" || hop == "" {
		return nil, fmt.Errorf("a gateway needs --gateway-chassis, --gateway-address and --gateway-next-hop together")
	}
	p, err := netip.ParsePrefix(addr)
	if err != nil {
		return nil, fmt.Errorf("--gateway-address %q: want an address with its prefix length, such as 198.51.100.10/24", addr)
	}
	h, err := netip.ParseAddr(hop)
	if err != nil {
		return nil, fmt.Errorf("--gateway-next-hop %q is not an address", hop)
	}
	return &nb.RouterGateway{Chassis: chassis, Address: p, NextHop: h}, nil
}

func routerLsCmd(g *globals, nb *string) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [--ovn NB]",
		Short: "List ovsnet's routers and the networks they route",
		Args:  exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			rs, err := ovn.ListRouters(c.Context(), ep)
			if err != nil {
				return err
			}
			lines := []string{}
			for _, r := range rs {
				nets := "no networks"
				if len(r.Networks) > 0 {
					nets = strings.Join(r.Networks, ", ")
				}
				line := fmt.Sprintf("%s: %s", r.Name, nets)
				if gw := r.Gateway; gw != nil {
					line += fmt.Sprintf("; gateway %s via %s on %s", gw.Address, gw.NextHop, strings.Join(gw.Chassis, " then "))
				}
				lines = append(lines, line)
			}
			if len(lines) == 0 {
				lines = append(lines, "no routers (ovsnet router create NAME)")
			}
			return g.print(c, rs, strings.Join(lines, "\n"))
		},
	}
}

func routerRmCmd(g *globals, nb *string) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ROUTER [--ovn NB]",
		Short: "Remove a router that routes no network",
		Args:  exactArgs("ROUTER"),
		RunE: func(c *cobra.Command, args []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			if err := ovn.RemoveRouter(c.Context(), ep, args[0]); err != nil {
				return err
			}
			return g.print(c, map[string]string{"removed": args[0]}, "removed router "+args[0])
		},
	}
}

// routerAttachCmd is router attach (attach true) or detach.
func routerAttachCmd(g *globals, nb *string, attach bool) *cobra.Command {
	use, short := "attach ROUTER NETWORK [--address A] [--ovn NB]", "Route an OVN network (made with --nat=false, no containers yet) through ROUTER; again changes nothing"
	if !attach {
		use, short = "detach ROUTER NETWORK [--ovn NB]", "Take a network (its containers detached) off ROUTER"
	}
	var addr string
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs("ROUTER", "NETWORK"),
		RunE: func(c *cobra.Command, args []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			r, n := args[0], args[1]
			if !attach {
				if err := ovn.DetachRouter(c.Context(), ep, r, n); err != nil {
					return err
				}
				return g.print(c, map[string]any{"router": r, "network": n, "detached": true}, fmt.Sprintf("took network %s off router %s", n, r))
			}
			var a netip.Addr
			if addr != "" {
				if a, err = netip.ParseAddr(addr); err != nil {
					return fmt.Errorf("--address %q is not an address: give one in the network's subnet", addr)
				}
			}
			done, err := ovn.AttachRouter(c.Context(), ep, r, n, a)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("router %s routes network %s", r, n)
			if !done {
				text += " (already)"
			}
			return g.print(c, map[string]any{"router": r, "network": n, "attached": done}, text)
		},
	}
	if attach {
		c.Flags().StringVar(&addr, "address", "", "the router's address on the network, which becomes the network's gateway (default: the network's gateway as it is)")
	}
	return c
}
