package main

import (
	"fmt"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ratelimit"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// rateFlags are the rate limit flags (qos; bits a second and bits).
type rateFlags struct {
	rate, burst       string
	inRate, inBurst   string
	outRate, outBurst string
	clear             bool
}

func qosCmd(g *globals) *cobra.Command {
	var f rateFlags
	var def bool
	c := &cobra.Command{
		Use:   "qos NETWORK CONTAINER[:INTERFACE] [--rate R [--burst B]] [--ingress-rate R] [--egress-rate R] ... | --clear\n  ovsnet qos NETWORK --default [--rate R ...] | --default --clear",
		Short: "Cap what a container receives and sends (token-bucket shapers), as CNI's bandwidth capability does",
		Long: `Caps CONTAINER's interface on NETWORK: --ingress-rate what it receives,
--egress-rate what it sends, --rate both (10mbit, 500kbit, 1gbit, or bits a
second); each with a bucket of --burst bits (default: a tenth of a second
at the rate, at least 512kbit). TCP through a cap runs at the rate: the
packets over it wait in a queue (a tbf shaper) rather than being dropped.

What the container sends waits at its side of the interface, what it
receives at the veth's host end, where the switch's packets leave for it:
an ingress rate needs a veth (an internal port's packets are written
straight into the container), and an egress rate cannot share the
container's side with an impairment (ovsnet impair --rate caps it there).

Each call sets the whole limit (a direction it does not give is uncapped);
--clear removes it. The limit is intent, kept in OVSDB: ovsnet reconcile
and the controller (at its resync) put it back, and show prints it.
add-port --rate sets one as it attaches; a CNI network takes the same caps
from the runtime's bandwidth capability (ingressRate, ingressBurst,
egressRate, egressBurst).

qos NETWORK --default sets the cap that interfaces attached to the bridge
NETWORK from then on get unless they ask for their own (as add-br --rate
does; --default --clear removes it); interfaces attached before keep
theirs.`,
		Example: `  ovsnet qos br0 web --rate 20mbit
  ovsnet qos br0 web:eth1 --ingress-rate 100mbit --egress-rate 10mbit --egress-burst 2mbit
  ovsnet qos br0 web --clear
  ovsnet qos br0 --default --egress-rate 50mbit`,
		Args: func(c *cobra.Command, args []string) error {
			if def {
				return exactArgs("NETWORK")(c, args)
			}
			return exactArgs("NETWORK", "CONTAINER[:INTERFACE]")(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			lim, err := f.limit()
			if err != nil {
				return err
			}
			if lim.IsZero() != f.clear {
				return fmt.Errorf("qos needs --rate, --ingress-rate or --egress-rate, or --clear alone (see `%s --help`)", c.CommandPath())
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if def {
				return qosDefault(c, g, h, args[0], lim)
			}
			o := ratelimit.Options{Network: args[0], Limit: lim}
			o.Container, o.Iface = splitContainerIface(args[1])
			r, err := ratelimit.Set(c.Context(), h, o)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("%s (%s on %s) rate limit: %s", args[1], r.Interface, r.Bridge, r.Said)
			if f.clear {
				text = fmt.Sprintf("%s (%s on %s) no longer rate limited", args[1], r.Interface, r.Bridge)
			}
			return g.print(c, r, text)
		},
	}
	fl := c.Flags()
	f.register(fl, "the container")
	fl.BoolVar(&f.clear, "clear", false, "remove the limit")
	fl.BoolVar(&def, "default", false, "set (or with --clear remove) the bridge NETWORK's default for interfaces attached from now on")
	return c
}

// qosDefault is qos --default: the bridge's cap for later attachments.
func qosDefault(c *cobra.Command, g *globals, h *network.Host, name string, lim intent.RateLimit) error {
	br, err := ratelimit.SetDefault(c.Context(), h, name, lim)
	if err != nil {
		return err
	}
	lim = lim.WithBursts()
	text := fmt.Sprintf("bridge %s: interfaces attached from now on are capped %s unless they ask otherwise", br, lim)
	if lim.IsZero() {
		text = fmt.Sprintf("bridge %s: no default rate limit", br)
	}
	return g.print(c, map[string]any{"network": br, "default_rate_limit": lim.String(), "limit": lim}, text)
}

// register binds the rate flags (not --clear) to f, with f's current
// values as defaults; of what, in the help.
func (r *rateFlags) register(f *pflag.FlagSet, of string) {
	f.StringVar(&r.rate, "rate", r.rate, "cap what "+of+" receives and sends: 10mbit, 500kbit, 1gbit, or bits a second")
	f.StringVar(&r.burst, "burst", r.burst, "bucket of both ways, in bits (2mbit, 500kbit; default: a tenth of a second at the rate)")
	f.StringVar(&r.inRate, "ingress-rate", r.inRate, "cap what "+of+" receives")
	f.StringVar(&r.inBurst, "ingress-burst", r.inBurst, "bucket of what it receives, in bits")
	f.StringVar(&r.outRate, "egress-rate", r.outRate, "cap what "+of+" sends")
	f.StringVar(&r.outBurst, "egress-burst", r.outBurst, "bucket of what it sends, in bits")
}

// limit is the flags' limit: --rate/--burst for both ways, a direction's
// own flags over them.
func (f rateFlags) limit() (intent.RateLimit, error) {
	var l intent.RateLimit
	for _, v := range []struct {
		flag, s string
		dst     []*uint64
	}{
		{"--rate", f.rate, []*uint64{&l.IngressRate, &l.EgressRate}},
		{"--burst", f.burst, []*uint64{&l.IngressBurst, &l.EgressBurst}},
		{"--ingress-rate", f.inRate, []*uint64{&l.IngressRate}},
		{"--ingress-burst", f.inBurst, []*uint64{&l.IngressBurst}},
		{"--egress-rate", f.outRate, []*uint64{&l.EgressRate}},
		{"--egress-burst", f.outBurst, []*uint64{&l.EgressBurst}},
	} {
		if v.s == "" {
			continue
		}
		n, err := parseRate(v.s)
		if err != nil {
			return l, fmt.Errorf("%s %q: want 10mbit, 500kbit, 1gbit, or a number of bits", v.flag, v.s)
		}
		for _, d := range v.dst {
			*d = n
		}
	}
	return l, nil
}
