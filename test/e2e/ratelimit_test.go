package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// iperfMbit runs a 4 s iperf3 from client to server's address (reverse:
// server to client) and returns what the receiver got, in Mbit/s.
func iperfMbit(t *testing.T, server, client, addr string, reverse bool) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", server, "iperf3", "-s", "-1")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	args := []string{"netns", "exec", client, "iperf3", "-c", addr, "-t", "4", "-J", "--connect-timeout", "3000"}
	if reverse {
		args = append(args, "-R")
	}
	type report struct {
		End struct {
			Received struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	var r report
	for try := 0; ; try++ { // until the server listens (iperf3 -J exits 0 when refused)
		out, err := exec.CommandContext(ctx, "ip", args...).Output()
		r = report{}
		if jerr := json.Unmarshal(out, &r); jerr != nil && err == nil {
			err = jerr
		}
		if err == nil && strings.Contains(r.Error, "Connection refused") && try < 30 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil || r.Error != "" || r.End.Received.BitsPerSecond == 0 {
			t.Fatalf("iperf3 to %s: %v: %s", addr, err, out)
		}
		break
	}
	return r.End.Received.BitsPerSecond / 1e6
}

// within says whether got is within 15% of want.
func within(got, want float64) bool { return got >= want*0.85 && got <= want*1.15 }

// TestRateLimit: TCP through a 20 Mbit/s cap lands within 15% of it both
// ways; reconcile puts back a shaper the host end lost; --clear uncaps;
// an internal port takes no ingress rate; a CNI ADD takes the bandwidth
// capability (as cnitool's CAP_ARGS gives it).
func TestRateLimit(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.65.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ip", "--type", "veth")
	e.must("add-port", "br0", "eth1", c2, "--ip", "--type", "veth")
	if out := e.must("qos", "br0", c1, "--rate", "20mbit"); !strings.Contains(out, "rate limit: in 20mbit, out 20mbit") {
		t.Fatalf("qos said: %s", out)
	}
	for _, reverse := range []bool{false, true} {
		if got := iperfMbit(t, c2, c1, "10.65.0.3", reverse); !within(got, 20) {
			t.Fatalf("TCP through a 20 Mbit/s cap (reverse %v): %.1f Mbit/s", reverse, got)
		}
	}
	if s := e.must("show", "br0"); !strings.Contains(s, "rate limit: in 20mbit, out 20mbit") {
		t.Fatalf("show: %s", s)
	}
	if out := e.must("reconcile"); strings.Contains(out, "rate limit") {
		t.Fatalf("reconcile changed a rate limit in place: %s", out)
	}
	host, err := e.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:container_id="+c1)
	if err != nil {
		t.Fatal(err)
	}
	host = strings.TrimSpace(host)
	run(t, "ip", "netns", "exec", e.sb.Netns, "tc", "qdisc", "del", "dev", host, "root")
	if q := run(t, "ip", "netns", "exec", e.sb.Netns, "tc", "qdisc", "show", "dev", host, "root"); strings.Contains(q, "tbf") {
		t.Fatalf("the shaper is still there: %s", q)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "put back the rate limit of") {
		t.Fatalf("reconcile did not put the shaper back: %s", out)
	}
	if got := iperfMbit(t, c2, c1, "10.65.0.3", true); !within(got, 20) {
		t.Fatalf("after reconcile, what c1 receives: %.1f Mbit/s; host end: %s; c1: %s", got,
			run(t, "ip", "netns", "exec", e.sb.Netns, "tc", "-s", "qdisc", "show", "dev", host),
			run(t, "ip", "netns", "exec", c1, "tc", "-s", "qdisc", "show", "dev", "eth1"))
	}
	e.must("qos", "br0", c1, "--clear")
	if got := iperfMbit(t, c2, c1, "10.65.0.3", false); got < 100 {
		t.Fatalf("after --clear: %.1f Mbit/s", got)
	}
	if !kernelDatapath { // the kernel datapath takes no internal port into a container
		c3 := e.container()
		e.must("add-port", "br0", "eth1", c3, "--ip", "--type", "internal")
		e.fails("an ingress rate needs a veth", "qos", "br0", c3, "--rate", "10mbit")
	}
	e.fails("qos needs --rate", "qos", "br0", c1)
	e.fails("an ingress burst without an ingress rate", "qos", "br0", c1, "--ingress-burst", "1mbit")

	// CNI's bandwidth capability.
	dir := e.cniNet("ovt-bw", "1.0.0", `{"type":"ovsnet","bridge":"br-bw","subnet":"10.66.0.0/24","capabilities":{"bandwidth":true}}`)
	a, b := e.container(), e.container()
	bw := []string{fmt.Sprintf(`CAP_ARGS={"bandwidth":{"ingressRate":%d,"ingressBurst":%d,"egressRate":%d,"egressBurst":%d}}`, 20_000_000, 2_000_000, 20_000_000, 2_000_000)}
	e.cniMust(dir, bw, "add", "ovt-bw", nsPath(a))
	addrB := cniAddress(t, e.cniMust(dir, nil, "add", "ovt-bw", nsPath(b)))
	if s := e.must("show", "br-bw"); !strings.Contains(s, "rate limit: in 20mbit, out 20mbit") || !strings.Contains(s, "veth") {
		t.Fatalf("show after a CNI ADD with bandwidth: %s", s)
	}
	for _, reverse := range []bool{false, true} {
		if got := iperfMbit(t, b, a, addrB, reverse); !within(got, 20) {
			t.Fatalf("CNI bandwidth 20 Mbit/s (reverse %v): %.1f Mbit/s", reverse, got)
		}
	}
}
