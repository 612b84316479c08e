package e2e

import (
	"bytes"
	"encoding/binary"
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
	done   chan struct{} // closed when the process has ended, with err
	err    error
}

// startCapture starts ovsnet capture with args and waits until it is
// ready: its port on the bridge (ovs-vswitchd has it: the mirror copies
// from then on) and its header written (its drop flow is in place).
func (e *env) startCapture(bridge string, args ...string) *capturing {
	e.t.Helper()
	c := &capturing{pcap: filepath.Join(e.t.TempDir(), "c.pcap"), stderr: &bytes.Buffer{}, done: make(chan struct{})}
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
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	e.t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	// Ready once it writes its file's header: it does so when all is in
	// place (port, mirror, socket and, when it marks drops, its flow); the
	// port alone is ready before the flow.
	eventually(e.t, 20*time.Second, "the capture ready (its port up, its header written)", func() bool {
		select {
		case <-c.done:
			e.t.Fatalf("ovsnet capture %s ended before it was ready: %v: %s", args, c.err, c.stderr)
		default:
		}
		out, _ := e.sb.Vsctl("--columns=ofport", "find", "interface", "external_ids:ovsnet-capture-of!=\"\"")
		st, err := os.Stat(c.pcap)
		return strings.Contains(out, "ofport") && !strings.Contains(out, "-1") && !strings.Contains(out, "[]") && err == nil && st.Size() > 0
	})
	return c
}

// wait waits for the capture to end and returns its exit error.
func (c *capturing) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
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

// comments are the comments on the capture's packets, one per packet
// ("" for none), read from its pcapng.
func (c *capturing) comments(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(c.pcap)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(b) < 12 || le.Uint32(b) != 0x0a0d0d0a || le.Uint32(b[8:]) != 0x1a2b3c4d {
		t.Fatalf("%s is no little-endian pcapng: % x", c.pcap, b[:min(len(b), 12)])
	}
	var out []string
	for len(b) >= 12 {
		typ, n := le.Uint32(b), int(le.Uint32(b[4:]))
		if n < 12 || n > len(b) || le.Uint32(b[n-4:]) != uint32(n) {
			t.Fatalf("pcapng block of type %d, length %d in %d bytes", typ, n, len(b))
		}
		if typ == 6 {
			comment := ""
			caplen := int(le.Uint32(b[20:]))
			for o := b[28+(caplen+3)/4*4 : n-4]; len(o) >= 4; {
				code, l := le.Uint16(o), int(le.Uint16(o[2:]))
				if code == 0 {
					break
				}
				if code == 1 {
					comment = string(o[4 : 4+l])
				}
				o = o[4+(l+3)/4*4:]
			}
			out = append(out, comment)
		}
		b = b[n:]
	}
	return out
}

// captureFlows are the capture flows in bridge's drop table.
func (e *env) captureFlows(bridge string) string {
	e.t.Helper()
	out, err := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", bridge, "table=60")
	if err != nil {
		e.t.Fatal(err)
	}
	var fs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "CONTROLLER") {
			fs = append(fs, strings.TrimSpace(l))
		}
	}
	return strings.Join(fs, "\n")
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
	if got := cp.comments(t); strings.Join(got, "") != "" || len(got) != 4 {
		t.Fatalf("packets delivered marked as dropped: %q", got)
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
	if got := cp.comments(t); len(got) != 1 || got[0] != "dropped by ovsnet's pipeline: the source MAC or address is not the port's own" {
		t.Fatalf("the dropped ping is not marked as the spoof guard's: %q", got)
	}
	if !strings.Contains(cp.stderr.String(), "1 packets captured from ") || !strings.Contains(cp.stderr.String(), "1 of them marked as dropped") {
		t.Fatalf("summary: %q", cp.stderr)
	}
	if f := e.captureFlows("br0"); f != "" {
		t.Fatalf("after the capture, its flow is left: %s", f)
	}

	captureIsolationDrops(t, e, c1, c2)

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

	captureKilled(t, e, c2)
	ping(t, c1, "10.63.0.3")

	e.fails("has no interface on br0", "capture", "br0", "nosuchcontainer")
	e.fails("has no interface \"eth9\" on br0; it has eth1", "capture", "br0", c1+":eth9")
	e.fails("capture filter \"no such words\"", "capture", "br0", c1, "no", "such", "words")
	if l := e.captureLeftovers(); l != "" {
		t.Fatalf("after failed captures, left: %s", l)
	}
}

// captureIsolationDrops: on an icc=false bridge a new connection no link
// allows is marked as such in the capture, whose flow a reconcile keeps;
// classic pcap on request, unmarked and saying so.
func captureIsolationDrops(t *testing.T, e *env, c1, c2 string) {
	t.Helper()
	e.must("add-br", "iso", "--subnet", "10.64.0.0/24", "--icc=false")
	e.must("add-port", "iso", "eth2", c1, "--ip")
	e.must("add-port", "iso", "eth2", c2, "--ip")
	cp := e.startCapture("iso", c1, "--count", "1", "icmp")
	if f := e.captureFlows("iso"); !strings.Contains(f, "CONTROLLER:65535") {
		t.Fatalf("the capture has no flow in the drop table: %q", f)
	}
	// The flow is intent: a reconcile while the capture runs keeps it.
	e.must("reconcile")
	if f := e.captureFlows("iso"); !strings.Contains(f, "CONTROLLER:65535") {
		t.Fatalf("reconcile removed the running capture's flow: %q", f)
	}
	noPing(t, c1, "10.64.0.3")
	if err := cp.wait(t); err != nil {
		t.Fatalf("capture: %v: %s", err, cp.stderr)
	}
	if got := cp.comments(t); len(got) != 1 || got[0] != "dropped by ovsnet's pipeline: no link allows this new connection" {
		t.Fatalf("the ping icc=false refused is not marked as such: %q", got)
	}
	cp = e.startCapture("iso", c1, "--count", "1", "--format", "pcap", "icmp")
	noPing(t, c1, "10.64.0.3")
	if err := cp.wait(t); err != nil {
		t.Fatalf("capture: %v: %s", err, cp.stderr)
	}
	if got := cp.packets(t); len(got) != 1 || !strings.Contains(got[0], "ICMP echo request") {
		t.Fatalf("classic pcap: %q", got)
	}
	if b, _ := os.ReadFile(cp.pcap); len(b) < 4 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || !strings.Contains(cp.stderr.String(), "drops not marked: pcap has no room") {
		t.Fatalf("--format pcap: % x, summary %q", b[:min(len(b), 4)], cp.stderr)
	}
	e.must("del-br", "iso")
}

// captureKilled: a capture killed with kill -9 leaves its port and flow
// (proven there), which reconcile removes.
func captureKilled(t *testing.T, e *env, c string) {
	t.Helper()
	cp := e.startCapture("br0", c)
	cp.cmd.Process.Kill()
	var ee *exec.ExitError
	if err := cp.wait(t); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("capture was not killed: %v", err)
	}
	if l := e.captureLeftovers(); !strings.Contains(l, "ovcap") {
		t.Fatalf("the killed capture left no port to remove: %q", l)
	}
	if f := e.captureFlows("br0"); !strings.Contains(f, "CONTROLLER") {
		t.Fatalf("the killed capture left no flow to remove: %q", f)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "(capture of ") {
		t.Fatalf("reconcile did not say it removed the capture: %s", out)
	}
	if l := e.captureLeftovers(); l != "" {
		t.Fatalf("after reconcile, left: %s", l)
	}
	if f := e.captureFlows("br0"); f != "" {
		t.Fatalf("after reconcile, the killed capture's flow is left: %s", f)
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
