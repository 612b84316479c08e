// Command attach measures attach latency side by side in one run: ovsnet
// add-port (its default type on this datapath, an internal port, and a veth,
// the type ovs-docker creates), Debian's ovs-docker add-port (with a tiny docker shim that
// answers `docker inspect -f '{{.State.Pid}}' NAME`) and a Linux bridge
// attached with ip commands, each with N ports already on its bridge, plus a
// bare ovs-ofctl round trip at the same size. It reports medians and ratios
// in bench/results/attach-latency.json.
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

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

type row struct {
	Ports            int     `json:"ports_on_bridge"`
	OvsnetMs         float64 `json:"ovsnet_median_ms"`
	OvsnetVethMs     float64 `json:"ovsnet_veth_median_ms"`
	OvsDockerMs      float64 `json:"ovs_docker_median_ms"`
	LinuxBridgeMs    float64 `json:"linux_bridge_median_ms"`
	OfctlRoundTripMs float64 `json:"ovs_ofctl_round_trip_median_ms"`
	OvsDockerRatio   float64 `json:"ovs_docker_over_ovsnet"`
	OvsDockerVeth    float64 `json:"ovs_docker_over_ovsnet_veth"`
}

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	sizes = flag.String("sizes", "10,100", "ports already on each bridge")
	n     = flag.Int("n", 15, "attaches measured per tool and size")
	out   = flag.String("out", "bench/results/attach-latency.json", "result file")
)

func main() {
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	check(err)
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
	timed := func(env []string, name string, args ...string) float64 {
		c := exec.Command("ip", append([]string{"netns", "exec", sb.Netns, name}, args...)...)
		c.Env = env
		start := time.Now()
		if o, err := c.CombinedOutput(); err != nil {
			check(fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, o))
		}
		return float64(time.Since(start).Microseconds()) / 1000
	}
	filled := map[string]int{}
	var rows []row
	for _, f := range strings.Split(*sizes, ",") {
		size, err := strconv.Atoi(f)
		check(err)
		// Fill all three bridges to size ports in all (earlier sizes'
		// measured attaches count: two per round on ovsnet's bridge, one on
		// the others; a Linux bridge takes 1,023 at most) with ports that
		// stay in the host.
		for _, br := range []string{"bn", "bd", "lbr"} {
			measured := len(rows) * *n
			if br == "bn" {
				measured *= 2
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
		var ovsnet, ovsnetVeth, ovsDocker, lbr, ofctl []float64
		for i := 0; i < *n; i++ {
			c := container()
			ovsnet = append(ovsnet, timed(env, abs, "add-port", "bn", "eth1", c, "--ip"))
			c = container()
			ovsnetVeth = append(ovsnetVeth, timed(env, abs, "add-port", "bn", "eth1", c, "--ip", "--type", "veth"))
			c = container()
			ovsDocker = append(ovsDocker, timed(env, "ovs-docker", "add-port", "bd", "eth1", c, fmt.Sprintf("--ipaddress=10.101.%d.%d/16", seq/250, seq%250+2)))
			c = container()
			h := fmt.Sprintf("lb%d", seq)
			script := fmt.Sprintf("ip link add %s type veth peer name eth1 netns %s && ip link set %s master lbr up && ip -n %s addr add 10.102.%d.%d/16 dev eth1 && ip -n %s link set eth1 up",
				h, c, h, c, seq/250, seq%250+2, c)
			lbr = append(lbr, timed(env, "sh", "-c", script))
			ofctl = append(ofctl, timed(env, "ovs-ofctl", "add-flow", "bd", "table=99,priority=1,actions=drop"))
		}
		r := row{Ports: size, OvsnetMs: measure.Median(ovsnet), OvsnetVethMs: measure.Median(ovsnetVeth), OvsDockerMs: measure.Median(ovsDocker),
			LinuxBridgeMs: measure.Median(lbr), OfctlRoundTripMs: measure.Median(ofctl)}
		r.OvsDockerRatio = r.OvsDockerMs / r.OvsnetMs
		r.OvsDockerVeth = r.OvsDockerMs / r.OvsnetVethMs
		rows = append(rows, r)
		fmt.Printf("%5d ports: ovsnet %6.1f ms (veth %6.1f ms), ovs-docker %6.1f ms (%.1fx, %.1fx), Linux bridge (ip) %6.1f ms, ovs-ofctl round trip %6.1f ms\n",
			size, r.OvsnetMs, r.OvsnetVethMs, r.OvsDockerMs, r.OvsDockerRatio, r.OvsDockerVeth, r.LinuxBridgeMs, r.OfctlRoundTripMs)
	}
	check(measure.Write(*out, map[string]any{"datapath": "netdev (userspace)", "attaches_per_point": *n,
		"note": "wall time of each command, including `ip netns exec` into the sandbox host (about 4 ms) for all three"}, rows))
}

// check panics, so that the deferred clean-ups (sandbox, namespaces) run.
func check(err error) {
	if err != nil {
		panic(fmt.Sprint("attach: ", err))
	}
}
