// Command scale measures ovsnet with many containers on one bridge, in a
// private sandbox host:
//
//   - seq: attach containers one at a time up to -seq ports, recording each
//     attach's wall time and ovsnet's own CPU time (user+sys of the CLI),
//     beside a bare ovs-ofctl round trip every -every attaches;
//   - bulk: `ovsnet add-ports` of -bulk containers, per attach type;
//   - scale: -scale containers on one bridge attached with add-ports in
//     batches of -batch, random pairs pinging, ovs-vswitchd's memory and CPU,
//     then the controller's cold start (first convergence) and memory.
//
// Results go to bench/results/scale.json.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var (
	bin     = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	seqN    = flag.Int("seq", 2000, "one-at-a-time attaches (0: skip)")
	every   = flag.Int("every", 100, "ovs-ofctl round trip every this many attaches")
	bulkN   = flag.Int("bulk", 1000, "containers per bulk attach (0: skip)")
	scaleN  = flag.Int("scale", 10000, "containers on one bridge (0: skip)")
	batch   = flag.Int("batch", 1000, "containers per add-ports call in the scale run")
	pairs   = flag.Int("pairs", 20, "random pairs pinged in the scale run")
	natN    = flag.Int("publish", 1000, "ports published in the NAT run (0: skip)")
	outPath = flag.String("out", "bench/results/scale.json", "result file")
	starts  = flag.Int("starts", 5, "controller cold starts measured in the scale run (the median is reported)")
	hold    = flag.Bool("hold", false, "after the scale run, keep its host and containers until interrupted (to profile the controller against them)")
)

type seqPoint struct {
	Ports      int     `json:"ports_on_bridge"`
	WallMs     float64 `json:"wall_ms"`
	CPUMs      float64 `json:"ovsnet_cpu_ms"`
	OfctlRTTMs float64 `json:"ovs_ofctl_round_trip_ms,omitempty"`
}

type bulkResult struct {
	Type       string  `json:"type"`
	Containers int     `json:"containers"`
	WallS      float64 `json:"wall_s"`
	CPUS       float64 `json:"ovsnet_cpu_s"`
}

type scaleResult struct {
	Containers        int       `json:"containers"`
	Type              string    `json:"type"`
	BatchWallS        []float64 `json:"batch_wall_s"`
	TotalAttachS      float64   `json:"total_attach_s"`
	PairsPinged       int       `json:"pairs_pinged"`
	PairsOK           int       `json:"pairs_ok"`
	PingAvgMs         float64   `json:"ping_avg_ms"`
	VswitchdRSSMB     float64   `json:"ovs_vswitchd_rss_mb"`
	VswitchdCPUPct    float64   `json:"ovs_vswitchd_idle_cpu_percent"`
	ControllerReadyS  float64   `json:"controller_cold_start_s"` // median of ColdStartsS
	ColdStartsS       []float64 `json:"controller_cold_starts_s"`
	ControllerRSSMB   float64   `json:"controller_rss_mb"`
	ControllerPeakMB  float64   `json:"controller_peak_rss_mb"`
	ReconcileNoDriftS float64   `json:"reconcile_no_drift_s"`
}

var sb *sandbox.Sandbox
var abs string

func main() {
	flag.Parse()
	var err error
	abs, err = filepath.Abs(*bin)
	check(err)
	doc := map[string]any{"datapath": "netdev (userspace)", "cpus": 2}
	results := map[string]any{}
	if *seqN > 0 {
		results["sequential"] = runSeq()
		write(doc, results)
	}
	if *bulkN > 0 {
		results["bulk"] = runBulk()
		write(doc, results)
	}
	if *natN > 0 {
		results["nat"] = runNAT()
		write(doc, results)
	}
	if *scaleN > 0 {
		results["scale"] = runScale()
		write(doc, results)
	}
}

type natResult struct {
	Ports          int     `json:"ports_published"`
	OneByOneS      float64 `json:"one_publish_per_call_s"`
	FirstMs        float64 `json:"first_100_median_ms"`
	LastMs         float64 `json:"last_100_median_ms"`
	OneCallS       float64 `json:"all_in_one_publish_call_s"`
	UnpublishAllS  float64 `json:"unpublish_all_in_one_call_s"`
	ContainersUsed int     `json:"containers"`
}

// runNAT publishes -publish ports one call at a time, spread over ten
// containers, then as many again in one call on one container.
func runNAT() natResult {
	s := start("ovsnet-nat")
	defer s.Close()
	names := netnses("nt", 0, 11)
	defer delNetnses(names)
	_, err := s.Run(abs, "add-br", "br0", "--subnet", "10.82.0.0/16", "--nat=true")
	check(err)
	for _, c := range names {
		_, err := s.Run(abs, "add-port", "br0", "eth1", c, "--ip")
		check(err)
	}
	r := natResult{Ports: *natN, ContainersUsed: 10}
	var walls []float64
	t := time.Now()
	for i := 0; i < *natN; i++ {
		w, _ := timed("", abs, "publish", "br0", names[i%10], fmt.Sprintf("%d:%d", 20000+i, 1000+i))
		walls = append(walls, w)
	}
	r.OneByOneS = time.Since(t).Seconds()
	k := min(100, len(walls))
	r.FirstMs, r.LastMs = measure.Median(walls[:k]), measure.Median(walls[len(walls)-k:])
	fmt.Printf("nat: %d publishes one per call in %.1f s (median %.1f ms first 100, %.1f ms last 100)\n", *natN, r.OneByOneS, r.FirstMs, r.LastMs)
	args := []string{"publish", "br0", names[10]}
	var specs []string
	for i := 0; i < *natN; i++ {
		specs = append(specs, fmt.Sprintf("%d:%d", 30000+i, 1000+i))
	}
	w, _ := timed("", abs, append(args, specs...)...)
	r.OneCallS = w / 1000
	w, _ = timed("", abs, append([]string{"unpublish", "br0", names[10]}, specs...)...)
	r.UnpublishAllS = w / 1000
	fmt.Printf("nat: %d publishes in one call %.1f s; unpublished in one call %.1f s\n", *natN, r.OneCallS, r.UnpublishAllS)
	return r
}

func write(doc map[string]any, results map[string]any) {
	// Keep sections of an earlier run that this one skipped.
	if b, err := os.ReadFile(*outPath); err == nil {
		var old struct {
			Results map[string]json.RawMessage `json:"results"`
		}
		if json.Unmarshal(b, &old) == nil {
			for k, v := range old.Results {
				if _, ok := results[k]; !ok {
					results[k] = v
				}
			}
		}
	}
	check(measure.Write(*outPath, doc, results))
}

func start(name string) *sandbox.Sandbox {
	s, err := sandbox.Start(name, "")
	check(err)
	sb = s
	return s
}

// created are the namespaces to remove however the run ends.
var created []string

// netnses creates n named network namespaces in one ip process (any of a
// failed earlier run's removed first).
func netnses(prefix string, from, n int) []string {
	var names []string
	var b strings.Builder
	for i := from; i < from+n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		names = append(names, name)
		fmt.Fprintf(&b, "netns add %s\n", name)
	}
	delNetnses(names)
	created = append(created, names...)
	c := exec.Command("ip", "-batch", "-")
	c.Stdin = strings.NewReader(b.String())
	if out, err := c.CombinedOutput(); err != nil {
		check(fmt.Errorf("ip netns add: %v: %s", err, out))
	}
	return names
}

func delNetnses(names []string) {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "netns del %s\n", n)
	}
	c := exec.Command("ip", "-force", "-batch", "-")
	c.Stdin = strings.NewReader(b.String())
	c.Run()
}

// timed runs a command in the sandbox host and returns its wall time and
// the CPU time (user+sys) of it and its waited-for children, in ms.
func timed(stdin string, name string, args ...string) (wall, cpu float64) {
	c := sb.Command(name, args...)
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	t := time.Now()
	out, err := c.CombinedOutput()
	wall = float64(time.Since(t).Microseconds()) / 1000
	if err != nil {
		check(fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, tail(string(out))))
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	cpu = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
	return wall, cpu
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

func runSeq() []seqPoint {
	s := start("ovsnet-seq")
	defer s.Close()
	names := netnses("sq", 0, *seqN)
	defer delNetnses(names)
	_, err := s.Run(abs, "add-br", "br0", "--subnet", "10.80.0.0/16")
	check(err)
	var pts []seqPoint
	for i, c := range names {
		w, cpu := timed("", abs, "add-port", "br0", "eth1", c, "--ip")
		p := seqPoint{Ports: i, WallMs: w, CPUMs: cpu}
		if i%*every == 0 || i == len(names)-1 {
			p.OfctlRTTMs, _ = timed("", "ovs-ofctl", "add-flow", "br0", "table=99,priority=1,actions=drop")
			fmt.Printf("seq: %5d ports: attach %.1f ms wall, %.1f ms ovsnet CPU; ovs-ofctl round trip %.1f ms\n", i, w, cpu, p.OfctlRTTMs)
		}
		pts = append(pts, p)
	}
	return pts
}

func runBulk() []bulkResult {
	var rs []bulkResult
	for _, typ := range []string{"veth", "internal"} {
		s := start("ovsnet-bulk")
		names := netnses("bk", 0, *bulkN)
		_, err := s.Run(abs, "add-br", "br0", "--subnet", "10.81.0.0/16")
		check(err)
		var list strings.Builder
		for _, c := range names {
			fmt.Fprintf(&list, "eth1 %s\n", c)
		}
		w, cpu := timed(list.String(), abs, "add-ports", "br0", "-", "--ip", "--type", typ)
		r := bulkResult{Type: typ, Containers: *bulkN, WallS: w / 1000, CPUS: cpu / 1000}
		fmt.Printf("bulk: %d %s containers in %.2f s (ovsnet CPU %.2f s)\n", *bulkN, typ, r.WallS, r.CPUS)
		rs = append(rs, r)
		s.Close()
		delNetnses(names)
	}
	return rs
}

func runScale() scaleResult {
	s := start("ovsnet-scale")
	defer s.Close()
	r := scaleResult{Containers: *scaleN, Type: "veth"}
	_, err := s.Run(abs, "add-br", "br0", "--subnet", "10.96.0.0/12")
	check(err)
	var all []string
	defer func() { delNetnses(all) }()
	for done := 0; done < *scaleN; done += *batch {
		n := min(*batch, *scaleN-done)
		names := netnses("sc", done, n)
		all = append(all, names...)
		var list strings.Builder
		for _, c := range names {
			fmt.Fprintf(&list, "eth1 %s\n", c)
		}
		w, _ := timed(list.String(), abs, "add-ports", "br0", "-", "--ip", "--type", "veth")
		r.BatchWallS = append(r.BatchWallS, w/1000)
		r.TotalAttachS += w / 1000
		fmt.Printf("scale: %d containers attached (batch of %d in %.1f s)\n", done+n, n, w/1000)
	}
	// Random pairs reach each other (addresses from show -o json).
	out, err := s.Run(abs, "show", "br0", "-o", "json")
	check(err)
	addrOf := map[string]string{}
	var show []struct {
		Ports []struct {
			Container string   `json:"container"`
			Addresses []string `json:"addresses"`
		} `json:"containers"`
	}
	check(json.Unmarshal([]byte(out), &show))
	for _, b := range show {
		for _, p := range b.Ports {
			if len(p.Addresses) > 0 {
				addrOf[p.Container] = strings.Split(p.Addresses[0], "/")[0]
			}
		}
	}
	rng := rand.New(rand.NewSource(1))
	var sum float64
	for i := 0; i < *pairs; i++ {
		a, b := all[rng.Intn(len(all))], all[rng.Intn(len(all))]
		if a == b || addrOf[b] == "" {
			continue
		}
		r.PairsPinged++
		if ms, err := measure.PingAvgMs(a, addrOf[b], 3); err == nil {
			r.PairsOK++
			sum += ms
		} else {
			fmt.Println("scale: ping failed:", a, "->", b, err)
		}
	}
	if r.PairsPinged == 0 {
		check(fmt.Errorf("no container addresses found in `ovsnet show -o json`"))
	}
	if r.PairsOK > 0 {
		r.PingAvgMs = sum / float64(r.PairsOK)
	}
	fmt.Printf("scale: %d/%d random pairs reach each other, ping %.1f ms\n", r.PairsOK, r.PairsPinged, r.PingAvgMs)
	pid := pidOf(filepath.Join(s.Dir, "ovs-vswitchd.pid"))
	r.VswitchdRSSMB = rssMB(pid, "VmRSS")
	r.VswitchdCPUPct = cpuPercent(pid, 5*time.Second)
	fmt.Printf("scale: ovs-vswitchd %.0f MB RSS, %.0f%% CPU idle\n", r.VswitchdRSSMB, r.VswitchdCPUPct)

	t := time.Now()
	_, err = s.Run(abs, "reconcile")
	check(err)
	r.ReconcileNoDriftS = time.Since(t).Seconds()

	// Several cold starts: one varied by 0.8 s from run to run.
	for i := 0; i < *starts; i++ {
		ready, rss, peak := coldStart(s)
		r.ColdStartsS = append(r.ColdStartsS, ready)
		// Memory of the last start (all alike within a few MB).
		r.ControllerRSSMB, r.ControllerPeakMB = rss, peak
		fmt.Printf("scale: controller cold start %d: %.2f s\n", i+1, ready)
	}
	r.ControllerReadyS = measure.Median(r.ColdStartsS)
	fmt.Printf("scale: controller cold start %.2f s, %.0f MB RSS (peak %.0f MB); reconcile without drift %.2f s\n",
		r.ControllerReadyS, r.ControllerRSSMB, r.ControllerPeakMB, r.ReconcileNoDriftS)
	if *hold {
		fmt.Printf("scale: holding the host; reach it with: ip netns exec %s env OVS_RUNDIR=%s %s show; interrupt to clean up\n", s.Netns, s.Dir, abs)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	return r
}

// coldStart starts the controller and returns the seconds from exec to its
// first convergence, which it reports as READY=1 on systemd's notify socket
// (its unit is Type=notify), and its resident and peak memory 2 s later.
// Polling /healthz instead ran an ovsnet process every 20 ms, taking CPU
// from the start it measured on two cores.
func coldStart(s *sandbox.Sandbox) (readyS, rss, peak float64) {
	n, err := measure.NewNotify(s.Dir)
	check(err)
	defer n.Close()
	ctl := s.Command(abs, "controller", "--listen", "127.0.0.1:9477", "--resync", "1h", "--pool", "0")
	ctl.Env = append(ctl.Env, "NOTIFY_SOCKET="+n.Path)
	ctl.Stdout, ctl.Stderr = nil, nil
	t := time.Now()
	check(ctl.Start())
	defer func() { ctl.Process.Kill(); ctl.Wait() }()
	check(n.WaitReady(5 * time.Minute))
	readyS = time.Since(t).Seconds()
	if !healthy(s) {
		check(fmt.Errorf("controller said READY=1 but /healthz is not healthy"))
	}
	time.Sleep(2 * time.Second)
	cpid := controllerPid(ctl.Process.Pid)
	return readyS, rssMB(cpid, "VmRSS"), rssMB(cpid, "VmHWM")
}

func healthy(s *sandbox.Sandbox) bool {
	// The controller listens inside the sandbox host's netns.
	out, err := s.Command(abs, "status", "--controller", "127.0.0.1:9477", "-o", "json").Output()
	return err == nil && strings.Contains(string(out), `"healthy": true`)
}

// controllerPid finds ovsnet under `ip netns exec` (which execs it: same pid).
func controllerPid(pid int) int { return pid }

func pidOf(file string) int {
	b, err := os.ReadFile(file)
	check(err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	check(err)
	return n
}

func rssMB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuPercent samples a process's CPU use over d.
func cpuPercent(pid int, d time.Duration) float64 {
	ticks := func() float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		return u + s
	}
	a := ticks()
	time.Sleep(d)
	return (ticks() - a) / 100 / d.Seconds() * 100 // USER_HZ = 100
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		if sb != nil {
			sb.Close()
		}
		delNetnses(created)
		os.Exit(1)
	}
}
