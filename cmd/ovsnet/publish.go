package main

import (
	"strings"

	"github.com/ovsnet/ovsnet/controller/hostnat"
	"github.com/ovsnet/ovsnet/controller/publish"
	"github.com/spf13/cobra"
)

func mappingText(ms []hostnat.PortMapping) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Mapping)
	}
	return strings.Join(out, "\n")
}

func publishCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "publish BRIDGE CONTAINER SPEC...",
		Short: "Publish ports of a running container: SPEC is [HOST_IP:][HOST_PORT:]PORT[/tcp|udp]",
		Long: `Publish container ports on the host, as docker run -p does: traffic to
HOST_IP:HOST_PORT (every host address when HOST_IP is left out; 127.0.0.1 for
the host only) is forwarded to the container's PORT. Without HOST_PORT a free
port from ip_local_port_range is taken; ovsnet port shows it. A host port
already published or bound by a host process is refused. Publishing what the
container publishes already (the same PORT and protocol, on the HOST_PORT
and HOST_IP given if any) changes nothing and prints the mapping it has.

Published ports bypass INPUT-based firewalls such as ufw. Restrict them in
the iptables chain OVSNET-USER (filter table), which traffic to published
ports meets first and which ovsnet never flushes, e.g.
  iptables -I OVSNET-USER -i eth0 ! -s 192.0.2.0/24 -j DROP`,
		Example: `  ovsnet publish ovs-br1 web 8080:80
  ovsnet publish ovs-br1 web 127.0.0.1:9090:90 53/udp 443`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			ms, err := publish.Add(c.Context(), h, args[0], args[1], args[2:])
			if err != nil {
				return err
			}
			return g.print(c, ms, mappingText(ms))
		},
	}
}

func unpublishCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "unpublish BRIDGE CONTAINER SPEC...",
		Short:   "Stop publishing ports of a container (SPEC as for publish; PORT[/proto] matches every mapping of that port)",
		Example: "  ovsnet unpublish ovs-br1 web 80\n  ovsnet unpublish ovs-br1 web 8080:80 53/udp",
		Args:    cobra.MinimumNArgs(3),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			ms, err := publish.Remove(c.Context(), h, args[0], args[1], args[2:])
			if err != nil {
				return err
			}
			return g.print(c, ms, "unpublished\n"+mappingText(ms))
		},
	}
}

func portCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "port BRIDGE CONTAINER [PORT[/proto]]",
		Short:   "List a container's published ports, as docker port does (80/tcp -> 0.0.0.0:8080)",
		Example: "  ovsnet port ovs-br1 web\n  ovsnet port ovs-br1 web 80/tcp",
		Args:    cobra.RangeArgs(2, 3),
		RunE: func(c *cobra.Command, args []string) error {
			filter := ""
			if len(args) == 3 {
				filter = args[2]
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			ms, err := publish.List(c.Context(), h, args[0], args[1], filter)
			if err != nil {
				return err
			}
			if ms == nil {
				ms = []hostnat.PortMapping{}
			}
			return g.print(c, ms, mappingText(ms))
		},
	}
}
