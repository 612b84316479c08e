package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/ovn"
)

func serviceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "service create|ls|rm|add-backend|del-backend",
		Short: "Services: one address in front of containers of an OVN network, load-balanced and health-checked",
		Long: `A service is an OVN load balancer on a network: connections to its address
(VIP:PORT, tcp or udp) are spread over its backends, containers of the
network named CONTAINER:PORT, on any chassis. OVN's service monitor checks
each backend every 2 s from the network's last host address (which
attaches never hand out): one that misses twice leaves the rotation, and
comes back when it answers again.

The network must be on a router (ovsnet router attach), and the address
outside its subnets: containers reach the address through their default
route, the router, and the load balancer, on every switch of the router,
takes the connection on the way, so the containers of all the router's
networks are its clients; the backends' ports are let through the router
to them (whatever the network's --icc, as a link would). A service whose
address is the router's gateway address (router create --gateway-address)
is published through the gateway: the outside reaches it there, on the
chassis holding the gateway. A backend that moves (detached, attached
again elsewhere) is followed by its name.`,
		Example: `  ovsnet service create web --network front --vip 172.30.0.10:80 --backend w1:8080 --backend w2:8080
  ovsnet service create pub --network front --vip 198.51.100.10:443 --backend w1:8443   # the gateway's address
  ovsnet service add-backend web w3:8080
  ovsnet service del-backend web w1:8080
  ovsnet service ls
  ovsnet service rm web`,
	}
	var nb string
	c.PersistentFlags().StringVar(&nb, "ovn", "", "the northbound database: tcp:HOST:6641 (or unix:PATH); default: the one ovsnet ovn join --nb recorded")
	c.AddCommand(serviceCreateCmd(g, &nb), serviceLsCmd(g, &nb), serviceRmCmd(g, &nb), serviceBackendCmd(g, &nb, true), serviceBackendCmd(g, &nb, false))
	return c
}

func serviceCreateCmd(g *globals, nb *string) *cobra.Command {
	var o ovn.ServiceOptions
	c := &cobra.Command{
		Use:   "create NAME --network NET --vip A:PORT[/tcp|udp] --backend CONTAINER:PORT... [--ovn NB]",
		Short: "Create a service; again with the same settings changes nothing",
		Args:  exactArgs("NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			if o.Network == "" || o.VIP == "" {
				return fmt.Errorf("--network and --vip are required (see `%s --help`)", c.CommandPath())
			}
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			o.Name = args[0]
			created, err := ovn.CreateService(c.Context(), ep, o)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("created service %s: %s over %s", o.Name, o.VIP, strings.Join(o.Backends, ", "))
			if !created {
				text = "service " + o.Name + " exists, unchanged"
			}
			return g.print(c, map[string]any{"service": o.Name, "created": created}, text)
		},
	}
	c.Flags().StringVar(&o.Network, "network", "", "the OVN network of its backends (on a router)")
	c.Flags().StringVar(&o.VIP, "vip", "", "its address, IPV4:PORT[/tcp|udp], outside the network's subnets")
	c.Flags().StringArrayVar(&o.Backends, "backend", nil, "a container of the network and the port it serves on, CONTAINER:PORT (repeat)")
	return c
}

func serviceLsCmd(g *globals, nb *string) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [--ovn NB]",
		Short: "List services, their backends and the addresses they spread over now",
		Args:  exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			ss, err := ovn.ListServices(c.Context(), ep)
			if err != nil {
				return err
			}
			lines := []string{}
			for _, s := range ss {
				l := fmt.Sprintf("%s: %s on %s over %s (now %s)", s.Name, s.VIP, s.Network, strings.Join(s.Backends, ", "), strings.Join(s.Serving, ", "))
				if len(s.Missing) > 0 {
					l += "; not attached: " + strings.Join(s.Missing, ", ")
				}
				for _, e := range s.Errors {
					l += "; broken: " + e
				}
				lines = append(lines, l)
			}
			if len(lines) == 0 {
				lines = append(lines, "no services (ovsnet service create NAME --network NET --vip A:PORT --backend C:PORT)")
			}
			return g.print(c, ss, strings.Join(lines, "\n"))
		},
	}
}

func serviceRmCmd(g *globals, nb *string) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME [--ovn NB]",
		Short: "Remove a service (its backends stay attached)",
		Args:  exactArgs("NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			if err := ovn.RemoveService(c.Context(), ep, args[0]); err != nil {
				return err
			}
			return g.print(c, map[string]string{"removed": args[0]}, "removed service "+args[0])
		},
	}
}

// serviceBackendCmd is add-backend (add) or del-backend.
func serviceBackendCmd(g *globals, nb *string, add bool) *cobra.Command {
	use, short, verb := "add-backend NAME CONTAINER:PORT... [--ovn NB]", "Add backends to a service (containers attached to its network)", "added"
	if !add {
		use, short, verb = "del-backend NAME CONTAINER:PORT... [--ovn NB]", "Take backends out of a service", "took out"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("%s takes NAME CONTAINER:PORT..., got %q", c.Name(), args)
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			ep, err := g.northbound(c.Context(), *nb)
			if err != nil {
				return err
			}
			if err := ovn.ChangeBackends(c.Context(), ep, args[0], add, args[1:]); err != nil {
				return err
			}
			return g.print(c, map[string]any{"service": args[0], verb: args[1:]}, fmt.Sprintf("%s %s: %s", verb, args[0], strings.Join(args[1:], ", ")))
		},
	}
}
