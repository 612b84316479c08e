// Command tunnel measures containers talking across hosts: TCP throughput
// (iperf3) and ping latency between containers on two sandbox hosts joined
// by a veth underlay, over VXLAN as a kernel device (the userspace
// datapath's default), over OVS's own VXLAN, over OVS's own GRE and, where
// the kernel has ip_gre, GRE as a kernel gretap device, against the same
// containers on one host on the same (spanning) network and on a plain
// one-host bridge. Each figure is the median of -reps runs. It writes
// bench/results/tunnel.json; -datapath netdev measures the userspace
// datapath on a host that would pick the kernel one (test/vm's guest).
package main

import (
	"flag"
	"fmt"
	"os/exec"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	netmesh "github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

type result struct {
	Setup     string  `json:"setup"`
	Gbps      float64 `json:"tcp_gbit_per_s"`
	Retrans   int     `json:"tcp_retransmits"` // median of the runs
	PingAvgMs float64 `json:"ping_avg_ms"`
	MTU       string  `json:"container_mtu"`
}

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	secs  = flag.Int("t", 5, "seconds per iperf3 run")
	reps  = flag.Int("reps", 3, "runs per setup (medians are reported)")
	out   = flag.String("out", "bench/results/tunnel.json", "result file")
	hosts = flag.Int("mesh", 10, "hosts in the full-mesh run (kernel VXLAN; 0: skip)")
	dp    = flag.String("datapath", "", "the bridges' datapath (add-br --datapath; default: detected)")
)

// meshResult is a full mesh of kernel VXLAN tunnels: how long building
// it took, and host 0's container reaching every other host's.
type meshResult struct {
	Hosts       int     `json:"hosts"`
	SetupSecs   float64 `json:"mesh_setup_seconds"`
	Reached     string  `json:"containers_reached_from_host_0"`
	FirstPingMs float64 `json:"first_ping_median_ms"`
	PingAvgMs   float64 `json:"ping_avg_median_ms"`
}

func main() {
	flag.Parse()
	var rs []result
	tuns := []struct{ typ, device, name string }{
		{"vxlan", "kernel", "vxlan (kernel device)"}, {"vxlan", "ovs", "vxlan (OVS port)"}, {"gre", "ovs", "gre (OVS port)"},
	}
	if netmesh.KernelGRE() {
		tuns = append(tuns, struct{ typ, device, name string }{"gre", "kernel", "gre (kernel device)"})
	}
	for _, tun := range tuns {
		rs = append(rs, twoHosts(tun.typ, tun.device, tun.name)...)
	}
	rs = append(rs, oneHost())
	for _, r := range rs {
		fmt.Printf("%-40s %6.2f Gbit/s  %7d retransmits  ping %.3f ms  mtu %s\n", r.Setup, r.Gbps, r.Retrans, r.PingAvgMs, r.MTU)
	}
	extra := map[string]any{"reps": *reps, "iperf3_seconds": *secs}
	if *hosts > 0 {
		m := mesh(*hosts)
		fmt.Printf("%d-host mesh: built in %.1f s, reached %s, first ping %.1f ms, then %.3f ms\n", m.Hosts, m.SetupSecs, m.Reached, m.FirstPingMs, m.PingAvgMs)
		extra["mesh"] = m
	}
	check(measure.Write(*out, extra, rs))
}

// addBr is add-br br0 with subnet (and, spanning hosts, its range)
// on the datapath -datapath names.
func addBr(subnet, ipRange string) []string {
	args := []string{"add-br", "br0", "--subnet", subnet}
	if ipRange != "" {
		args = append(args, "--ip-range", ipRange)
	}
	if *dp != "" {
		args = append(args, "--datapath", *dp)
	}
	return args
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
		run(h, addBr("10.97.0.0/16", fmt.Sprintf("10.97.%d.0/24", i+1))...)
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

// mesh builds a full mesh of n hosts (one kernel VXLAN device each, n-1
// forwarding entries) with a container on each, and pings every other
// host's container from host 0's: the first ping (ARP through the
// device's flooding) and then a steady one.
func mesh(n int) meshResult {
	var hs []*sandbox.Sandbox
	for i := 0; i < n; i++ {
		h, err := sandbox.Start(fmt.Sprintf("ovsnet-tm%d", i), "")
		check(err)
		defer h.Close()
		hs = append(hs, h)
	}
	check(sandbox.Join("ovsnet-tmsw", hs...))
	defer sandbox.DelNetns("ovsnet-tmsw")
	t := time.Now()
	for i, h := range hs {
		run(h, addBr("10.96.0.0/16", fmt.Sprintf("10.96.%d.0/24", i+1))...)
		for j := range hs {
			if i != j {
				run(h, "tunnel", "add", "br0", sandbox.UnderlayAddr(j))
			}
		}
		c := fmt.Sprintf("tm-c%d", i)
		check(sandbox.AddNetns(c))
		defer sandbox.DelNetns(c)
		run(h, "add-port", "br0", "eth1", c, "--ip")
	}
	r := meshResult{Hosts: n, SetupSecs: time.Since(t).Seconds()}
	var first, avg []float64
	for j := 1; j < n; j++ {
		addr := fmt.Sprintf("10.96.%d.2", j+1)
		t := time.Now()
		if exec.Command("ip", "netns", "exec", "tm-c0", "ping", "-c", "1", "-W", "3", addr).Run() != nil {
			continue
		}
		first = append(first, float64(time.Since(t).Microseconds())/1000)
		p, err := measure.PingAvgMs("tm-c0", addr, 10)
		check(err)
		avg = append(avg, p)
	}
	r.Reached = fmt.Sprintf("%d/%d", len(first), n-1)
	if len(first) > 0 {
		r.FirstPingMs, r.PingAvgMs = measure.Median(first), measure.Median(avg)
	}
	return r
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
	run(h, addBr("10.98.0.0/24", "")...)
	run(h, "add-port", "br0", "eth1", "tb-a1", "--ip")
	run(h, "add-port", "br0", "eth1", "tb-a2", "--ip")
	return measureSetup("one-host bridge (no --ip-range)", "tb-a1", "tb-a2", "10.98.0.3")
}

func measureSetup(name, c1, c2, addr string) result {
	var gs, rs, ps []float64
	for i := 0; i < *reps; i++ {
		r, err := measure.TCPRun(c1, c2, addr, *secs)
		check(err)
		p, err := measure.PingAvgMs(c1, addr, 20)
		check(err)
		gs, rs, ps = append(gs, r.Gbps), append(rs, float64(r.Retransmits)), append(ps, p)
	}
	return result{Setup: name, Gbps: measure.Median(gs), Retrans: int(measure.Median(rs)), PingAvgMs: measure.Median(ps), MTU: containerMTU(c1)}
}

func containerMTU(c string) string {
	m, err := measure.LinkMTU(c, "eth1")
	check(err)
	return m
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
