// Command pool measures the warm pool side by side in one run: attach
// latency through a running `ovsnet controller` with the pool off and on
// (add-port --ip: an internal port, and a veth), Debian's ovs-docker
// add-port and a bare ovs-ofctl round trip, each with N ports already on
// its bridge; a burst of concurrent attaches with the pool off and on; the
// pool's refill after the burst; and ovs-vswitchd's CPU while idle with
// and without the pool's ports. Every command is forked from a thread
// inside the sandbox host. It writes bench/results/pool.json.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	sizes = flag.String("sizes", "10,100,1000", "ports already on each bridge")
	n     = flag.Int("n", 11, "attaches measured per variant and size")
	burst = flag.Int("burst", 20, "concurrent attaches in a burst")
	size  = flag.Int("pool", 8, "pool size (--pool) for single attaches")
	out   = flag.String("out", "bench/results/pool.json", "result file")
)

type row struct {
	Ports          int     `json:"ports_on_bridge"`
	OffMs          float64 `json:"pool_off_median_ms"`
	OffVethMs      float64 `json:"pool_off_veth_median_ms"`
	OnMs           float64 `json:"pool_on_median_ms"`
	OnVethMs       float64 `json:"pool_on_veth_median_ms"`
	OnMinMs        float64 `json:"pool_on_min_ms"`
	OnMaxMs        float64 `json:"pool_on_max_ms"`
	Hits           string  `json:"pool_hits"` // attaches that took a pool's port, of those measured
	OvsDockerMs    float64 `json:"ovs_docker_median_ms"`
	RoundTripMs    float64 `json:"ovs_ofctl_round_trip_median_ms"`
	DockerOverOn   float64 `json:"ovs_docker_over_pool_on"`
	BurstOffMs     float64 `json:"burst_pool_off_ms_per_attach"`
	BurstOnMs      float64 `json:"burst_pool_on_ms_per_attach"`
	BurstPool      int     `json:"burst_pool_size"`
	RefillSecs     float64 `json:"refill_after_burst_seconds"`
	IdleCPUOffPct  float64 `json:"vswitchd_idle_cpu_pool_off_pct"`
	IdleCPUOnPct   float64 `json:"vswitchd_idle_cpu_pool_on_pct"`
	IdlePoolPorts  int     `json:"pool_ports_idle"`
	NetnsMoveFloor string  `json:"floor"`
}

// bench is one run's sandbox host and tools.
type bench struct {
	sb     *sandbox.Sandbox
	l      *measure.Launcher
	abs    string
	env    []string
	shim   string
	seq    int
	nsList []string
	stops  []func()
	// poolTypes is what the pool keeps for single attaches (--pool-types).
	poolTypes []string
}

func main() {
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	check(err)
	sb, err := sandbox.Start("ovsnet-bpool", "")
	check(err)
	defer sb.Close()
	os.Setenv("OVS_RUNDIR", sb.Dir) // ovsdb.VswitchdCPU finds the sandbox's ovs-vswitchd
	dp := measure.Datapath()
	b := &bench{sb: sb, abs: abs, shim: filepath.Join(sb.Dir, "shim"), poolTypes: poolTypes(dp)}
	defer b.cleanup()
	check(os.MkdirAll(filepath.Join(b.shim, "pids"), 0o755))
	check(os.WriteFile(filepath.Join(b.shim, "docker"), []byte("#!/bin/sh\nexec cat "+b.shim+"/pids/\"$4\"\n"), 0o755))
	b.env = append(sb.Env(), "PATH="+b.shim+":"+os.Getenv("PATH"))
	b.l, err = measure.NewLauncher(sb.Netns)
	check(err)
	defer b.l.Close()
	_, err = sb.Run(abs, "add-br", "bn", "--subnet", "10.100.0.0/16")
	check(err)
	_, err = sb.Vsctl("add-br", "bd", "--", "set", "bridge", "bd", "datapath_type="+strings.Fields(dp)[0])
	check(err)
	var rows []row
	for _, f := range strings.Split(*sizes, ",") {
		s, err := strconv.Atoi(f)
		check(err)
		b.fill("bn", s)
		b.fill("bd", s)
		r := b.measure(s)
		fmt.Printf("%5d ports: pool off %6.1f ms (veth %6.1f), on %6.1f ms (veth %6.1f, %s from the pool, %.1f-%.1f), ovs-docker %6.1f ms (%.1fx on), ovs-ofctl round trip %6.1f ms; burst of %d: off %.1f ms/attach, on (pool %d) %.1f; refill %.2f s; ovs-vswitchd idle CPU %.1f%% off, %.1f%% with %d pool ports\n",
			s, r.OffMs, r.OffVethMs, r.OnMs, r.OnVethMs, r.Hits, r.OnMinMs, r.OnMaxMs, r.OvsDockerMs, r.DockerOverOn, r.RoundTripMs, *burst, r.BurstOffMs, r.BurstPool, r.BurstOnMs, r.RefillSecs, r.IdleCPUOffPct, r.IdleCPUOnPct, r.IdlePoolPorts)
		rows = append(rows, r)
	}
	check(measure.Write(*out, map[string]any{"datapath": dp, "neighbours": "veths, add-ports", "attaches_per_point": *n,
		"note": "wall time of add-port through a running controller, forked inside the sandbox host; pool off: --pool 0; on: --pool " + strconv.Itoa(*size) + " --pool-types " + strings.Join(b.poolTypes, ",")}, rows))
}

// measure takes one size's figures: the pool off, then on, each paced by
// an ovs-docker attach and an ovs-ofctl round trip (the figures of those).
func (b *bench) measure(s int) row {
	r := row{Ports: s, BurstPool: *burst, NetnsMoveFloor: "one netns move plus one process start"}
	var off, offVeth, on, onVeth, docker, rtt []float64
	hits := 0
	stop := b.controller("--pool", "0")
	cpuOff := idleCPU()
	for range *n {
		off = append(off, b.attach("")[0])
		offVeth = append(offVeth, b.attach("veth")[0])
		docker = append(docker, b.dockerAttach())
		rtt = append(rtt, b.roundTrip())
	}
	r.BurstOffMs = b.burst()
	stop()
	stop = b.controller("--pool", strconv.Itoa(*size), "--pool-types", strings.Join(b.poolTypes, ","))
	full := *size * len(b.poolTypes) // ports of every type kept
	b.waitPool(full)
	cpuOn := idleCPU()
	r.IdleCPUOffPct, r.IdleCPUOnPct, r.IdlePoolPorts = cpuOff, cpuOn, full
	for range *n {
		for _, typ := range []string{"", "veth"} {
			ms := b.attach(typ)
			if typ == "" {
				on = append(on, ms[0])
			} else {
				onVeth = append(onVeth, ms[0])
			}
			hits += int(ms[1])
		}
		b.dockerAttach()
		b.roundTrip()
		b.waitPool(full)
	}
	stop()
	stop = b.controller("--pool", strconv.Itoa(*burst), "--pool-types", "veth")
	b.waitPool(*burst)
	r.BurstOnMs = b.burst()
	t := time.Now()
	b.waitPool(*burst)
	r.RefillSecs = time.Since(t).Seconds()
	stop()
	r.OffMs, r.OffVethMs, r.OnMs, r.OnVethMs = measure.Median(off), measure.Median(offVeth), measure.Median(on), measure.Median(onVeth)
	all := append(append([]float64{}, on...), onVeth...)
	r.OnMinMs, r.OnMaxMs = minMax(all)
	r.Hits = fmt.Sprintf("%d/%d", hits, 2**n)
	r.OvsDockerMs, r.RoundTripMs = measure.Median(docker), measure.Median(rtt)
	r.DockerOverOn = r.OvsDockerMs / r.OnMs
	return r
}

// controller starts `ovsnet controller` with args and returns its stop.
func (b *bench) controller(args ...string) func() {
	c := exec.Command(b.abs, append([]string{"controller", "--listen", "127.0.0.1:9478", "--resync", "1h"}, args...)...)
	c.Env = b.env
	stop, err := b.l.StartController(c, b.sb.Dir)
	check(err)
	return stop
}

// attach attaches a fresh container to bn through the controller and
// returns its wall time and 1 if it took a pool's port (else 0).
func (b *bench) attach(typ string) [2]float64 {
	c := b.container()
	args := []string{"add-port", "bn", "eth1", c, "--ip", "-o", "json"}
	if typ != "" {
		args = append(args, "--type", typ)
	}
	cmd := exec.Command(b.abs, args...)
	cmd.Env = b.env
	var o strings.Builder
	cmd.Stdout = &o
	ms, err := b.l.Timed(cmd)
	check(err)
	var p struct {
		OVSPort string `json:"ovs_port"`
	}
	check(json.Unmarshal([]byte(o.String()), &p))
	hit := 0.0
	if p.OVSPort != attach.HostName("bn", c, "eth1") {
		hit = 1
	}
	return [2]float64{ms, hit}
}

// burst attaches -burst veths at once and returns the wall time per attach.
func (b *bench) burst() float64 {
	cs := make([]string, *burst)
	for i := range cs {
		cs[i] = b.container()
	}
	t := time.Now()
	errs := make(chan error, len(cs))
	for _, c := range cs {
		go func() {
			cmd := exec.Command(b.abs, "add-port", "bn", "eth1", c, "--ip", "--type", "veth")
			cmd.Env = b.env
			_, err := b.l.Timed(cmd)
			errs <- err
		}()
	}
	for range cs {
		check(<-errs)
	}
	return float64(time.Since(t).Microseconds()) / 1000 / float64(len(cs))
}

// waitPool waits until bn's pool holds want ready ports.
func (b *bench) waitPool(want int) {
	for end := time.Now().Add(10 * time.Minute); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		rows, err := b.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-pool=true", "external_ids:ovsnet-state=ready")
		check(err)
		if len(strings.Fields(rows)) >= want {
			return
		}
	}
	check(fmt.Errorf("the pool did not reach %d ready ports", want))
}

func (b *bench) dockerAttach() float64 {
	c := b.container()
	cmd := exec.Command("ovs-docker", "add-port", "bd", "eth1", c, fmt.Sprintf("--ipaddress=10.101.%d.%d/16", b.seq/250, b.seq%250+2))
	cmd.Env = b.env
	ms, err := b.l.Timed(cmd)
	check(err)
	return ms
}

func (b *bench) roundTrip() float64 {
	cmd := exec.Command("ovs-ofctl", "add-flow", "bd", "table=99,priority=1,actions=drop")
	cmd.Env = b.env
	ms, err := b.l.Timed(cmd)
	check(err)
	return ms
}

// fill brings bridge to s ports in all, ovsnet's attaches included: on
// bn, veths bulk-attached to namespaces of their own (`ovsnet add-ports`;
// on netdev the other type than the default, internal ports), as a
// host's other containers would be; on bd, ovs-docker's bridge, internal
// ports that are no one's.
func (b *bench) fill(bridge string, s int) {
	have, err := b.sb.Vsctl("list-ports", bridge)
	check(err)
	for j := len(strings.Fields(have)); j < s; j += 100 {
		var args, lines []string
		for k := j; k < s && k < j+100; k++ {
			p := fmt.Sprintf("f%s%d", bridge, k)
			if bridge != "bn" {
				args = append(args, "--", "add-port", bridge, p, "--", "set", "interface", p, "type=internal")
				continue
			}
			check(sandbox.AddNetns(p))
			b.nsList = append(b.nsList, p)
			lines = append(lines, "eth1 /run/netns/"+p) // a path: no Docker lookup
		}
		if bridge != "bn" {
			_, err := b.sb.Vsctl(append([]string{"--timeout=600"}, args...)...) // an emulated kernel datapath takes its time
			check(err)
			continue
		}
		cmd := exec.Command(b.abs, "add-ports", "bn", "-", "--ip", "--type", "veth")
		cmd.Env, cmd.Stdin = b.env, strings.NewReader(strings.Join(lines, "\n")+"\n")
		_, err := b.l.Timed(cmd)
		check(err)
	}
	time.Sleep(2 * time.Second)
}

// poolTypes is what the pool keeps for single attaches on datapath dp
// (measure.Datapath): both types where both attach. On the kernel
// datapath a port's name is its device's and an internal port cannot be
// renamed in its container, so every attach is a veth.
func poolTypes(dp string) []string {
	if strings.HasPrefix(dp, "system") {
		return []string{"veth"}
	}
	return []string{"veth", "internal"}
}

// container makes a netns with a process in it (for ovs-docker's shim).
func (b *bench) container() string {
	b.seq++
	c := fmt.Sprintf("bench-p%d", b.seq)
	check(sandbox.AddNetns(c))
	b.nsList = append(b.nsList, c)
	s := exec.Command("ip", "netns", "exec", c, "sleep", "3600")
	check(s.Start())
	b.stops = append(b.stops, func() { s.Process.Kill(); s.Wait() })
	check(os.WriteFile(filepath.Join(b.shim, "pids", c), []byte(strconv.Itoa(s.Process.Pid)+"\n"), 0o644))
	return c
}

func (b *bench) cleanup() {
	for _, s := range b.stops {
		s()
	}
	for _, c := range b.nsList {
		sandbox.DelNetns(c)
	}
}

// idleCPU is ovs-vswitchd's CPU use over 10 s of nothing happening, in
// percent of one core.
func idleCPU() float64 {
	time.Sleep(2 * time.Second)
	c0, t := ovsdb.VswitchdCPU(), time.Now()
	time.Sleep(10 * time.Second)
	return float64(ovsdb.VswitchdCPU()-c0) / float64(time.Since(t)) * 100
}

func minMax(xs []float64) (lo, hi float64) {
	for i, x := range xs {
		if i == 0 || x < lo {
			lo = x
		}
		hi = max(hi, x)
	}
	return lo, hi
}

func check(err error) {
	if err != nil {
		panic(fmt.Sprint("pool: ", err))
	}
}
