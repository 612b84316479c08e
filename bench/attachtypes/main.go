// Command attachtypes measures TCP throughput (iperf3) and ping latency
// between two containers for each ovsnet attach type on the userspace
// datapath, beside two containers on a Linux bridge, in one run. It writes
// bench/results/attach-types.json; the README quotes it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

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
	host, _ := os.Hostname()
	doc := map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "host": host, "cores": cores(),
		"datapath": "netdev (userspace)", "results": rs}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
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
	return measure(name, c1, c2, "10.123.0.3", secs)
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
	return measure("Linux bridge + veth", c1, c2, "10.124.0.3", secs)
}

var rttRE = regexp.MustCompile(`= [\d.]+/([\d.]+)/`)

func measure(name, c1, c2, addr string, secs int) (result, error) {
	r := result{Setup: name}
	srv := exec.Command("ip", "netns", "exec", c2, "iperf3", "-s", "-1", "-B", addr)
	if err := srv.Start(); err != nil {
		return r, err
	}
	defer srv.Process.Kill()
	time.Sleep(300 * time.Millisecond)
	out, err := exec.Command("ip", "netns", "exec", c1, "iperf3", "-c", addr, "-t", strconv.Itoa(secs), "-J").Output()
	if err != nil {
		return r, fmt.Errorf("%s: iperf3: %v", name, err)
	}
	var ip struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &ip); err != nil {
		return r, err
	}
	r.Gbps = ip.End.SumReceived.BitsPerSecond / 1e9
	p, err := exec.Command("ip", "netns", "exec", c1, "ping", "-q", "-c", "50", "-i", "0.02", addr).Output()
	if err != nil {
		return r, fmt.Errorf("%s: ping: %v", name, err)
	}
	if m := rttRE.FindSubmatch(p); m != nil {
		r.PingAvgMs, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return r, nil
}
