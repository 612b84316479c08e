package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mirror"
)

func mirrorCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "mirror add|del|list",
		Short: "Copy containers' traffic to an analyzer container (an IDS), standing",
		Long: `A standing mirror copies everything some containers (--from) or every
port of the network (--all) send and receive to an analyzer container
(--to), such as an IDS. The analyzer's interface on the network is given
over to the mirror, as a switch's SPAN port is: OVS drops what the
analyzer sends there (attach it with an interface of its own for
watching, and another for talking).

The mirror is kept in OVSDB as the network's intent: it follows the
containers' ports as they come and go (a restarted container's new
port), outlives ovs-vswitchd restarts, and ovsnet reconcile and the
controller make it again if its row is lost. One mirror per analyzer:
add again replaces it. For a look at one container, ovsnet capture needs
no analyzer.`,
		Example: `  ovsnet mirror add br0 --from web,db --to ids
  ovsnet mirror add br0 --all --to ids
  ovsnet mirror list br0
  ovsnet mirror del br0 --to ids`,
	}
	c.AddCommand(mirrorAddCmd(g), mirrorDelCmd(g), mirrorListCmd(g))
	return c
}

func mirrorAddCmd(g *globals) *cobra.Command {
	var from, to string
	var all bool
	c := &cobra.Command{
		Use:   "add NETWORK --from C1[,C2...] | --all --to ANALYZER",
		Short: "Copy what containers (or every port) send and receive to ANALYZER",
		Args:  exactArgs("NETWORK"),
		RunE: func(c *cobra.Command, args []string) error {
			m := intent.Mirror{To: to, All: all}
			if !all {
				m.From = splitNames(from)
			}
			if to == "" || all == (len(splitNames(from)) > 0) {
				return fmt.Errorf("mirror add needs --to ANALYZER and either --from C1[,C2...] or --all (see `%s --help`)", c.CommandPath())
			}
			for _, n := range append([]string{to}, m.From...) {
				if err := intent.CheckRuntimeName(n); err != nil {
					return err
				}
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			v, err := mirror.Add(c.Context(), h, args[0], m)
			if err != nil {
				return err
			}
			return g.print(c, v, fmt.Sprintf("mirror %s on %s: %s", v.Says(), args[0], v.State))
		},
	}
	c.Flags().StringVar(&from, "from", "", "containers whose traffic is copied, comma-separated")
	c.Flags().BoolVar(&all, "all", false, "copy every port's traffic")
	c.Flags().StringVar(&to, "to", "", "the analyzer container")
	return c
}

func mirrorDelCmd(g *globals) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "del NETWORK --to ANALYZER",
		Short: "Remove the mirror to ANALYZER",
		Args:  exactArgs("NETWORK"),
		RunE: func(c *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("mirror del needs --to ANALYZER")
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := mirror.Del(c.Context(), h, args[0], to); err != nil {
				return err
			}
			return g.print(c, map[string]string{"network": args[0], "removed": to}, fmt.Sprintf("mirror to %s on %s removed", to, args[0]))
		},
	}
	c.Flags().StringVar(&to, "to", "", "the analyzer container")
	return c
}

func mirrorListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list NETWORK",
		Short: "List the network's mirrors and how many packets each copied",
		Args:  exactArgs("NETWORK"),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			vs, err := mirror.List(c.Context(), h, args[0])
			if err != nil {
				return err
			}
			var b strings.Builder
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s, %d packets copied\n", v.Says(), v.State, v.Copied)
			}
			if len(vs) == 0 {
				b.WriteString("no mirrors (ovsnet mirror add " + args[0] + " --from C --to ANALYZER)")
			}
			if vs == nil {
				vs = []mirror.View{}
			}
			return g.print(c, vs, strings.TrimSuffix(b.String(), "\n"))
		},
	}
}

// splitNames splits a comma-separated list, dropping empty names.
func splitNames(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
