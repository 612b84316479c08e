// Command pipeline measures what ovsnet's flow pipeline costs against a
// plain OVS bridge running the NORMAL action, on the same bridge, ports and
// containers in one run: TCP throughput (iperf3) and ping latency between two
// containers, with isolation off and on (icc=false plus a link), beside
// NORMAL with conntrack added (what any stateful isolation costs), for each
// attach type with 2 ports on the bridge, and for internal ports with 1,000.
// Each figure is the median of -reps rounds that take every setup in turn.
// It writes bench/results/pipeline.json.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

type result struct {
	Setup     string    `json:"setup"`
	Type      string    `json:"type"`
	Ports     int       `json:"ports_on_bridge"`
	Gbps      float64   `json:"tcp_gbit_per_s"` // median of Runs
	Runs      []float64 `json:"tcp_gbit_per_s_runs"`
	VsNormal  float64   `json:"tcp_vs_normal"` // Gbps over the NORMAL setup's, same ports
	PingAvgMs float64   `json:"ping_avg_ms"`
}

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	secs  = flag.Int("t", 5, "seconds per iperf3 run")
	reps  = flag.Int("reps", 9, "rounds over every setup (medians are reported; single 5 s runs of one setup vary by ±15% here)")
	extra = flag.Int("ports", 1000, "ports on the bridge for the large case")
	out   = flag.String("out", "bench/results/pipeline.json", "result file")
)

func main() {
	flag.Parse()
	sb, err := sandbox.Start("ovsnet-bench", "")
	check(err)
	defer sb.Close()
	c1, c2 := "bench-p1", "bench-p2"
	for _, c := range []string{c1, c2} {
		check(sandbox.AddNetns(c))
		defer sandbox.DelNetns(c)
	}
	run := func(args ...string) {
		_, err := sb.Run(*bin, args...)
		check(err)
	}
	run("add-br", "br0", "--subnet", "10.125.0.0/16", "--icc=false")
	dst := "10.125.0.3"
	var rs []result
	typ := ""
	attach := func(t string) {
		typ = t
		run("del-ports", "br0", c1)
		run("del-ports", "br0", c2)
		run("add-port", "br0", "eth1", c1, "--ip", "--type", t)
		run("add-port", "br0", "eth1", c2, "--ip", "--type", t)
	}
	icc := func(on bool) {
		_, err := sb.Vsctl("set", "bridge", "br0", fmt.Sprintf("external_ids:ovsnet-icc=%t", on))
		check(err)
		run("reconcile")
	}
	type setup struct {
		name  string
		apply func()
	}
	normalCT := filepath.Join(sb.Dir, "normal-ct.flows")
	check(os.WriteFile(normalCT, []byte(strings.Join([]string{
		"priority=0,actions=NORMAL",
		"priority=10,ip,actions=ct(table=1,zone=1)",
		"table=1,priority=10,ct_state=+trk+new,ip,actions=ct(commit,zone=1),NORMAL",
		"table=1,priority=10,ct_state=+trk+est,ip,actions=NORMAL",
		"table=1,priority=10,ct_state=+trk+rel,ip,actions=NORMAL",
		"table=1,priority=0,actions=drop",
	}, "\n")+"\n"), 0o644))
	setups := []setup{
		// Isolation on: only a link lets c1 reach c2.
		{"ovsnet pipeline, isolation on (icc=false + link)", func() { icc(false) }},
		// Isolation off: the same pipeline without conntrack.
		{"ovsnet pipeline, isolation off", func() { icc(true) }},
		// The least any stateful isolation costs: NORMAL plus one ct per
		// IP packet both ways and a commit of each new connection
		// (hand-written flows, not ovsnet's), to tell conntrack's share
		// of isolation's cost from the pipeline's.
		{"plain OVS bridge, NORMAL + conntrack", func() {
			_, err := sb.Run("ovs-ofctl", "-O", "OpenFlow14", "replace-flows", "br0", normalCT)
			check(err)
		}},
		// A plain bridge: the NORMAL action (MAC learning, flooding). Last:
		// the ratios are to it.
		{"plain OVS bridge, NORMAL action", func() {
			_, err := sb.Run("ovs-ofctl", "-O", "OpenFlow14", "replace-flows", "br0", "/dev/stdin")
			check(err)
			_, err = sb.Run("ovs-ofctl", "add-flow", "br0", "priority=0,actions=NORMAL")
			check(err)
		}},
	}
	// measureAll takes the setups in turn within each round, so that
	// drift over the run (the other core's load, the host's caches) falls
	// on all of them alike rather than on whichever came last.
	measureAll := func(ports int) {
		run("link", "br0", c1, c2)
		pings := make([][]float64, len(setups))
		gbps := make([][]float64, len(setups))
		for i := 0; i < *reps; i++ {
			for j, st := range setups {
				st.apply()
				time.Sleep(time.Second) // ovs-vswitchd revalidates the datapath's flows
				p, err := measure.PingAvgMs(c1, dst, 100)
				check(err)
				g, err := measure.TCPGbps(c1, c2, dst, *secs)
				check(err)
				pings[j], gbps[j] = append(pings[j], p), append(gbps[j], g)
			}
		}
		normal := measure.Median(gbps[len(setups)-1]) // the last setup is NORMAL
		for j, st := range setups {
			r := result{Setup: st.name, Type: typ, Ports: ports, PingAvgMs: measure.Median(pings[j]), Gbps: measure.Median(gbps[j]), Runs: gbps[j]}
			r.VsNormal = r.Gbps / normal
			fmt.Printf("%-50s %-8s %6d %8.2f Gbit/s (%.2fx NORMAL) %8.3f ms\n", r.Setup, r.Type, r.Ports, r.Gbps, r.VsNormal, r.PingAvgMs)
			rs = append(rs, r)
		}
		// Back to ovsnet's intent.
		icc(false)
		run("unlink", "br0", c1, c2)
		run("reconcile")
	}
	for _, t := range []string{"veth", "internal"} {
		attach(t)
		measureAll(3)
	}
	// Grow the bridge: internal ports that stay in the host, added in
	// batches (one ovs-vsctl transaction each).
	for i := 0; i < *extra; i += 100 {
		args := []string{}
		for j := i; j < i+100 && j < *extra; j++ {
			args = append(args, "--", "add-port", "br0", fmt.Sprintf("bx%d", j), "--", "set", "interface", fmt.Sprintf("bx%d", j), "type=internal")
		}
		_, err := sb.Vsctl(args...)
		check(err)
	}
	time.Sleep(5 * time.Second)
	measureAll(3 + *extra)

	check(measure.Write(*out, map[string]any{"datapath": "netdev (userspace), userspace TSO on",
		"note": fmt.Sprintf("medians of %d rounds, each taking every setup in turn: %d s of TCP and 100 pings 20 ms apart", *reps, *secs)}, rs))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}
