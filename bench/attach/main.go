// Command attach measures attach latency side by side in one run: ovsnet
// add-port (its default type on this datapath, an internal port, and a veth,
// the type ovs-docker creates), without a controller and through a running
// `ovsnet controller`, Debian's ovs-docker add-port (with a tiny docker shim
// that answers `docker inspect -f '{{.State.Pid}}' NAME`) and a Linux bridge
// attached with ip commands, each with N ports already on its bridge, plus a
// bare ovs-ofctl round trip and a burst of concurrent ovsnet attaches at the
// same size, and the two costs no attach avoids: the kernel's move of a link
// into a netns and an ovsnet process's start. Every command is forked from
// a thread inside the sandbox host (no `ip netns exec` in any figure). It
// reports medians and ratios in bench/results/attach-latency.json. With
// -baseline, an earlier ovsnet build attaches in turn with this one, so a
// change is measured against what it replaced in one run.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

type row struct {
	Ports        int     `json:"ports_on_bridge"`
	OvsnetMs     float64 `json:"ovsnet_median_ms"`
	OvsnetVethMs float64 `json:"ovsnet_veth_median_ms"`
	ViaMs        float64 `json:"ovsnet_via_controller_median_ms"`
	ViaVethMs    float64 `json:"ovsnet_veth_via_controller_median_ms"`
	// The CLI alone (OVSNET_DIRECT=1) while the controller runs, in turn
	// with the requests through it: what the API changes on such a host.
	BesideMs         float64 `json:"ovsnet_direct_beside_controller_median_ms"`
	BesideVethMs     float64 `json:"ovsnet_veth_direct_beside_controller_median_ms"`
	OvsDockerMs      float64 `json:"ovs_docker_median_ms"`
	LinuxBridgeMs    float64 `json:"linux_bridge_median_ms"`
	OfctlRoundTripMs float64 `json:"ovs_ofctl_round_trip_median_ms"`
	OvsDockerRatio   float64 `json:"ovs_docker_over_ovsnet"`
	OvsDockerVeth    float64 `json:"ovs_docker_over_ovsnet_veth"`
	OvsDockerVia     float64 `json:"ovs_docker_over_ovsnet_via_controller"`
	OvsDockerViaVeth float64 `json:"ovs_docker_over_ovsnet_veth_via_controller"`
	// A burst of concurrent veth attaches, all started at once: wall time
	// until the last is done, per attach.
	BurstDirectMs float64 `json:"burst_direct_ms_per_attach"`
	BurstViaMs    float64 `json:"burst_via_controller_ms_per_attach"`
	// What no attach tool avoids: the kernel's move of a link into a
	// container's netns (one netlink call, which an internal port and
	// ovs-docker's veth both need), and the start of an ovsnet process
	// that does nothing (`ovsnet version`).
	NetnsMoveMs    float64 `json:"kernel_netns_move_median_ms"`
	ProcessStartMs float64 `json:"ovsnet_process_start_median_ms"`
	// With -baseline: another ovsnet binary's attaches (no controller), in
	// turn with this one's, and this one's time over its.
	BaselineMs       float64 `json:"baseline_median_ms,omitempty"`
	BaselineVethMs   float64 `json:"baseline_veth_median_ms,omitempty"`
	OverBaseline     float64 `json:"ovsnet_over_baseline,omitempty"`
	OverBaselineVeth float64 `json:"ovsnet_veth_over_baseline,omitempty"`
}

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	sizes = flag.String("sizes", "10,100", "ports already on each bridge")
	n     = flag.Int("n", 15, "attaches measured per tool and size")
	burst = flag.Int("burst", 20, "concurrent attaches in the burst measured per size")
	out   = flag.String("out", "bench/results/attach-latency.json", "result file")
	base  = flag.String("baseline", "", "another ovsnet binary (an earlier build) to measure in turn with -ovsnet, without a controller")
)

func main() {
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	check(err)
	if *base != "" {
		*base, err = filepath.Abs(*base)
		check(err)
	}
	sb, err := sandbox.Start("ovsnet-bench", "")
	check(err)
	defer sb.Close()
	shim := filepath.Join(sb.Dir, "shim")
	check(os.MkdirAll(filepath.Join(shim, "pids"), 0o755))
	// ovs-docker asks docker for the container's PID: answer with the PID of
	// a process in the netns of that name.
	check(os.WriteFile(filepath.Join(shim, "docker"), []byte("#!/bin/sh\nexec cat "+shim+"/pids/\"$4\"\n"), 0o755))
	env := append(sb.Env(), "PATH="+shim+":"+os.Getenv("PATH"))

	_, err = sb.Run(abs, "add-br", "bn", "--subnet", "10.100.0.0/16")
	check(err)
	_, err = sb.Vsctl("add-br", "bd", "--", "set", "bridge", "bd", "datapath_type=netdev")
	check(err)
	_, err = sb.Run("ip", "link", "add", "lbr", "type", "bridge")
	check(err)
	_, err = sb.Run("ip", "link", "set", "lbr", "up")
	check(err)

	var containers []string
	var sleepers []*exec.Cmd
	defer func() {
		for _, s := range sleepers {
			s.Process.Kill()
			s.Wait()
		}
		for _, c := range containers {
			sandbox.DelNetns(c)
		}
	}()
	seq := 0
	container := func() string {
		seq++
		c := fmt.Sprintf("bench-a%d", seq)
		check(sandbox.AddNetns(c))
		containers = append(containers, c)
		s := exec.Command("ip", "netns", "exec", c, "sleep", "3600")
		check(s.Start())
		sleepers = append(sleepers, s)
		check(os.WriteFile(filepath.Join(shim, "pids", c), []byte(strconv.Itoa(s.Process.Pid)+"\n"), 0o644))
		return c
	}
	// Every command is forked from a thread inside the sandbox host, so no
	// tool's figure includes an `ip netns exec`.
	l, err := measure.NewLauncher(sb.Netns)
	check(err)
	defer l.Close()
	timed := func(env []string, name string, args ...string) float64 {
		c := exec.Command(name, args...)
		c.Env = env
		ms, err := l.Timed(c)
		check(err)
		return ms
	}
	direct := append(env, "OVSNET_DIRECT=1") // never through a controller
	filled := map[string]int{}
	var rows []row
	for _, f := range strings.Split(*sizes, ",") {
		size, err := strconv.Atoi(f)
		check(err)
		// Fill all three bridges to size ports in all (earlier sizes'
		// attaches count: six per round and the bursts on ovsnet's bridge,
		// three on ovs-docker's (one measured, two pacing), one on the Linux
		// bridge, which takes 1,023 at most) with ports that stay in the host.
		for _, br := range []string{"bn", "bd", "lbr"} {
			measured := len(rows) * *n
			if br == "bd" {
				measured = len(rows) * 3 * *n
			}
			if br == "bn" {
				// two types alone, through the controller and beside it, the
				// bursts, and the baseline's two types
				measured = len(rows) * (6**n + 2**burst)
				if *base != "" {
					measured += len(rows) * 2 * *n
				}
			}
			target := size - measured
			for filled[br] < target {
				var args []string
				for j := filled[br]; j < target && j < filled[br]+100; j++ {
					if br == "lbr" {
						_, err := sb.Run("ip", "link", "add", fmt.Sprintf("flb%d", j), "type", "veth", "peer", "name", fmt.Sprintf("flp%d", j))
						check(err)
						_, err = sb.Run("ip", "link", "set", fmt.Sprintf("flb%d", j), "master", "lbr", "up")
						check(err)
						continue
					}
					p := fmt.Sprintf("f%s%d", br, j)
					args = append(args, "--", "add-port", br, p, "--", "set", "interface", p, "type=internal")
				}
				if len(args) > 0 {
					_, err := sb.Vsctl(args...)
					check(err)
				}
				filled[br] = min(target, filled[br]+100)
			}
		}
		time.Sleep(2 * time.Second)
		var ovsnet, ovsnetVeth, via, viaVeth, beside, besideVeth, ovsDocker, lbr, ofctl, moves, starts, baseInt, baseVeth []float64
		// pairOf attaches a fresh container of each type to ovsnet's bridge
		// with binary bin and env, adding the wall times to internal and veth.
		pairOf := func(bin string, env []string, internal, veth *[]float64) {
			*internal = append(*internal, timed(env, bin, "add-port", "bn", "eth1", container(), "--ip"))
			*veth = append(*veth, timed(env, bin, "add-port", "bn", "eth1", container(), "--ip", "--type", "veth"))
		}
		pair := func(env []string, internal, veth *[]float64) { pairOf(abs, env, internal, veth) }
		dockerAttach := func() float64 {
			c := container()
			return timed(env, "ovs-docker", "add-port", "bd", "eth1", c, fmt.Sprintf("--ipaddress=10.101.%d.%d/16", seq/250, seq%250+2))
		}
		roundTrip := func() float64 { return timed(env, "ovs-ofctl", "add-flow", "bd", "table=99,priority=1,actions=drop") }
		for i := 0; i < *n; i++ {
			// With a baseline, each goes first every other round: the first
			// attach after the other tools' round meets ovs-vswitchd busiest.
			if *base != "" && i%2 == 1 {
				pairOf(*base, direct, &baseInt, &baseVeth)
			}
			pair(direct, &ovsnet, &ovsnetVeth)
			if *base != "" && i%2 == 0 {
				pairOf(*base, direct, &baseInt, &baseVeth)
			}
			ovsDocker = append(ovsDocker, dockerAttach())
			c := container()
			h := fmt.Sprintf("lb%d", seq)
			script := fmt.Sprintf("ip link add %s type veth peer name eth1 netns %s && ip link set %s master lbr up && ip -n %s addr add 10.102.%d.%d/16 dev eth1 && ip -n %s link set eth1 up",
				h, c, h, c, seq/250, seq%250+2, c)
			lbr = append(lbr, timed(env, "sh", "-c", script))
			ofctl = append(ofctl, roundTrip())
			moves = append(moves, netnsMove(l, container()))
			starts = append(starts, timed(env, abs, "version"))
		}
		burstOf := func(env []string) float64 {
			cs := make([]string, *burst)
			for i := range cs {
				cs[i] = container()
			}
			t := time.Now()
			errs := make(chan error, len(cs))
			for _, c := range cs {
				go func() {
					cmd := exec.Command(abs, "add-port", "bn", "eth1", c, "--ip", "--type", "veth")
					cmd.Env = env
					_, err := l.Timed(cmd)
					errs <- err
				}()
			}
			for range cs {
				check(<-errs)
			}
			return float64(time.Since(t).Microseconds()) / 1000 / float64(len(cs))
		}
		burstDirect := burstOf(direct)
		// The loops with a controller are paced as the first: after each
		// pair of attaches, an ovs-docker attach and an ovs-ofctl round trip
		// (not counted again; the Linux bridge, 1,023 ports at most, is left
		// out), so that ovs-vswitchd's main loop is as busy between them.
		// (Pauses of 100 ms instead had attaches queue behind the last one's
		// port add in ovs-vswitchd, with or without the controller's help.)
		pace := func() {
			dockerAttach()
			roundTrip()
		}
		// The same attaches through a running controller (what a host
		// running `ovsnet controller` gets): the CLI hands the request to
		// the service, which holds its OVSDB and OpenFlow connections open.
		ctl := exec.Command(abs, "controller", "--listen", "127.0.0.1:9477", "--resync", "1h", "--pool", "0")
		ctl.Env = env
		stop, err := l.StartController(ctl, sb.Dir)
		check(err)
		time.Sleep(time.Second)
		for i := 0; i < *n; i++ {
			pair(env, &via, &viaVeth)
			pace()
		}
		for i := 0; i < *n; i++ {
			pair(direct, &beside, &besideVeth)
			pace()
		}
		time.Sleep(200 * time.Millisecond)
		burstVia := burstOf(env)
		stop()
		r := row{Ports: size, OvsnetMs: measure.Median(ovsnet), OvsnetVethMs: measure.Median(ovsnetVeth),
			ViaMs: measure.Median(via), ViaVethMs: measure.Median(viaVeth), BesideMs: measure.Median(beside), BesideVethMs: measure.Median(besideVeth), OvsDockerMs: measure.Median(ovsDocker),
			LinuxBridgeMs: measure.Median(lbr), OfctlRoundTripMs: measure.Median(ofctl), BurstDirectMs: burstDirect, BurstViaMs: burstVia,
			NetnsMoveMs: measure.Median(moves), ProcessStartMs: measure.Median(starts)}
		r.OvsDockerRatio = r.OvsDockerMs / r.OvsnetMs
		r.OvsDockerVeth = r.OvsDockerMs / r.OvsnetVethMs
		r.OvsDockerVia = r.OvsDockerMs / r.ViaMs
		r.OvsDockerViaVeth = r.OvsDockerMs / r.ViaVethMs
		if *base != "" {
			r.BaselineMs, r.BaselineVethMs = measure.Median(baseInt), measure.Median(baseVeth)
			r.OverBaseline, r.OverBaselineVeth = r.OvsnetMs/r.BaselineMs, r.OvsnetVethMs/r.BaselineVethMs
			fmt.Printf("%5d ports: baseline %6.1f ms (veth %6.1f): ovsnet %.2fx (veth %.2fx) of it\n", size, r.BaselineMs, r.BaselineVethMs, r.OverBaseline, r.OverBaselineVeth)
		}
		rows = append(rows, r)
		fmt.Printf("%5d ports: ovsnet %6.1f ms (veth %6.1f), via controller %6.1f ms (veth %6.1f), beside it %6.1f ms (veth %6.1f), ovs-docker %6.1f ms (%.1fx, %.1fx; via controller %.1fx, %.1fx), Linux bridge (ip) %6.1f ms, ovs-ofctl round trip %6.1f ms; burst of %d: %.1f ms/attach direct, %.1f via controller; kernel netns move %.1f ms, ovsnet process start %.1f ms\n",
			size, r.OvsnetMs, r.OvsnetVethMs, r.ViaMs, r.ViaVethMs, r.BesideMs, r.BesideVethMs, r.OvsDockerMs, r.OvsDockerRatio, r.OvsDockerVeth, r.OvsDockerVia, r.OvsDockerViaVeth, r.LinuxBridgeMs, r.OfctlRoundTripMs, *burst, r.BurstDirectMs, r.BurstViaMs, r.NetnsMoveMs, r.ProcessStartMs)
	}
	check(measure.Write(*out, map[string]any{"datapath": "netdev (userspace)", "attaches_per_point": *n,
		"note": "wall time of each command, forked from a thread inside the sandbox host (no ip netns exec); ovsnet without a controller (OVSNET_DIRECT=1) and through a running controller"}, rows))
}

// netnsMove returns how long the kernel takes to move one end of a fresh
// veth pair from the sandbox host into container's netns (the one netlink
// call, timed in this process), then deletes the pair. Here the kernel
// waits in rcu_barrier() during every move (__dev_change_net_namespace),
// whatever the device.
func netnsMove(l *measure.Launcher, container string) float64 {
	var ms float64
	var err error
	l.Do(func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bench-mv0"}, PeerName: "bench-mv1"}
		if err = netlink.LinkAdd(veth); err != nil {
			return
		}
		defer netlink.LinkDel(veth)
		var peer netlink.Link
		if peer, err = netlink.LinkByName("bench-mv1"); err != nil {
			return
		}
		var h netns.NsHandle
		if h, err = netns.GetFromName(container); err != nil {
			return
		}
		defer h.Close()
		t := time.Now()
		err = netlink.LinkSetNsFd(peer, int(h))
		ms = float64(time.Since(t).Microseconds()) / 1000
	})
	check(err)
	return ms
}

// check panics, so that the deferred clean-ups (sandbox, namespaces) run.
func check(err error) {
	if err != nil {
		panic(fmt.Sprint("attach: ", err))
	}
}
