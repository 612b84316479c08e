// Package e2e holds ovsnet's end-to-end tests: the real ovsnet binary against
// a real ovsdb-server and ovs-vswitchd in a sandbox host namespace, real
// container namespaces and Docker containers, real packets. They need root.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var ovsnetBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped, needs root (network namespaces, OVS)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "ovsnet-e2e-bin-")
	if err != nil {
		panic(err)
	}
	ovsnetBin = filepath.Join(dir, "ovsnet")
	if prebuilt := os.Getenv("OVSNET_BIN"); prebuilt != "" {
		// Built on the host for a run in the kernel-datapath VM (test/vm).
		ovsnetBin = prebuilt
	} else {
		// Static, as `make build` makes it (no dynamic loader: ~0.7 ms less a command).
		build := exec.Command("go", "build", "-o", ovsnetBin, "../../cmd/ovsnet")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Printf("build ovsnet: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	kernelDatapath = datapath.Detect() == datapath.System
	if want := os.Getenv("OVSNET_DATAPATH_EXPECT"); want != "" && want != datapath.Detect() {
		fmt.Printf("e2e: asked to run on the %s datapath, but this kernel gives %s\n", want, datapath.Detect())
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kernelDatapath: the openvswitch module is loaded, and the sandboxes'
// bridges are on the kernel datapath (system), as in test/vm's VM; else
// they are on the userspace datapath (netdev).
var kernelDatapath bool

// sandboxDatapath is the datapath type the sandboxes' bridges get.
func sandboxDatapath() string {
	if kernelDatapath {
		return datapath.System
	}
	return datapath.Netdev
}

// otherType is the attach type a test mixes with veths: internal ports
// on the userspace datapath; on the kernel datapath, which takes no
// internal ports in containers, veths again.
func otherType() string {
	if kernelDatapath {
		return "veth"
	}
	return "internal"
}

// onlyUserspace skips a test that cannot run on the kernel datapath,
// saying why.
func onlyUserspace(t *testing.T, why string) {
	t.Helper()
	if kernelDatapath {
		t.Skip("userspace datapath only: " + why)
	}
}

// notInVM skips a test in test/vm's VM (which sets OVSNET_VM), saying why:
// it has no network, no Docker engine and an emulated CPU.
func notInVM(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("OVSNET_VM") != "" {
		t.Skip("not in the kernel-datapath VM: " + why)
	}
}

// onlyKernel skips a test of the kernel datapath on the userspace one.
func onlyKernel(t *testing.T, why string) {
	t.Helper()
	if !kernelDatapath {
		t.Skip("kernel datapath only (make e2e-kernel runs it): " + why)
	}
}

var seq atomic.Int64

// uniq returns a short name unique to this test process, for namespaces.
func uniq(prefix string) string {
	return fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%10000, seq.Add(1))
}

// env is one test's world: a sandbox host and container namespaces.
type env struct {
	t  *testing.T
	sb *sandbox.Sandbox
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, sandbox.Options{})
}

// newEnvWith is newEnv with sandbox options.
func newEnvWith(t *testing.T, o sandbox.Options) *env {
	t.Helper()
	sb, err := sandbox.StartWith(uniq("ovt-h"), "", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("sandbox cleanup: %v", err)
		}
	})
	return &env{t: t, sb: sb}
}

// container creates a named netns standing for a container.
func (e *env) container() string {
	e.t.Helper()
	name := uniq("ovt-c")
	if err := sandbox.AddNetns(name); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sandbox.DelNetns(name) })
	return name
}

type result struct {
	out, err string
	code     int
}

// ovsnet runs the binary inside the sandbox host.
func (e *env) ovsnet(args ...string) result {
	e.t.Helper()
	return e.ovsnetWith(nil, args...)
}

// ovsnetWith runs the binary inside the sandbox host with more environment.
func (e *env) ovsnetWith(env []string, args ...string) result {
	e.t.Helper()
	c := e.sb.Command(ovsnetBin, args...)
	c.Env = append(c.Env, env...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	r := result{out: out.String(), err: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run ovsnet: %v", err)
	}
	return r
}

// must runs ovsnet and fails the test unless it succeeds.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.ovsnet(args...)
	if r.code != 0 {
		e.t.Fatalf("ovsnet %s: exit %d: %s", strings.Join(args, " "), r.code, r.err)
	}
	return r.out
}

// fails runs ovsnet and checks it fails with one "ovsnet:" line containing want.
func (e *env) fails(want string, args ...string) {
	e.t.Helper()
	r := e.ovsnet(args...)
	if r.code == 0 {
		e.t.Fatalf("ovsnet %s succeeded, want error %q", strings.Join(args, " "), want)
	}
	line := strings.TrimRight(r.err, "\n")
	if !strings.HasPrefix(line, "ovsnet: ") || strings.Contains(line, "\n") || !strings.Contains(line, want) {
		e.t.Fatalf("ovsnet %s: stderr %q, want one line `ovsnet: ...%s...`", strings.Join(args, " "), r.err, want)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ping sends count pings from netns to addr and fails the test on any loss.
func ping(t *testing.T, netns, addr string) {
	t.Helper()
	run(t, "ip", "netns", "exec", netns, "ping", "-c", "3", "-i", "0.2", "-W", "2", addr)
}

// pingSteadily starts count pings, 20 ms apart, from netns to addr in
// the background; the returned wait fails the test, saying what was
// going on, unless every ping was answered. Ping gets a deadline: without
// one it waits only two round trips (or one interval) for the last
// replies, so a reply late on a busy machine counts as lost; with it, it
// waits for count replies, and a ping really lost still shows, as ping
// then sends more and reports the loss.
func pingSteadily(t *testing.T, netns, addr string, count int) (wait func(during string)) {
	t.Helper()
	p := exec.Command("ip", "netns", "exec", netns, "ping", "-q", "-c", strconv.Itoa(count), "-i", "0.02", "-w", "60", addr)
	var out strings.Builder
	p.Stdout, p.Stderr = &out, &out
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return func(during string) {
		t.Helper()
		if err := p.Wait(); err != nil || !strings.Contains(out.String(), " 0% packet loss") {
			t.Fatalf("ping %s from %s %s: %v\n%s", addr, netns, during, err, out.String())
		}
	}
}

// noPing checks that addr does not answer from netns.
func noPing(t *testing.T, netns, addr string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", netns, "ping", "-c", "2", "-i", "0.2", "-W", "1", addr).CombinedOutput(); err == nil {
		t.Fatalf("ping %s from %s answered, want no answer: %s", addr, netns, out)
	}
}

// inNetns runs f on a thread inside the named netns; sockets made there
// stay in that netns afterwards.
func inNetns(t *testing.T, path string, f func() error) {
	t.Helper()
	n, err := ns.GetNS(path)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

func nsPath(netns string) string { return "/var/run/netns/" + netns }

// tcpTransfer sends size bytes from netns src to dst:port over TCP and
// checks they arrive intact.
func tcpTransfer(t *testing.T, srcPath, dstPath, dstAddr string, size int) {
	t.Helper()
	var ln net.Listener
	inNetns(t, dstPath, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(dstAddr, "5201"))
		return err
	})
	defer ln.Close()
	type got struct {
		n   int64
		sum [32]byte
		err error
	}
	done := make(chan got, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- got{err: err}
			return
		}
		defer c.Close()
		h := sha256.New()
		n, err := io.Copy(h, c)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		done <- got{n, s, err}
	}()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var conn net.Conn
	inNetns(t, srcPath, func() (err error) {
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(dstAddr, "5201"), 5*time.Second)
		return err
	})
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write(payload); err != nil {
		t.Fatalf("send: %v", err)
	}
	conn.Close()
	r := <-done
	if r.err != nil || r.n != int64(size) || r.sum != sha256.Sum256(payload) {
		t.Fatalf("TCP transfer to %s: got %d bytes (want %d), err %v, intact %v", dstAddr, r.n, size, r.err, r.sum == sha256.Sum256(payload))
	}
}

// links lists the link names in a netns ("" for the test's own).
func links(t *testing.T, netns string) []string {
	t.Helper()
	args := []string{"-o", "link", "show"}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "ip", args...)), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 {
			if name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]; !tunnelFallback[name] {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names
}

// tunnelFallback are the devices the kernel makes in every network
// namespace once ip_gre, ip6_gre, ip6_tunnel, sit or ipip is loaded (as on
// the kernel datapath, where OVS's GRE vports load ip_gre): nobody's to
// remove, so links leaves them out.
var tunnelFallback = map[string]bool{"gre0": true, "gretap0": true, "erspan0": true, "ip6gre0": true, "ip6tnl0": true,
	"sit0": true, "tunl0": true, "ip_vti0": true, "ip6_vti0": true}

// addrs lists "dev addr/plen" in a netns.
func addrs(t *testing.T, netns string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "ip", "-n", netns, "-o", "addr", "show")), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && !strings.HasPrefix(f[3], "fe80:") {
			out = append(out, f[1]+" "+f[3])
		}
	}
	sort.Strings(out)
	return out
}

var genRE = regexp.MustCompile(`\[""ovsnet-(gen|next-ofport|ipv4-hint|ipv6-hint)"",""[0-9a-f.:]+""\],?`)

// state is everything a bad command must leave unchanged.
func (e *env) state(containers ...string) string {
	e.t.Helper()
	var b strings.Builder
	for _, tbl := range []string{"Bridge", "Port", "Interface"} {
		cols := "_uuid,name,external_ids,ports"
		switch tbl {
		case "Port":
			cols = "_uuid,name,external_ids,interfaces,tag"
		case "Interface":
			cols = "_uuid,name,type,external_ids,ofport_request"
		}
		out, err := e.sb.Vsctl("--columns="+cols, "--format=csv", "--data=json", "list", tbl)
		if err != nil {
			e.t.Fatal(err)
		}
		// The bridge's attach generation, port-number counter and address
		// hints move with attempts, rolled back ones included: they are
		// allocation bookkeeping, checked by behaviour (reconcile finding
		// nothing to repair, --ip getting the lowest address) instead.
		out = genRE.ReplaceAllString(out, "")
		lines := strings.Split(out, "\n")
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n"))
	}
	b.WriteString(strings.Join(links(e.t, e.sb.Netns), " "))
	b.WriteString(strings.Join(addrs(e.t, e.sb.Netns), " "))
	for _, c := range containers {
		b.WriteString(strings.Join(links(e.t, c), " "))
		b.WriteString(strings.Join(addrs(e.t, c), " "))
	}
	return b.String()
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
