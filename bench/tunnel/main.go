// Command tunnel measures containers talking across hosts: TCP throughput
// (iperf3) and ping latency between containers on two sandbox hosts joined
// by a veth underlay, over VXLAN as a kernel device (the userspace
// datapath's default), over OVS's own VXLAN and over GRE, against the same
// containers on one host on the same (spanning) network and on a plain
// one-host bridge. Each figure is the median of -reps runs. It writes
// bench/results/tunnel.json.
package main

import (
	"flag"
	"fmt"
	"os/exec"
	"strings"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

type result struct {
	Setup     string  `json:"setup"`
	Gbps      float64 `json:"tcp_gbit_per_s"`
	PingAvgMs float64 `json:"ping_avg_ms"`
	MTU       string  `json:"container_mtu"`
}

var (
	bin  = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	secs = flag.Int("t", 5, "seconds per iperf3 run")
	reps = flag.Int("reps", 3, "runs per setup (medians are reported)")
	out  = flag.String("out", "bench/results/tunnel.json", "result file")
)

func main() {
	flag.Parse()
	var rs []result
	for _, tun := range []struct{ typ, device, name string }{
		{"vxlan", "kernel", "vxlan (kernel device)"}, {"vxlan", "ovs", "vxlan (OVS port)"}, {"gre", "", "gre (OVS port)"},
	} {
		rs = append(rs, twoHosts(tun.typ, tun.device, tun.name)...)
	}
	rs = append(rs, oneHost())
	for _, r := range rs {
		fmt.Printf("%-40s %6.2f Gbit/s  ping %.3f ms  mtu %s\n", r.Setup, r.Gbps, r.PingAvgMs, r.MTU)
	}
	check(measure.Write(*out, map[string]any{"reps": *reps, "iperf3_seconds": *secs}, rs))
}

// twoHosts measures a container on host A to one on host B over a tunnel
// of typ on device, then two containers on host A on the same network.
func twoHosts(typ, device, name string) []result {
	var hs []*sandbox.Sandbox
	for i := 0; i < 2; i++ {
		h, err := sandbox.Start(fmt.Sprintf("ovsnet-tb%d", i), "")
		check(err)
		defer h.Close()
		hs = append(hs, h)
	}
	check(sandbox.Join("ovsnet-tbsw", hs...))
	defer sandbox.DelNetns("ovsnet-tbsw")
	cs := []string{"tb-a1", "tb-b1", "tb-a2"}
	for _, c := range cs {
		check(sandbox.AddNetns(c))
		defer sandbox.DelNetns(c)
	}
	for i, h := range hs {
		run(h, "add-br", "br0", "--subnet", "10.97.0.0/16", "--ip-range", fmt.Sprintf("10.97.%d.0/24", i+1))
		args := []string{"tunnel", "add", "br0", sandbox.UnderlayAddr(1 - i), "--type", typ}
		if device != "" {
			args = append(args, "--device", device)
		}
		run(h, args...)
	}
	run(hs[0], "add-port", "br0", "eth1", cs[0], "--ip") // 10.97.1.2
	run(hs[1], "add-port", "br0", "eth1", cs[1], "--ip") // 10.97.2.2
	run(hs[0], "add-port", "br0", "eth1", cs[2], "--ip") // 10.97.1.3
	return []result{
		measureSetup(name+", two hosts", cs[0], cs[1], "10.97.2.2"),
		measureSetup(name+" network, same host", cs[0], cs[2], "10.97.1.3"),
	}
}

// oneHost is the baseline: a bridge that spans nothing (TX offload on).
func oneHost() result {
	h, err := sandbox.Start("ovsnet-tb0", "")
	check(err)
	defer h.Close()
	for _, c := range []string{"tb-a1", "tb-a2"} {
		check(sandbox.AddNetns(c))
		defer sandbox.DelNetns(c)
	}
	run(h, "add-br", "br0", "--subnet", "10.98.0.0/24")
	run(h, "add-port", "br0", "eth1", "tb-a1", "--ip")
	run(h, "add-port", "br0", "eth1", "tb-a2", "--ip")
	return measureSetup("one-host bridge (no --ip-range)", "tb-a1", "tb-a2", "10.98.0.3")
}

func measureSetup(name, c1, c2, addr string) result {
	var gs, ps []float64
	for i := 0; i < *reps; i++ {
		g, err := measure.TCPGbps(c1, c2, addr, *secs)
		check(err)
		p, err := measure.PingAvgMs(c1, addr, 20)
		check(err)
		gs, ps = append(gs, g), append(ps, p)
	}
	return result{Setup: name, Gbps: measure.Median(gs), PingAvgMs: measure.Median(ps), MTU: containerMTU(c1)}
}

func containerMTU(c string) string {
	out, err := exec.Command("ip", "-n", c, "-o", "link", "show", "eth1").Output()
	check(err)
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "mtu" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "?"
}

func run(h *sandbox.Sandbox, args ...string) {
	_, err := h.Run(*bin, args...)
	check(err)
}

// check panics, so that the deferred clean-ups run.
func check(err error) {
	if err != nil {
		panic(fmt.Sprint("tunnel bench: ", err))
	}
}
