package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sniff starts tcpdump on netns's eth1 for up to count packets matching
// filter, for at most limit, and returns once it listens; the returned
// wait gives the packets it saw, one line each.
func sniff(t *testing.T, netns string, count int, limit time.Duration, filter string) (wait func() []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	c := exec.CommandContext(ctx, "ip", "netns", "exec", netns, "tcpdump", "-i", "eth1", "-n", "-e", "-l", "-c", strconv.Itoa(count), filter)
	var out bytes.Buffer
	c.Stdout = &out
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening on") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return func() []string {
		c.Wait()
		cancel()
		if s := strings.TrimSpace(out.String()); s != "" {
			return strings.Split(s, "\n")
		}
		return nil
	}
}

// copies pings twice from src to dst while the analyzer listens, and
// returns what the analyzer saw of ICMP.
func copies(t *testing.T, analyzer, src, dst string, want int) []string {
	t.Helper()
	wait := sniff(t, analyzer, want, 8*time.Second, "icmp")
	exec.Command("ip", "netns", "exec", src, "ping", "-c", "2", "-i", "0.2", "-W", "1", dst).Run()
	return wait()
}

// TestMirror: a standing mirror delivers copies of a container's pings
// both ways to the analyzer; it outlives
// an ovs-vswitchd restart; reconcile makes a lost row again; --all copies
// every port; del stops the copies and gives the analyzer its port back.
func TestMirror(t *testing.T) {
	e := newEnv(t)
	a, b, ids := e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.67.0.0/24")
	for _, c := range []string{a, b, ids} {
		e.must("add-port", "br0", "eth1", c, "--ip")
	}
	ping(t, ids, "10.67.0.2")
	if out := e.must("mirror", "add", "br0", "--from", a, "--to", ids); !strings.Contains(out, "copying") {
		t.Fatalf("mirror add: %s", out)
	}
	got := copies(t, ids, a, "10.67.0.3", 4)
	if len(got) != 4 || !strings.Contains(strings.Join(got, "\n"), "10.67.0.2 > 10.67.0.3: ICMP echo request") ||
		!strings.Contains(strings.Join(got, "\n"), "10.67.0.3 > 10.67.0.2: ICMP echo reply") {
		t.Fatalf("the analyzer saw %q, want 2 requests and 2 replies", got)
	}

	// ovs-vswitchd restarts: the mirror is still there (reconcile puts the
	// flows back, and makes no mirror).
	pidFile := filepath.Join(e.sb.Dir, "ovs-vswitchd.pid")
	before, _ := os.ReadFile(pidFile)
	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("kill", "-0", strings.TrimSpace(string(before))).Run(); err == nil {
		t.Fatalf("ovs-vswitchd %s still runs", before)
	}
	if err := e.sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	if out := e.must("reconcile"); strings.Contains(out, "mirror") {
		t.Fatalf("reconcile after the restart touched the mirror: %s", out)
	}
	if got := copies(t, ids, a, "10.67.0.3", 4); len(got) != 4 {
		t.Fatalf("after ovs-vswitchd's restart the analyzer saw %q", got)
	}

	// The row lost: reconcile makes it again.
	if _, err := e.sb.Vsctl("clear", "bridge", "br0", "mirrors"); err != nil {
		t.Fatal(err)
	}
	if out, _ := e.sb.Vsctl("--columns=name", "list", "mirror"); strings.TrimSpace(out) != "" {
		t.Fatalf("mirror rows left after clearing: %s", out)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "made") {
		t.Fatalf("reconcile did not make the mirror again: %s", out)
	}
	if got := copies(t, ids, a, "10.67.0.3", 4); len(got) != 4 {
		t.Fatalf("after reconcile the analyzer saw %q", got)
	}

	// Every port.
	e.must("mirror", "add", "br0", "--all", "--to", ids)
	if got := copies(t, ids, b, "10.67.0.1", 4); len(got) != 4 || !strings.Contains(got[0], "10.67.0.3 > 10.67.0.1") {
		t.Fatalf("--all: the analyzer saw %q", got)
	}
	if out := e.must("show", "br0"); !strings.Contains(out, "mirror every port -> "+ids) {
		t.Fatalf("show: %s", out)
	}
	if out := e.must("mirror", "list", "br0", "-o", "json"); !strings.Contains(out, `"all": true`) || !strings.Contains(out, `"state": "copying"`) {
		t.Fatalf("list: %s", out)
	}

	e.must("mirror", "del", "br0", "--to", ids)
	if out, _ := e.sb.Vsctl("--columns=name", "list", "mirror"); strings.TrimSpace(out) != "" {
		t.Fatalf("mirror rows after del: %s", out)
	}
	if got := copies(t, ids, a, "10.67.0.3", 1); len(got) != 0 {
		dp, _ := e.sb.Run("ovs-appctl", "dpctl/dump-flows")
		ms, _ := e.sb.Vsctl("list", "mirror")
		t.Fatalf("after del the analyzer still saw %q\n%s\n%s", got, dp, ms)
	}
	ping(t, ids, "10.67.0.2")

	mirrorAnalyzerGone(t, e, a, ids)
}

// mirrorAnalyzerGone: with its analyzer detached a mirror waits (list,
// doctor) and reconcile removes its row; mistakes are refused.
func mirrorAnalyzerGone(t *testing.T, e *env, a, ids string) {
	// The analyzer goes: the mirror waits, and doctor says why.
	e.must("mirror", "add", "br0", "--from", a, "--to", ids)
	e.must("del-port", "br0", "eth1", ids)
	if out := e.must("mirror", "list", "br0"); !strings.Contains(out, "waiting: "+ids) {
		t.Fatalf("list with the analyzer gone: %s", out)
	}
	e.must("reconcile")
	if out, _ := e.sb.Vsctl("--columns=name", "list", "mirror"); strings.TrimSpace(out) != "" {
		t.Fatalf("a mirror row with its analyzer gone, after reconcile: %s", out)
	}
	if d := e.ovsnet("doctor"); !strings.Contains(d.out, "copies nothing: "+ids+" has no port there") {
		t.Fatalf("doctor: %s", d.out)
	}
	e.must("mirror", "del", "br0", "--to", ids)

	e.fails("analyzer: container \"nosuch\" has no interface on br0", "mirror", "add", "br0", "--from", a, "--to", "nosuch")
	e.fails("cannot mirror to itself", "mirror", "add", "br0", "--from", a, "--to", a)
	e.fails("has no mirror to "+ids, "mirror", "del", "br0", "--to", ids)
	e.fails("mirror add needs --to ANALYZER and either", "mirror", "add", "br0", "--from", a, "--all", "--to", ids)
}
