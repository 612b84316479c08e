// Command attachtypes measures TCP throughput (iperf3) and ping latency
// between two containers for each ovsnet attach type on the userspace
// datapath, beside two containers on a Linux bridge, in one run. It writes
// bench/results/attach-types.json; the README quotes it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

type result struct {
	Setup     string  `json:"setup"`
	Gbps      float64 `json:"tcp_gbit_per_s"`
	PingAvgMs float64 `json:"ping_avg_ms"`
}

func main() {
	bin := flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	secs := flag.Int("t", 5, "seconds per iperf3 run")
	out := flag.String("out", "bench/results/attach-types.json", "result file")
	flag.Parse()
	var rs []result
	for _, tso := range []bool{true, false} {
		for _, typ := range []string{"internal", "veth"} {
			r, err := ovsnetPair(*bin, typ, tso, *secs)
			if err != nil {
				fail(err)
			}
			rs = append(rs, r)
		}
	}
	r, err := linuxBridgePair(*secs)
	if err != nil {
		fail(err)
	}
	rs = append(rs, r)
	if err := measure.Write(*out, map[string]any{"cores": cores(), "datapath": "netdev (userspace)"}, rs); err != nil {
		fail(err)
	}
	fmt.Printf("%-36s %12s %10s\n", "setup", "TCP Gbit/s", "ping ms")
	for _, r := range rs {
		fmt.Printf("%-36s %12.2f %10.3f\n", r.Setup, r.Gbps, r.PingAvgMs)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "attachtypes:", err)
	os.Exit(1)
}

func cores() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func sh(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func ovsnetPair(bin, typ string, tso bool, secs int) (result, error) {
	sb, err := sandbox.StartWith("ovsnet-bench", "", sandbox.Options{NoUserspaceTSO: !tso})
	if err != nil {
		return result{}, err
	}
	defer sb.Close()
	c1, c2 := "bench-c1", "bench-c2"
	for _, c := range []string{c1, c2} {
		if err := sandbox.AddNetns(c); err != nil {
			return result{}, err
		}
		defer sandbox.DelNetns(c)
	}
	for _, args := range [][]string{
		{"add-br", "br0", "--subnet", "10.123.0.0/24"},
		{"add-port", "br0", "eth1", c1, "--ip", "--type", typ},
		{"add-port", "br0", "eth1", c2, "--ip", "--type", typ},
	} {
		if _, err := sb.Run(bin, args...); err != nil {
			return result{}, err
		}
	}
	name := "ovsnet " + typ + ", userspace TSO "
	if tso {
		name += "on"
	} else {
		name += "off"
	}
	return measurePair(name, c1, c2, "10.123.0.3", secs)
}

func linuxBridgePair(secs int) (result, error) {
	host := "bench-lb"
	if err := sandbox.AddNetns(host); err != nil {
		return result{}, err
	}
	defer sandbox.DelNetns(host)
	c1, c2 := "bench-c1", "bench-c2"
	steps := [][]string{{"ip", "-n", host, "link", "add", "lbr0", "type", "bridge"}, {"ip", "-n", host, "link", "set", "lbr0", "up"}}
	for i, c := range []string{c1, c2} {
		if err := sandbox.AddNetns(c); err != nil {
			return result{}, err
		}
		defer sandbox.DelNetns(c)
		h := fmt.Sprintf("lbv%d", i)
		steps = append(steps,
			[]string{"ip", "-n", host, "link", "add", h, "type", "veth", "peer", "name", "eth1", "netns", c},
			[]string{"ip", "-n", host, "link", "set", h, "master", "lbr0", "up"},
			[]string{"ip", "-n", c, "addr", "add", fmt.Sprintf("10.124.0.%d/24", i+2), "dev", "eth1"},
			[]string{"ip", "-n", c, "link", "set", "eth1", "up"})
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			return result{}, err
		}
	}
	return measurePair("Linux bridge + veth", c1, c2, "10.124.0.3", secs)
}

func measurePair(name, c1, c2, addr string, secs int) (result, error) {
	r := result{Setup: name}
	var err error
	if r.Gbps, err = measure.TCPGbps(c1, c2, addr, secs); err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	if r.PingAvgMs, err = measure.PingAvgMs(c1, addr, 50); err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}
