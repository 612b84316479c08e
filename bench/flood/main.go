// Command flood measures what one container's flood (hping3 --flood, the
// tool's default: TCP segments without flags to one target, ~40-byte
// packets as fast as it can send them) costs the containers beside it:
// TCP throughput (iperf3) between two containers on another bridge and
// ping between two on the flooder's own bridge, with no flood, with the
// same flood sent to the flooder's own loopback (its CPU cost alone: the
// switch never sees it), and with the flood through the switch from
// ports whose flood bound is off, the default, and tight; each flood with
// the flooder's CPU unlimited and held to half a CPU (a CPU cgroup, as a
// runtime's --cpus makes), which separates what the flooder's own CPU
// costs (no switch can bound it) from what the switch does. Each figure is
// the median of -reps runs; ratios are to the quiet runs of the same
// invocation. It writes bench/results/flood.json.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	secs  = flag.Int("t", 3, "seconds per iperf3 run")
	reps  = flag.Int("reps", 3, "runs per condition (medians are reported)")
	tight = flag.Int("tight", 1000, "the tight bound measured, packets a second")
	// A container runtime's CPU limit (docker run --cpus) caps the
	// flooder's own CPU, which no switch can: measured with and without.
	limits = flag.String("flooder-cpus", "0,0.5", "CPU limits of the flooder to measure (0: none), comma-separated")
	out    = flag.String("out", "bench/results/flood.json", "result file")
)

type result struct {
	Condition      string  `json:"condition"`
	FloodTo        string  `json:"flood_to,omitempty"`
	BoundPPS       *int    `json:"bound_pps,omitempty"`
	Gbps           float64 `json:"victim_tcp_gbit_per_s"` // another bridge
	Ratio          float64 `json:"victim_tcp_ratio_to_quiet"`
	PingMs         float64 `json:"neighbour_ping_avg_ms"` // the flooder's bridge
	FloodKpps      float64 `json:"flood_sent_kpps,omitempty"`
	PassedKpps     float64 `json:"flood_through_meter_kpps,omitempty"`
	DroppedByMeter float64 `json:"flood_dropped_share,omitempty"`
	FlooderCPUs    float64 `json:"flooder_cpu_limit,omitempty"`
}

// host is the setup: br0 holds the flooders (one per bound), their
// target and two neighbours; br1 the victim pair.
type host struct {
	sb       *sandbox.Sandbox
	flooders map[string]port // by bound name
}

type port struct {
	netns  string
	ofport int
	bound  int
}

func main() {
	flag.Parse()
	h := setup()
	defer h.close()
	quiet := condition(h, "quiet", spec{})
	rs := []result{quiet}
	for _, cpus := range parseCPUs(*limits) {
		if cpus > 0 && !cpuGroups() {
			fmt.Println("no CPU cgroup controller here: the runs with the flooder's CPU held are skipped")
			continue
		}
		of := ""
		if cpus > 0 {
			of = fmt.Sprintf(", flooder held to %.2g CPU", cpus)
		}
		rs = append(rs,
			condition(h, "flood to its own loopback (CPU only)"+of, spec{"off", "127.0.0.1", cpus}),
			condition(h, "flood through the switch, no bound"+of, spec{"off", "10.73.0.3", cpus}),
			condition(h, "flood through the switch, default bound"+of, spec{"default", "10.73.0.3", cpus}),
			condition(h, "flood through the switch, tight bound"+of, spec{"tight", "10.73.0.3", cpus}))
	}
	for i := range rs {
		rs[i].Ratio = rs[i].Gbps / quiet.Gbps
		r := rs[i]
		fmt.Printf("%-62s victim TCP %6.2f Gbit/s (%.2fx)  neighbour ping %.3f ms  flood %6.1f kpps, %6.1f kpps passed\n",
			r.Condition, r.Gbps, r.Ratio, r.PingMs, r.FloodKpps, r.PassedKpps)
	}
	dp, _ := h.sb.Vsctl("get", "bridge", "br0", "datapath_type")
	check(measure.Write(*out, map[string]any{"reps": *reps, "iperf3_seconds": *secs, "datapath": strings.TrimSpace(dp), "cpus": runtime.NumCPU()}, rs))
}

// spec is one condition's flood: from the flooder of bound ("off",
// "default", "tight") to addr ("": no flood), in a CPU cgroup of cpus
// CPUs (0: no limit).
type spec struct {
	bound, addr string
	cpus        float64
}

func parseCPUs(s string) []float64 {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		check(err)
		out = append(out, v)
	}
	return out
}

func setup() *host {
	sb, err := sandbox.Start("ovsnet-fb0", "")
	check(err)
	h := &host{sb: sb, flooders: map[string]port{}}
	run(h, "add-br", "br0", "--subnet", "10.73.0.0/24")
	run(h, "add-br", "br1", "--subnet", "10.74.0.0/24")
	for _, c := range []string{"fb-tgt", "fb-n1", "fb-n2"} { // 10.73.0.3, .4, .5 after the first flooder
		if c == "fb-tgt" {
			h.flooders["off"] = h.attach("br0", "fb-f0", "--flood-limit", "0") // 10.73.0.2
		}
		h.attach("br0", c)
	}
	h.flooders["default"] = h.attach("br0", "fb-fd")
	h.flooders["tight"] = h.attach("br0", "fb-ft", "--flood-limit", strconv.Itoa(*tight))
	h.attach("br1", "fb-v1")
	h.attach("br1", "fb-v2") // 10.74.0.3
	return h
}

func (h *host) attach(bridge, c string, args ...string) port {
	check(sandbox.AddNetns(c))
	o, err := h.sb.Run(*bin, append([]string{"add-port", bridge, "eth1", c, "--ip", "-o", "json"}, args...)...)
	check(err)
	var p struct {
		Ofport   int `json:"ofport"`
		FloodPPS int `json:"flood_pps"`
	}
	check(json.Unmarshal([]byte(o), &p))
	return port{netns: c, ofport: p.Ofport, bound: p.FloodPPS}
}

func (h *host) close() {
	for _, c := range []string{"fb-f0", "fb-tgt", "fb-n1", "fb-n2", "fb-fd", "fb-ft", "fb-v1", "fb-v2"} {
		sandbox.DelNetns(c)
	}
	h.sb.Close()
	os.Remove("/sys/fs/cgroup/cpu/" + cgroupName)
	os.Remove("/sys/fs/cgroup/" + cgroupName)
}

// condition measures the victims during the flood sp.
func condition(h *host, name string, sp spec) result {
	r := result{Condition: name, FloodTo: sp.addr, FlooderCPUs: sp.cpus}
	var gs, ps, sent, passed, dropped []float64
	for i := 0; i < *reps; i++ {
		var f *floodRun
		if sp.addr != "" {
			f = h.startFlood(h.flooders[sp.bound], sp.addr, sp.cpus)
		}
		g, err := measure.TCPGbps("fb-v1", "fb-v2", "10.74.0.3", *secs)
		check(err)
		p, err := measure.PingAvgMs("fb-n1", "10.73.0.5", 50)
		check(err)
		gs, ps = append(gs, g), append(ps, p)
		if f != nil {
			s, pa, d := f.stop()
			sent, passed, dropped = append(sent, s), append(passed, pa), append(dropped, d)
		}
	}
	r.Gbps, r.PingMs = measure.Median(gs), measure.Median(ps)
	if sp.addr != "" {
		b := h.flooders[sp.bound].bound
		r.BoundPPS = &b
		r.FloodKpps, r.PassedKpps, r.DroppedByMeter = measure.Median(sent), measure.Median(passed), measure.Median(dropped)
	}
	return r
}

// floodRun is hping3 flooding from a port, with the port's meter read
// before and after.
type floodRun struct {
	h     *host
	p     port
	cmd   *exec.Cmd
	start time.Time
	in0   int
	drop0 int
}

func (h *host) startFlood(p port, addr string, cpus float64) *floodRun {
	f := &floodRun{h: h, p: p, start: time.Now()}
	f.in0, f.drop0 = h.meter(p)
	f.cmd = exec.Command("ip", "netns", "exec", p.netns, "hping3", "--flood", addr)
	if cpus > 0 {
		procs := cpuGroup(cpus)
		f.cmd = exec.Command("sh", "-c", `echo $$ > "$0" && exec "$@"`, procs, "ip", "netns", "exec", p.netns, "hping3", "--flood", addr)
	}
	check(f.cmd.Start())
	time.Sleep(500 * time.Millisecond) // under way before the victims are measured
	return f
}

// stop ends the flood and returns what it sent through the switch (kpps),
// what its meter let pass (kpps) and the share the meter dropped.
func (f *floodRun) stop() (sentKpps, passedKpps, dropped float64) {
	in, drop := f.h.meter(f.p)
	took := time.Since(f.start).Seconds()
	f.cmd.Process.Signal(syscall.SIGINT)
	f.cmd.Wait()
	in, drop = in-f.in0, drop-f.drop0
	if in == 0 {
		return 0, 0, 0
	}
	return float64(in) / took / 1000, float64(in-drop) / took / 1000, float64(drop) / float64(in)
}

// meter reads port p's meter: packets in and dropped (0, 0 without one).
func (h *host) meter(p port) (in, dropped int) {
	if p.bound == 0 {
		return h.portRx(p), 0
	}
	in, dropped, err := h.sb.MeterStats("br0", p.ofport)
	check(err)
	return in, dropped
}

var packetsRE = regexp.MustCompile(`n_packets=(\d+)`)

// portRx is the packets br0's classifier took from port p (the port's
// own statistics cannot be read once it is in its container).
func (h *host) portRx(p port) int {
	o, err := h.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", "br0", fmt.Sprintf("table=0,in_port=%d", p.ofport))
	check(err)
	n := 0
	for _, m := range packetsRE.FindAllStringSubmatch(o, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

const cgroupName = "ovsnet-bench-flood"

// cpuGroups says whether a CPU cgroup controller is mounted (v1's cpu,
// or v2's at /sys/fs/cgroup).
func cpuGroups() bool {
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		return true
	}
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	return err == nil && slices.Contains(strings.Fields(string(b)), "cpu")
}

// cpuGroup makes (or sets) a CPU cgroup of cpus CPUs, as a container
// runtime's --cpus does, and returns the file that takes a process into
// it: the cgroup v1 cpu controller's CFS quota, else cgroup v2's cpu.max.
func cpuGroup(cpus float64) string {
	quota := strconv.Itoa(int(cpus * 100000))
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		dir := "/sys/fs/cgroup/cpu/" + cgroupName
		check(os.MkdirAll(dir, 0o755))
		check(os.WriteFile(dir+"/cpu.cfs_period_us", []byte("100000"), 0o644))
		check(os.WriteFile(dir+"/cpu.cfs_quota_us", []byte(quota), 0o644))
		return dir + "/cgroup.procs"
	}
	check(os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+cpu"), 0o644))
	dir := "/sys/fs/cgroup/" + cgroupName
	check(os.MkdirAll(dir, 0o755))
	check(os.WriteFile(dir+"/cpu.max", []byte(quota+" 100000"), 0o644))
	return dir + "/cgroup.procs"
}

func run(h *host, args ...string) {
	_, err := h.sb.Run(*bin, args...)
	check(err)
}

// check panics, so that the deferred clean-ups run.
func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood bench:", err)
		panic(err)
	}
}
