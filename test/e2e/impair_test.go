package e2e

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// pingStats pings addr count times from netns, 10 ms apart, and returns
// the loss in percent and the average round trip in ms (0 if none came
// back).
func pingStats(t *testing.T, netns, addr string, count int) (loss, avg float64) {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "exec", netns, "ping", "-q", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "2", addr).CombinedOutput()
	m := regexp.MustCompile(`([0-9.]+)% packet loss`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("ping: %s", out)
	}
	loss, _ = strconv.ParseFloat(string(m[1]), 64)
	if r := regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`).FindSubmatch(out); r != nil {
		avg, _ = strconv.ParseFloat(string(r[1]), 64)
	}
	return loss, avg
}

// qdisc is the root qdisc of netns's eth1, as tc shows it.
func qdisc(t *testing.T, netns string) string {
	t.Helper()
	return run(t, "ip", "netns", "exec", netns, "tc", "qdisc", "show", "dev", "eth1", "root")
}

// TestImpair: a delay shows in ping's round trip and a loss in its count,
// show prints them, reconcile puts the netem back when the container's
// interface lost it (and changes nothing when it has it), --clear removes
// it.
func TestImpair(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.64.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ip")
	e.must("add-port", "br0", "eth1", c2, "--ip")
	if _, avg := pingStats(t, c1, "10.64.0.3", 20); avg <= 0 || avg >= 40 {
		t.Fatalf("before: round trip %.2f ms", avg)
	}
	if exec.Command("ip", "netns", "exec", c2, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms").Run() != nil {
		// This kernel has no netem: impair says so and records nothing.
		e.fails("this kernel has no netem qdisc: modprobe sch_netem", "impair", "br0", c1, "--delay", "50ms")
		if ext, _ := e.sb.Vsctl("--columns=external_ids", "find", "interface", "external_ids:ovsnet-impair!=\"\""); strings.TrimSpace(ext) != "" {
			t.Fatalf("a failed impair left its key: %s", ext)
		}
		if d := e.ovsnet("doctor"); !strings.Contains(d.out, "not in this kernel (no sch_netem") {
			t.Fatalf("doctor does not say netem is missing: %s", d.out)
		}
		t.Skip("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): the rest runs in test/vm's kernel (make e2e-kernel RUN=TestImpair)")
	}

	run(t, "ip", "netns", "exec", c2, "tc", "qdisc", "del", "dev", "lo", "root")
	if d := e.ovsnet("doctor"); !strings.Contains(d.out, "(ovsnet impair works)") && !strings.Contains(d.out, "when ovsnet impair first asks for it") {
		t.Fatalf("doctor does not say netem is there: %s", d.out)
	}
	out := e.must("impair", "br0", c1, "--delay", "50ms", "--jitter", "5ms")
	if !strings.Contains(out, "impaired: delay 50ms ± 5ms") {
		t.Fatalf("impair said: %s", out)
	}
	if _, avg := pingStats(t, c1, "10.64.0.3", 20); avg < 44 || avg > 200 {
		t.Fatalf("with a 50 ms delay: round trip %.2f ms", avg)
	}
	if s := e.must("show", "br0"); !strings.Contains(s, "impaired: delay 50ms ± 5ms") {
		t.Fatalf("show: %s", s)
	}
	if out := e.must("reconcile"); strings.Contains(out, "impairment") {
		t.Fatalf("reconcile changed an impairment in place: %s", out)
	}

	// The container's interface loses its qdisc; reconcile puts it back.
	run(t, "ip", "netns", "exec", c1, "tc", "qdisc", "del", "dev", "eth1", "root")
	if q := qdisc(t, c1); strings.Contains(q, "netem") {
		t.Fatalf("netem still there after tc qdisc del: %s", q)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "put back the impairment of") {
		t.Fatalf("reconcile did not put the impairment back: %s", out)
	}
	if q := qdisc(t, c1); !strings.Contains(q, "netem") || !strings.Contains(q, "delay 50ms") {
		t.Fatalf("after reconcile: %s", q)
	}

	// A loss; the call sets the whole impairment (the delay goes).
	e.must("impair", "br0", c1+":eth1", "--loss", "30%")
	loss, avg := pingStats(t, c1, "10.64.0.3", 200)
	if loss < 15 || loss > 45 || avg >= 40 {
		t.Fatalf("with 30%% loss and no delay: %.1f%% lost, round trip %.2f ms", loss, avg)
	}

	e.must("impair", "br0", c1, "--clear")
	if q := qdisc(t, c1); strings.Contains(q, "netem") {
		t.Fatalf("after --clear: %s", q)
	}
	if loss, _ := pingStats(t, c1, "10.64.0.3", 50); loss != 0 {
		t.Fatalf("after --clear: %.1f%% lost", loss)
	}
	if s := e.must("show", "br0"); strings.Contains(s, "impaired") {
		t.Fatalf("show after --clear: %s", s)
	}
	e.fails("impair needs --delay", "impair", "br0", c1)
	e.fails("a jitter without a delay", "impair", "br0", c1, "--jitter", "5ms")
	e.fails("--loss \"150%\"", "impair", "br0", c1, "--loss", "150%")
	e.fails("has no interface on br0", "impair", "br0", "nosuchcontainer", "--delay", "1ms")
}
