package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/controller/impair"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/spf13/cobra"
)

func impairCmd(g *globals) *cobra.Command {
	var (
		delay, jitter time.Duration
		loss, rate    string
		clear         bool
	)
	c := &cobra.Command{
		Use:   "impair NETWORK CONTAINER[:INTERFACE] [--delay D] [--jitter D] [--loss P%] [--rate R] | --clear",
		Short: "Add delay, jitter, loss or a rate limit to what a container sends (netem), for labs",
		Long: `Bends what CONTAINER's interface on NETWORK sends: every packet delayed by
--delay (varying by up to --jitter), --loss percent of them dropped, at most
--rate sent (10mbit, 500kbit, 1gbit, or bits a second). Ping's round trip
grows by the delay; a TCP transfer from the container meets the loss and
the rate.

It is netem, the root qdisc of the container's side of the interface, so
the switch and ovsnet's pipeline still see every packet that leaves (and
the container's tc shows it). Each call sets the whole impairment (what it
does not give is none); --clear removes it. The impairment is intent,
kept in OVSDB: ovsnet reconcile and the controller put it back when the
interface loses it (a restarted container), and show prints it.`,
		Example: `  ovsnet impair br0 web --delay 50ms --jitter 10ms --loss 1%
  ovsnet impair br0 web:eth1 --rate 10mbit
  ovsnet impair br0 web --clear`,
		Args: exactArgs("NETWORK", "CONTAINER[:INTERFACE]"),
		RunE: func(c *cobra.Command, args []string) error {
			o := impair.Options{Network: args[0]}
			o.Container, o.Iface = splitContainerIface(args[1])
			set := delay != 0 || jitter != 0 || loss != "" || rate != ""
			if set == clear {
				return fmt.Errorf("impair needs --delay, --jitter, --loss or --rate, or --clear alone (see `%s --help`)", c.CommandPath())
			}
			var err error
			o.Impairment = intent.Impairment{Delay: delay, Jitter: jitter}
			if o.Impairment.Loss, err = parseLoss(loss); err != nil {
				return err
			}
			if o.Impairment.Rate, err = parseRate(rate); err != nil {
				return err
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			r, err := impair.Set(c.Context(), h, o)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("%s (%s on %s) impaired: %s", args[1], r.Interface, r.Bridge, r.Said)
			if clear {
				text = fmt.Sprintf("%s (%s on %s) no longer impaired", args[1], r.Interface, r.Bridge)
			}
			return g.print(c, r, text)
		},
	}
	f := c.Flags()
	f.DurationVar(&delay, "delay", 0, "added to every packet the container sends (50ms)")
	f.DurationVar(&jitter, "jitter", 0, "the delay varies by up to this much (needs --delay)")
	f.StringVar(&loss, "loss", "", "percent of packets dropped (1%, 0.5)")
	f.StringVar(&rate, "rate", "", "most the container sends: 10mbit, 500kbit, 1gbit, or bits a second")
	f.BoolVar(&clear, "clear", false, "remove the impairment")
	return c
}

// parseLoss reads a percentage: "1%", "0.5".
func parseLoss(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("--loss %q: want a percentage 0..100 (1%%, 0.5)", s)
	}
	return v, nil
}

// parseRate reads a rate in tc's words (10mbit, 500kbit, 1gbit, 8000bit)
// or bits a second.
func parseRate(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := intent.ParseRate(s)
	if err != nil {
		return 0, fmt.Errorf("--%s", err) // "--rate ...": the flag's name
	}
	return v, nil
}
