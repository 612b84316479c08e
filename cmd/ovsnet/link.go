package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func linkCmd(g *globals) *cobra.Command {
	var ports []string
	c := &cobra.Command{
		Use:   "link BRIDGE SRC DST [--port PORT[/tcp|udp]]...",
		Short: "Let container SRC open connections to container DST (on an --icc=false bridge)",
		Long: `On a bridge made with --icc=false containers cannot reach each other; a link
lets SRC open connections to DST, on all protocols or only the given ports
(PORT means PORT/tcp). Replies and related ICMP come back; DST cannot open
connections to SRC unless linked the other way. Links live in OVSDB (bridge
external_ids "ovsnet-link:SRC>DST") and are listed by ovsnet show. Running it
again replaces the link's ports.

On a network spanning hosts (add-br --ip-range, ovsnet tunnel) SRC may be the
address of a container on another host: isolation across hosts is enforced
on the destination's host, so the link goes there.`,
		Example: `  ovsnet link br-iso web db --port 5432
  ovsnet link br-iso app cache --port 6379/tcp --port 53/udp
  ovsnet link br-iso admin web
  ovsnet link br0 10.97.2.5 web    # 10.97.2.5: a container on another host`,
		Args: exactArgs("BRIDGE", "SRC", "DST"),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			spec, err := h.Link(c.Context(), args[0], args[1], args[2], ports)
			if err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "src": args[1], "dst": args[2], "ports": spec},
				fmt.Sprintf("linked %s -> %s on %s (%s)", args[1], args[2], args[0], spec))
		},
	}
	c.Flags().StringArrayVar(&ports, "port", nil, "allowed destination port PORT[/tcp|udp] (repeatable; default: everything)")
	return c
}

func unlinkCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "unlink BRIDGE SRC DST",
		Short:   "Remove the link SRC -> DST",
		Example: "  ovsnet unlink br-iso web db",
		Args:    exactArgs("BRIDGE", "SRC", "DST"),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := h.Unlink(c.Context(), args[0], args[1], args[2]); err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "src": args[1], "dst": args[2], "unlinked": true},
				fmt.Sprintf("unlinked %s -> %s on %s", args[1], args[2], args[0]))
		},
	}
}
