// Command labcost measures what ovsnet's lab tools cost the containers
// beside the ones they act on: TCP between two neighbours (A to B) while a
// third container (C) sends TCP to a fourth (E) as fast as it can, with
// nothing on C (plain), with what C sends and receives mirrored to an
// analyzer container (ovsnet mirror add), and with C capped by a rate
// limit (ovsnet qos): one above what C sends (the shaper's own cost, every
// packet through it) and one below (C held back). The conditions take
// turns in each of -reps rounds;
// each figure is the median, and the ratios are to the plain runs of the
// same invocation (goal: >= 0.9x). It writes bench/results/labcost.json.
package main

import (
	"flag"
	"fmt"
	"os/exec"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var (
	bin  = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	secs = flag.Int("t", 3, "seconds per iperf3 run")
	reps = flag.Int("reps", 5, "rounds (medians are reported)")
	rate = flag.String("rate", "500mbit", "the cap below C's speed")
	out  = flag.String("out", "bench/results/labcost.json", "result file")
)

type result struct {
	Condition string  `json:"condition"`
	Gbps      float64 `json:"neighbour_tcp_gbit_per_s"`
	Ratio     float64 `json:"ratio_to_plain"`
	BusyGbps  float64 `json:"busy_container_tcp_gbit_per_s"` // C to E, beside
	Spread    string  `json:"neighbour_min_max"`
	// CopiedGbps is what the analyzer received while mirrored: the copies
	// were made.
	CopiedGbps float64 `json:"analyzer_received_gbit_per_s,omitempty"`
}

// condition is one way C's port is treated: on sets it up, off takes it
// away again.
type condition struct {
	name    string
	on, off []string
}

const (
	subnet = "10.88.0.0/24"
	addrB  = "10.88.0.3"
	addrE  = "10.88.0.5"
)

func main() {
	flag.Parse()
	sb, err := sandbox.Start("ovsnet-lc", "")
	check(err)
	defer sb.Close()
	run(sb, "add-br", "br0", "--subnet", subnet)
	for _, c := range []string{"lc-a", "lc-b", "lc-c", "lc-e", "lc-d"} { // .2 .3 .4 .5 .6
		check(sandbox.AddNetns(c))
		defer sandbox.DelNetns(c)
		run(sb, "add-port", "br0", "eth1", c, "--ip")
	}
	conds := []condition{
		{name: "plain"},
		{name: "C mirrored to an analyzer", on: []string{"mirror", "add", "br0", "--from", "lc-c", "--to", "lc-d"}, off: []string{"mirror", "del", "br0", "--to", "lc-d"}},
		{name: "C capped above its speed (egress 30gbit)", on: []string{"qos", "br0", "lc-c", "--egress-rate", "30gbit"}, off: []string{"qos", "br0", "lc-c", "--clear"}},
		{name: "C capped (egress " + *rate + ")", on: []string{"qos", "br0", "lc-c", "--egress-rate", *rate}, off: []string{"qos", "br0", "lc-c", "--clear"}},
	}
	gs, busy, copied := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	for i := 0; i < *reps; i++ {
		for _, c := range conds {
			before := rxBytes("lc-d")
			start := time.Now()
			g, b := measureRound(sb, c)
			gs[c.name], busy[c.name] = append(gs[c.name], g), append(busy[c.name], b)
			copied[c.name] = append(copied[c.name], float64(rxBytes("lc-d")-before)*8/1e9/time.Since(start).Seconds())
		}
	}
	var rs []result
	plain := measure.Median(gs["plain"])
	for _, c := range conds {
		r := result{Condition: c.name, Gbps: measure.Median(gs[c.name]), BusyGbps: measure.Median(busy[c.name]), Spread: spread(gs[c.name])}
		r.Ratio = r.Gbps / plain
		if c.name != "plain" && c.on[0] == "mirror" {
			r.CopiedGbps = measure.Median(copied[c.name])
		}
		fmt.Printf("%-42s neighbours %6.2f Gbit/s (%s) %5.2fx  C to E %6.2f Gbit/s  analyzer %.2f Gbit/s\n", r.Condition, r.Gbps, r.Spread, r.Ratio, r.BusyGbps, r.CopiedGbps)
		rs = append(rs, r)
	}
	check(measure.Write(*out, map[string]any{"reps": *reps, "iperf3_seconds": *secs, "datapath": measure.Datapath()}, rs))
}

// measureRound sets condition c up, runs C's traffic to E in the
// background, measures A to B meanwhile, and takes c away again.
func measureRound(sb *sandbox.Sandbox, c condition) (neighbours, busy float64) {
	if c.on != nil {
		run(sb, c.on...)
		defer run(sb, c.off...)
	}
	bg := make(chan float64, 1)
	go func() {
		r, err := measure.TCPRun("lc-c", "lc-e", addrE, *secs+2)
		check(err)
		bg <- r.Gbps
	}()
	time.Sleep(time.Second) // C's flow under way
	r, err := measure.TCPRun("lc-a", "lc-b", addrB, *secs)
	check(err)
	return r.Gbps, <-bg
}

// rxBytes is what container c's eth1 has received.
func rxBytes(c string) int64 {
	out, err := exec.Command("ip", "netns", "exec", c, "cat", "/sys/class/net/eth1/statistics/rx_bytes").Output()
	check(err)
	var n int64
	_, err = fmt.Sscan(string(out), &n)
	check(err)
	return n
}

func spread(xs []float64) string {
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%.2f-%.2f", lo, hi)
}

func run(sb *sandbox.Sandbox, args ...string) {
	_, err := sb.Run(*bin, args...)
	check(err)
}

// check panics, so that the deferred clean-ups run.
func check(err error) {
	if err != nil {
		panic(fmt.Sprint("labcost bench: ", err))
	}
}
