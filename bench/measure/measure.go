// Package measure holds what ovsnet's benchmarks share: TCP throughput and
// ping latency between two network namespaces, and writing results.
package measure

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// TCPGbps runs iperf3 for secs seconds from netns c1 to a server on addr in
// netns c2 and returns the received rate in Gbit/s.
func TCPGbps(c1, c2, addr string, secs int) (float64, error) {
	r, err := TCPRun(c1, c2, addr, secs)
	return r.Gbps, err
}

// TCP is one iperf3 run: the received rate and the segments the sender
// sent again.
type TCP struct {
	Gbps        float64
	Retransmits int
}

// TCPRun runs iperf3 as TCPGbps does and returns the rate and the
// retransmissions.
func TCPRun(c1, c2, addr string, secs int) (TCP, error) { return TCPRunTo(c1, c2, addr, addr, secs) }

// TCPRunTo is TCPRun with the server bound to bind and the client sending
// to dial: a load balancer's address in front of it, say.
func TCPRunTo(c1, c2, bind, dial string, secs int) (TCP, error) {
	srv := exec.Command("ip", "netns", "exec", c2, "iperf3", "-s", "-1", "-B", bind)
	if err := srv.Start(); err != nil {
		return TCP{}, err
	}
	defer srv.Process.Kill()
	time.Sleep(300 * time.Millisecond) // the server's listen
	return TCPClient(c1, dial, secs)
}

// TCPClient runs iperf3's client for secs seconds from netns c1 to a
// server already listening at dial.
func TCPClient(c1, dial string, secs int) (TCP, error) {
	out, err := exec.Command("ip", "netns", "exec", c1, "iperf3", "-c", dial, "-t", strconv.Itoa(secs), "-J").Output()
	if err != nil {
		return TCP{}, fmt.Errorf("iperf3: %v: %s", err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return TCP{}, err
	}
	return TCP{Gbps: r.End.SumReceived.BitsPerSecond / 1e9, Retransmits: r.End.SumSent.Retransmits}, nil
}

var rttRE = regexp.MustCompile(`= [\d.]+/([\d.]+)/`)

// PingAvgMs sends count pings 20 ms apart from netns c1 to addr and returns
// the average round trip in milliseconds.
func PingAvgMs(c1, addr string, count int) (float64, error) {
	out, err := exec.Command("ip", "netns", "exec", c1, "ping", "-q", "-c", strconv.Itoa(count), "-i", "0.02", addr).Output()
	if err != nil {
		return 0, fmt.Errorf("ping %s: %v: %s", addr, err, out)
	}
	m := rttRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("ping %s: no summary in %q", addr, out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// Median is the middle value of xs (the upper one of an even count).
func Median(xs []float64) float64 {
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// Write saves results with the date and host to path as JSON.
func Write(path string, extra map[string]any, results any) error {
	host, _ := os.Hostname()
	doc := map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "host": host, "results": results}
	for k, v := range extra {
		doc[k] = v
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LinkMTU is the MTU of link dev in netns c ("?" if ip does not say).
func LinkMTU(c, dev string) (string, error) {
	out, err := exec.Command("ip", "-n", c, "-o", "link", "show", dev).Output()
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "mtu" && i+1 < len(f) {
			return f[i+1], nil
		}
	}
	return "?", nil
}

// Datapath names the datapath ovsnet bridges get here: the kernel's when
// the openvswitch module is loaded (test/vm's VM), else the userspace one.
func Datapath() string {
	if _, err := netlink.GenlFamilyGet("ovs_datapath"); err == nil {
		return "system (kernel)"
	}
	return "netdev (userspace)"
}
