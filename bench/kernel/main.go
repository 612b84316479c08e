// Command kernel measures ovsnet on OVS's kernel datapath, side by side in
// one run, as ratios: TCP between two containers on an ovsnet bridge
// against a Linux bridge; across two hosts over each tunnel type against
// one host; and an attach against ovs-docker's. It runs where the
// openvswitch module is loaded: `make bench-kernel` runs it in test/vm's
// VM, whose emulated CPU makes absolute figures meaningless (compare the
// ratios). It writes bench/results/kernel.json.
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

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

type results struct {
	Rounds int `json:"rounds"`
	// TCP between two containers on one host, Gbit/s medians.
	OvsnetGbps      float64 `json:"ovsnet_veth_gbit_per_s"`
	LinuxBridgeGbps float64 `json:"linux_bridge_gbit_per_s"`
	OverLinux       float64 `json:"ovsnet_over_linux_bridge"`
	// Across two hosts, by tunnel type, and over one host's figure.
	TunnelGbps   map[string]float64 `json:"tunnel_gbit_per_s"`
	OverOneHost  map[string]float64 `json:"tunnel_over_one_host"`
	OvsnetAttach float64            `json:"ovsnet_attach_median_ms"`
	OvsDocker    float64            `json:"ovs_docker_attach_median_ms"`
	AttachRatio  float64            `json:"ovs_docker_over_ovsnet"`
}

var (
	bin    = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	secs   = flag.Int("t", 5, "seconds per iperf3 run")
	rounds = flag.Int("rounds", 3, "interleaved rounds of each TCP measurement")
	n      = flag.Int("n", 15, "attaches measured per tool")
	out    = flag.String("out", "bench/results/kernel.json", "result file")
)

func main() {
	flag.Parse()
	if _, err := netlink.GenlFamilyGet("ovs_datapath"); err != nil {
		fail(fmt.Errorf("no openvswitch kernel module here: run it in the VM (make bench-kernel)"))
	}
	abs, err := filepath.Abs(*bin)
	check(err)
	r := results{Rounds: *rounds, TunnelGbps: map[string]float64{}, OverOneHost: map[string]float64{}}
	oneHost(abs, &r)
	tunnels(abs, &r)
	attaches(abs, &r)
	check(measure.Write(*out, map[string]any{"datapath": "system (kernel), under qemu TCG emulation", "cores": 2}, r))
	fmt.Printf("TCP one host: ovsnet %.2f Gbit/s, Linux bridge %.2f: %.2fx (goal >= 0.8x)\n", r.OvsnetGbps, r.LinuxBridgeGbps, r.OverLinux)
	for _, typ := range []string{"vxlan", "gre", "geneve"} {
		fmt.Printf("TCP across two hosts, %s: %.2f Gbit/s, %.2fx one host (goal >= 0.5x)\n", typ, r.TunnelGbps[typ], r.OverOneHost[typ])
	}
	fmt.Printf("attach: ovsnet %.1f ms, ovs-docker %.1f ms: ovs-docker takes %.2fx (goal >= 2x)\n", r.OvsnetAttach, r.OvsDocker, r.AttachRatio)
}

// oneHost measures TCP between two ovsnet containers (veth, the kernel
// datapath's type) and two on a Linux bridge, in turn.
func oneHost(bin string, r *results) {
	sb, err := sandbox.Start("kb-h", "")
	check(err)
	defer sb.Close()
	c1, c2 := netns("kb-c1"), netns("kb-c2")
	defer sandbox.DelNetns(c1)
	defer sandbox.DelNetns(c2)
	for _, args := range [][]string{{"add-br", "br0", "--subnet", "10.123.0.0/24"}, {"add-port", "br0", "eth1", c1, "--ip"}, {"add-port", "br0", "eth1", c2, "--ip"}} {
		_, err := sb.Run(bin, args...)
		check(err)
	}
	l1, l2 := linuxBridgePair()
	defer sandbox.DelNetns("kb-lb")
	defer sandbox.DelNetns(l1)
	defer sandbox.DelNetns(l2)
	var ov, lb []float64
	for range *rounds {
		ov = append(ov, tcp(c1, c2, "10.123.0.3"))
		lb = append(lb, tcp(l1, l2, "10.124.0.3"))
	}
	r.OvsnetGbps, r.LinuxBridgeGbps = measure.Median(ov), measure.Median(lb)
	r.OverLinux = r.OvsnetGbps / r.LinuxBridgeGbps
}

// tunnels measures TCP between containers on two hosts joined by each
// tunnel type, against one host (measured in turn with them).
func tunnels(bin string, r *results) {
	for _, typ := range []string{"vxlan", "gre", "geneve"} {
		a, err := sandbox.Start("kb-a", "")
		check(err)
		b, err := sandbox.Start("kb-b", "")
		check(err)
		check(sandbox.Join("kb-sw", a, b))
		ca, cb := netns("kb-ca"), netns("kb-cb")
		for i, h := range []*sandbox.Sandbox{a, b} {
			c := []string{ca, cb}[i]
			for _, args := range [][]string{
				{"add-br", "br0", "--subnet", "10.97.0.0/16", "--ip-range", fmt.Sprintf("10.97.%d.0/24", i+1)},
				{"tunnel", "add", "br0", sandbox.UnderlayAddr(1 - i), "--type", typ, "--key", "5"},
				{"add-port", "br0", "eth1", c, "--ip"},
			} {
				_, err := h.Run(bin, args...)
				check(err)
			}
		}
		// The first contact waits for the underlay's neighbour entries.
		for try := 0; try < 10 && exec.Command("ip", "netns", "exec", ca, "ping", "-c", "1", "-W", "2", "10.97.2.2").Run() != nil; try++ {
		}
		var xs []float64
		for range *rounds {
			xs = append(xs, tcp(ca, cb, "10.97.2.2"))
		}
		r.TunnelGbps[typ] = measure.Median(xs)
		r.OverOneHost[typ] = r.TunnelGbps[typ] / r.OvsnetGbps
		for _, c := range []string{ca, cb, "kb-sw"} {
			sandbox.DelNetns(c)
		}
		a.Close()
		b.Close()
	}
}

// attaches times ovsnet add-port (veth) and ovs-docker add-port, in turn,
// on system bridges of one host; ovs-docker asks a docker shim for the
// container's PID.
func attaches(bin string, r *results) {
	sb, err := sandbox.Start("kb-at", "")
	check(err)
	defer sb.Close()
	shim := filepath.Join(sb.Dir, "shim")
	check(os.MkdirAll(filepath.Join(shim, "pids"), 0o755))
	check(os.WriteFile(filepath.Join(shim, "docker"), []byte("#!/bin/sh\nexec cat "+shim+"/pids/\"$4\"\n"), 0o755))
	env := append(sb.Env(), "PATH="+shim+":"+os.Getenv("PATH"), "OVSNET_DIRECT=1")
	_, err = sb.Run(bin, "add-br", "bn", "--subnet", "10.100.0.0/16")
	check(err)
	_, err = sb.Vsctl("add-br", "bd")
	check(err)
	l, err := measure.NewLauncher(sb.Netns)
	check(err)
	defer l.Close()
	var sleepers []*exec.Cmd
	var names []string
	defer func() {
		for _, s := range sleepers {
			s.Process.Kill()
			s.Wait()
		}
		for _, c := range names {
			sandbox.DelNetns(c)
		}
	}()
	container := func() string {
		c := netns(fmt.Sprintf("kb-x%d", len(names)))
		names = append(names, c)
		s := exec.Command("ip", "netns", "exec", c, "sleep", "3600")
		check(s.Start())
		sleepers = append(sleepers, s)
		check(os.WriteFile(filepath.Join(shim, "pids", c), []byte(strconv.Itoa(s.Process.Pid)+"\n"), 0o644))
		return c
	}
	timed := func(name string, args ...string) float64 {
		c := exec.Command(name, args...)
		c.Env = env
		ms, err := l.Timed(c)
		check(err)
		return ms
	}
	var ov, od []float64
	for i := range *n {
		ov = append(ov, timed(bin, "add-port", "bn", "eth1", container(), "--ip"))
		od = append(od, timed("ovs-docker", "add-port", "bd", "eth1", container(), fmt.Sprintf("--ipaddress=10.101.0.%d/16", i+2)))
	}
	r.OvsnetAttach, r.OvsDocker = measure.Median(ov), measure.Median(od)
	r.AttachRatio = r.OvsDocker / r.OvsnetAttach
}

func linuxBridgePair() (c1, c2 string) {
	host := netns("kb-lb")
	c1, c2 = netns("kb-l1"), netns("kb-l2")
	steps := [][]string{{"-n", host, "link", "add", "lbr0", "type", "bridge"}, {"-n", host, "link", "set", "lbr0", "up"}}
	for i, c := range []string{c1, c2} {
		h := fmt.Sprintf("lbv%d", i)
		steps = append(steps,
			[]string{"-n", host, "link", "add", h, "type", "veth", "peer", "name", "eth1", "netns", c},
			[]string{"-n", host, "link", "set", h, "master", "lbr0", "up"},
			[]string{"-n", c, "addr", "add", fmt.Sprintf("10.124.0.%d/24", i+2), "dev", "eth1"},
			[]string{"-n", c, "link", "set", "eth1", "up"})
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			fail(fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, out))
		}
	}
	return c1, c2
}

// tcp is one iperf3 run's Gbit/s, tried again while the emulated guest is
// too slow for iperf3's server to be listening in time.
func tcp(c1, c2, addr string) float64 {
	var err error
	for try := 0; try < 5; try++ {
		var g float64
		if g, err = measure.TCPGbps(c1, c2, addr, *secs); err == nil {
			return g
		}
		time.Sleep(time.Second)
	}
	fail(err)
	return 0
}

func netns(name string) string {
	check(sandbox.AddNetns(name))
	return name
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kernel:", err)
	os.Exit(1)
}
