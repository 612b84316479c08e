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
	host := hostEndOf(t, e, c1)
	run(t, "ip", "netns", "exec", e.sb.Netns, "tc", "qdisc", "del", "dev", host, "root")
	if q := run(t, "ip", "netns", "exec", e.sb.Netns, "tc", "qdisc", "show", "dev", host, "root"); strings.Contains(q, "tbf") {
		t.Fatalf("the shaper is still there: %s", q)
	}
	if d := e.ovsnet("doctor"); d.code == 0 || !strings.Contains(d.out, "is not held to its cap on what it receives (host end "+host+")") {
		t.Fatalf("doctor with a shaper gone (exit %d):\n%s", d.code, d.out)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "put back the rate limit of") {
		t.Fatalf("reconcile did not put the shaper back: %s", out)
	}
	if d := e.ovsnet("doctor"); strings.Contains(d.out, "is not held to its cap") {
		t.Fatalf("doctor after reconcile:\n%s", d.out)
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

// A cap given as a container is attached, through every front end that
// attaches (add-port, add-ports, the controller's API), and a bridge's
// default for interfaces that ask for none: the shapers are in place when
// the attach returns, TCP runs at the cap, an ingress cap makes the
// interface a veth and refuses an internal one leaving nothing, and a
// default that does not decode refuses attaches until it is set again.
func TestRateLimitAtAttach(t *testing.T) {
	e := newEnv(t)
	cs := map[string]string{}
	for _, n := range []string{"dflt", "own", "intl", "bulk", "api", "none", "bad"} {
		cs[n] = e.container()
	}
	e.must("add-br", "br1", "--subnet", "10.67.0.0/24", "--egress-rate", "30mbit")
	if s := e.must("show", "br1"); !strings.Contains(s, "default rate limit out 30mbit") {
		t.Fatalf("show: %s", s)
	}
	e.must("add-port", "br1", "eth1", cs["dflt"], "--ip") // 10.67.0.2
	shaped(t, e, cs["dflt"], "", "30Mbit")
	e.must("add-port", "br1", "eth1", cs["own"], "--ip", "--rate", "20mbit") // 10.67.0.3
	shaped(t, e, cs["own"], "20Mbit", "20Mbit")
	if s := e.must("show", "br1"); !strings.Contains(s, "rate limit: in 20mbit, out 20mbit") || !strings.Contains(s, "rate limit: out 30mbit") {
		t.Fatalf("show: %s", s)
	}
	if svg := e.must("show", "br1", "-o", "svg"); !strings.Contains(svg, "rate in 20mbit, out 20mbit") || !strings.Contains(svg, "default rate out 30mbit") {
		t.Fatalf("the picture (the page's) does not show the caps:\n%s", svg)
	}
	for _, reverse := range []bool{false, true} {
		if got := iperfMbit(t, cs["dflt"], cs["own"], "10.67.0.2", reverse); !within(got, 20) {
			t.Fatalf("TCP to a container attached with a 20 Mbit/s cap (reverse %v): %.1f Mbit/s", reverse, got)
		}
	}
	if !kernelDatapath { // the kernel datapath takes no internal port into a container
		e.fails("an ingress rate needs a veth", "add-port", "br1", "eth1", cs["intl"], "--ip", "--type", "internal", "--ingress-rate", "10mbit")
		if out, _ := e.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:container_id="+cs["intl"]); strings.TrimSpace(out) != "" {
			t.Fatalf("a refused attach left port %s", out)
		}
	}
	cmd := e.sb.Command(ovsnetBin, "add-ports", "br1", "--ip")
	cmd.Stdin = strings.NewReader("eth1 " + cs["bulk"] + " --egress-rate 5mbit\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("add-ports: %v: %s", err, out)
	}
	shaped(t, e, cs["bulk"], "", "5Mbit")

	e.startController("127.0.0.1:19481")
	e.must("add-port", "br1", "eth1", cs["api"], "--ip", "--ingress-rate", "15mbit")
	shaped(t, e, cs["api"], "15Mbit", "") // its own limit, whole: the default is for interfaces that ask for none
	e.must("qos", "br1", "--default", "--clear")
	if s := e.must("show", "br1"); strings.Contains(s, "default rate limit") {
		t.Fatalf("show after qos --default --clear: %s", s)
	}
	e.must("add-port", "br1", "eth1", cs["none"], "--ip")
	shaped(t, e, cs["none"], "", "")
	e.fails("want 8kbit or more", "qos", "br1", "--default", "--rate", "1kbit")

	if _, err := e.sb.Vsctl("set", "bridge", "br1", "external_ids:ovsnet-rate=fast"); err != nil {
		t.Fatal(err)
	}
	e.fails("default rate limit", "add-port", "br1", "eth1", cs["bad"], "--ip")
	if out, _ := e.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:container_id="+cs["bad"]); strings.TrimSpace(out) != "" {
		t.Fatalf("an attach refused for the default left port %s", out)
	}
	e.must("qos", "br1", "--default", "--egress-rate", "10mbit")
	e.must("add-port", "br1", "eth1", cs["bad"], "--ip")
	shaped(t, e, cs["bad"], "", "10Mbit")
}

// shaped checks container c's interface on br1 has ovsnet's shapers at
// rates in (the veth's host end; "" none) and out (c's eth1; "" none),
// as tc prints them ("20Mbit").
func shaped(t *testing.T, e *env, c, in, out string) {
	t.Helper()
	for _, q := range []struct{ ns, dev, want string }{{e.sb.Netns, hostEndOf(t, e, c), in}, {c, "eth1", out}} {
		b, err := exec.Command("ip", "netns", "exec", q.ns, "tc", "qdisc", "show", "dev", q.dev, "root").CombinedOutput()
		got := string(b)
		if err != nil && q.want == "" && q.ns == e.sb.Netns {
			continue // an internal port: no host end
		}
		has := err == nil && strings.Contains(got, "qdisc tbf 8f:")
		if q.want == "" && has || q.want != "" && (!has || !strings.Contains(got, "rate "+q.want+" ")) {
			t.Fatalf("%s of %s: want ovsnet's shaper at %q, have %q", q.dev, c, q.want, got)
		}
	}
}

// hostEndOf is the OVS interface of container c's one interface on e.
func hostEndOf(t *testing.T, e *env, c string) string {
	t.Helper()
	host, err := e.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:container_id="+c)
	if err != nil || strings.TrimSpace(host) == "" {
		t.Fatalf("no interface of %s: %v", c, err)
	}
	return strings.TrimSpace(host)
}
