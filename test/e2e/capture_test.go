package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// capturing is one `ovsnet capture` running in the sandbox host, its pcap
// going to a file.
type capturing struct {
	cmd    *exec.Cmd
	pcap   string
	stderr *bytes.Buffer
}

// startCapture starts ovsnet capture with args and waits until its port
// is on the bridge (ovs-vswitchd has it: the mirror copies from then on).
func (e *env) startCapture(bridge string, args ...string) *capturing {
	e.t.Helper()
	c := &capturing{pcap: filepath.Join(e.t.TempDir(), "c.pcap"), stderr: &bytes.Buffer{}}
	f, err := os.Create(c.pcap)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	c.cmd = e.sb.Command(ovsnetBin, append([]string{"capture", bridge}, args...)...)
	c.cmd.Stdout, c.cmd.Stderr = f, c.stderr
	if err := c.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	eventually(e.t, 20*time.Second, "the capture's port ready", func() bool {
		out, _ := e.sb.Vsctl("--columns=ofport", "find", "interface", "external_ids:ovsnet-capture-of!=\"\"")
		return strings.Contains(out, "ofport") && !strings.Contains(out, "-1") && !strings.Contains(out, "[]")
	})
	return c
}

// wait waits for the capture to end and returns its exit error.
func (c *capturing) wait(t *testing.T) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("ovsnet capture did not end: %s", c.stderr)
		return nil
	}
}

// packets is the capture's pcap, one line per packet as tcpdump reads it.
func (c *capturing) packets(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("tcpdump", "-nr", c.pcap).Output() // the file's header line goes to stderr
	if err != nil {
		t.Fatalf("tcpdump -nr %s: %v", c.pcap, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// captureLeftovers is what capture ports and mirrors the sandbox host has.
func (e *env) captureLeftovers() string {
	e.t.Helper()
	ports, err := e.sb.Vsctl("--columns=name", "find", "interface", "external_ids:ovsnet-capture-of!=\"\"")
	if err != nil {
		e.t.Fatal(err)
	}
	mirrors, err := e.sb.Vsctl("--columns=name", "list", "mirror")
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(ports + mirrors)
}

// TestCapture: a capture sees a ping both ways and what the pipeline
// drops, filters, and leaves nothing behind when it ends by its count,
// by SIGINT, or killed (then reconcile removes its port).
func TestCapture(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.63.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ip")
	e.must("add-port", "br0", "eth1", c2, "--ip")
	ping(t, c1, "10.63.0.3")

	// Both ways, by the count, an ARP exchange filtered out.
	run(t, "ip", "-n", c1, "neigh", "flush", "dev", "eth1")
	cp := e.startCapture("br0", c1+":eth1", "--count", "4", "icmp")
	run(t, "ip", "netns", "exec", c1, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.63.0.3")
	if err := cp.wait(t); err != nil {
		t.Fatalf("capture: %v: %s", err, cp.stderr)
	}
	got := cp.packets(t)
	want := []string{"IP 10.63.0.2 > 10.63.0.3: ICMP echo request", "IP 10.63.0.3 > 10.63.0.2: ICMP echo reply"}
	if len(got) != 4 || !strings.Contains(got[0], want[0]) || !strings.Contains(got[1], want[1]) ||
		!strings.Contains(got[2], want[0]) || !strings.Contains(got[3], want[1]) {
		t.Fatalf("captured %q, want 2 x (%q, %q)", got, want[0], want[1])
	}
	if !strings.Contains(cp.stderr.String(), "4 packets captured from ") {
		t.Fatalf("summary: %q", cp.stderr)
	}
	if l := e.captureLeftovers(); l != "" {
		t.Fatalf("after the count, left: %s", l)
	}

	// What the pipeline drops: a source address c1 does not hold.
	cp = e.startCapture("br0", c1, "--count", "1", "icmp")
	run(t, "ip", "-n", c1, "addr", "add", "10.63.0.50/24", "dev", "eth1")
	if exec.Command("ip", "netns", "exec", c1, "ping", "-c", "1", "-W", "1", "-I", "10.63.0.50", "10.63.0.3").Run() == nil {
		t.Fatal("a ping from a foreign address got through")
	}
	run(t, "ip", "-n", c1, "addr", "del", "10.63.0.50/24", "dev", "eth1")
	if err := cp.wait(t); err != nil {
		t.Fatalf("capture: %v: %s", err, cp.stderr)
	}
	if got := cp.packets(t); len(got) != 1 || !strings.Contains(got[0], "IP 10.63.0.50 > 10.63.0.3: ICMP echo request") {
		t.Fatalf("the dropped ping: captured %q", got)
	}

	// SIGINT ends it, cleanly.
	cp = e.startCapture("br0", c2)
	if err := cp.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cp.wait(t); err != nil {
		t.Fatalf("capture after SIGINT: %v: %s", err, cp.stderr)
	}
	if l := e.captureLeftovers(); l != "" {
		t.Fatalf("after SIGINT, left: %s", l)
	}

	// kill -9 leaves the port; reconcile removes it.
	cp = e.startCapture("br0", c2)
	cp.cmd.Process.Kill()
	var ee *exec.ExitError
	if err := cp.wait(t); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("capture was not killed: %v", err)
	}
	if l := e.captureLeftovers(); !strings.Contains(l, "ovcap") {
		t.Fatalf("the killed capture left no port to remove: %q", l)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "(capture of ") {
		t.Fatalf("reconcile did not say it removed the capture: %s", out)
	}
	if l := e.captureLeftovers(); l != "" {
		t.Fatalf("after reconcile, left: %s", l)
	}
	ping(t, c1, "10.63.0.3")

	e.fails("has no interface on br0", "capture", "br0", "nosuchcontainer")
	e.fails("has no interface \"eth9\" on br0; it has eth1", "capture", "br0", c1+":eth9")
	e.fails("capture filter \"no such words\"", "capture", "br0", c1, "no", "such", "words")
	if l := e.captureLeftovers(); l != "" {
		t.Fatalf("after failed captures, left: %s", l)
	}
}

// On an OVN network a local container's traffic is captured the same way
// (the mirror on OVN's integration bridge): a ping to a container on
// another chassis both ways, and a spoofed packet OVN's port security
// drops; the capture leaves nothing on br-int.
func TestCaptureOVN(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 2)
	for i := range hs {
		joinOVN(t, c, hs, i)
	}
	hs[0].must("network", "create", "lab", "--subnet", "10.60.0.0/24")
	c0, c1 := hs[0].container(), hs[1].container()
	hs[0].must("add-port", "lab", "eth1", c0, "--ip") // 10.60.0.2
	hs[1].must("add-port", "lab", "eth1", c1, "--ip") // 10.60.0.3
	ping(t, c0, "10.60.0.3")
	e := hs[0]
	cp := e.startCapture("lab", c0, "--count", "4", "icmp")
	run(t, "ip", "netns", "exec", c0, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.60.0.3")
	if err := cp.wait(t); err != nil {
		t.Fatalf("capture: %v: %s", err, cp.stderr)
	}
	got := cp.packets(t)
	want := []string{"IP 10.60.0.2 > 10.60.0.3: ICMP echo request", "IP 10.60.0.3 > 10.60.0.2: ICMP echo reply"}
	if len(got) != 4 || !strings.Contains(got[0], want[0]) || !strings.Contains(got[1], want[1]) {
		t.Fatalf("captured %q, want 2 x (%q, %q)", got, want[0], want[1])
	}
	cp = e.startCapture("lab", c0, "--count", "1", "icmp")
	run(t, "ip", "-n", c0, "addr", "add", "10.60.0.50/24", "dev", "eth1")
	if exec.Command("ip", "netns", "exec", c0, "ping", "-c", "1", "-W", "1", "-I", "10.60.0.50", "10.60.0.3").Run() == nil {
		t.Fatal("a ping from a foreign address crossed the OVN network")
	}
	if err := cp.wait(t); err != nil {
		t.Fatalf("capture: %v: %s", err, cp.stderr)
	}
	if got := cp.packets(t); len(got) != 1 || !strings.Contains(got[0], "IP 10.60.0.50 > 10.60.0.3: ICMP echo request") {
		t.Fatalf("the dropped ping: captured %q", got)
	}
	if l := e.captureLeftovers(); l != "" {
		t.Fatalf("after the captures, left on the chassis: %s", l)
	}
}
