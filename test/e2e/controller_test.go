package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// startController runs `ovsnet controller` in the sandbox host, without
// a warm pool unless args ask for one (--pool N): the pool's ports would
// take the addresses and host links other tests count.
func (e *env) startController(listen string, args ...string) *exec.Cmd {
	e.t.Helper()
	return e.startControllerUnder(nil, listen, args...)
}

// startControllerUnder starts the controller as startController does, its
// command line after wrapper's (prlimit, say).
func (e *env) startControllerUnder(wrapper []string, listen string, args ...string) *exec.Cmd {
	e.t.Helper()
	if !slices.Contains(args, "--pool") {
		args = append(args, "--pool", "0")
	}
	argv := append(append(slices.Clone(wrapper), ovsnetBin, "controller", "--listen", listen, "--resync", "1s"), args...)
	c := e.sb.Command(argv[0], argv[1:]...)
	log, err := os.Create(filepath.Join(e.sb.Dir, fmt.Sprintf("controller-%d.log", time.Now().UnixNano())))
	if err != nil {
		e.t.Fatal(err)
	}
	c.Stdout, c.Stderr = log, log
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// httpGet fetches path from addr inside the sandbox host.
func (e *env) httpGet(addr, path string) (int, string) {
	e.t.Helper()
	return e.httpRaw(addr, fmt.Sprintf("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr))
}

// httpRaw sends one raw HTTP/1.0 request to addr inside the sandbox host
// and returns the status and body (0 when nothing listens).
func (e *env) httpRaw(addr, req string) (int, string) {
	e.t.Helper()
	var conn net.Conn
	inNetns(e.t, nsPath(e.sb.Netns), func() error {
		conn, _ = net.DialTimeout("tcp", addr, time.Second) // nil: not listening yet
		return nil
	})
	if conn == nil {
		return 0, ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, req)
	r := bufio.NewReader(conn)
	status, _ := r.ReadString('\n')
	var code int
	fmt.Sscanf(status, "HTTP/1.%d %d", new(int), &code)
	body, _ := io.ReadAll(r)
	return code, string(body)
}

// eventually polls cond (what it checks is not timing: a service's repair
// simply takes some resync periods) up to limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %s", what, limit)
}

func pings(netns, addr string) bool {
	return exec.Command("ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", addr).Run() == nil
}

func TestController(t *testing.T) {
	e := newEnv(t)
	k := &controllerCase{e: e, t: t, out: e.outside(), addr: "127.0.0.1:19476"}
	k.c1, k.c2, k.c3 = e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.80.0.0/24", "--icc=false")
	e.must("add-port", "br0", "eth1", k.c1, "--ip", "-p", "8080:80")
	e.must("add-port", "br0", "eth1", k.c2, "--ip")
	e.must("add-port", "br0", "eth1", k.c3, "--ip")
	e.must("link", "br0", k.c1, k.c2)
	k.ctl = e.startController(k.addr)
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := e.httpGet(k.addr, "/healthz"); return code == 200 })

	// One controller per host.
	second := e.ovsnet("controller", "--listen", "127.0.0.1:19477")
	if second.code == 0 || !strings.Contains(second.err, "another ovsnet controller is running") {
		t.Fatalf("second controller: exit %d: %s", second.code, second.err)
	}
	k.driftRepaired()
	k.metricsAndStatus()
	k.killedMidPing()
	k.coldStart()
	k.garbageCollected()
	k.daemonsRestarted()
}

// controllerCase is TestController's host: br0 (icc off) with c1 linked
// to c2, c1 publishing 8080, c3 unlinked, and the controller ctl at addr.
type controllerCase struct {
	e          *env
	t          *testing.T
	out        string
	addr       string
	c1, c2, c3 string
	ctl        *exec.Cmd
}

// driftRepaired: drift is repaired without any command: deleted flows, a
// foreign flow, a flushed nat table, a removed gateway address.
func (k *controllerCase) driftRepaired() {
	e, t := k.e, k.t
	if _, err := e.sb.Run("ovs-ofctl", "del-flows", "br0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "flows restored", func() bool { return pings(k.c1, "10.80.0.3") })
	noPing(t, k.c1, "10.80.0.4") // isolation came back with them
	// A flow someone else added, even outside ovsnet's tables, goes (the
	// per-table flow counts differ from the intent's).
	if _, err := e.sb.Run("ovs-ofctl", "add-flow", "br0", "table=99,priority=1,actions=drop"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "foreign flow removed", func() bool {
		out, _ := e.sb.Run("ovs-ofctl", "dump-flows", "br0", "table=99")
		return !strings.Contains(out, "actions=drop")
	})
	if _, err := e.sb.Run("iptables", "-t", "nat", "-F"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "published port restored", func() bool {
		return tcpVia(t, k.out, "192.0.2.1:8080", k.c1, "10.80.0.2:80") == nil
	})
	run(t, "ip", "-n", e.sb.Netns, "addr", "flush", "dev", "br0")
	eventually(t, 10*time.Second, "gateway address restored", func() bool { return pings(k.c2, "10.80.0.1") })
}

// metricsAndStatus: /metrics counts runs, ports and repairs; status says
// the controller is up.
func (k *controllerCase) metricsAndStatus() {
	e, t, addr := k.e, k.t, k.addr
	code, metrics := e.httpGet(addr, "/metrics")
	for _, want := range []string{"ovsnet_reconcile_total ", "ovsnet_reconcile_duration_seconds_bucket", `ovsnet_ports{bridge="br0"} 3`,
		"ovsnet_ovsdb_connected 1", "ovsnet_flows_installed ", "ovsnet_reconcile_errors_total "} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Fatalf("/metrics (%d) lacks %q:\n%s", code, want, metrics)
		}
	}
	if strings.Contains(metrics, "ovsnet_drift_repairs_total 0\n") {
		t.Fatalf("drift repairs not counted:\n%s", metrics)
	}
	st := e.must("status", "--controller", addr)
	if !strings.Contains(st, "controller at "+addr+": ok") || !strings.Contains(st, "OVSDB connected: true") || !strings.Contains(st, "ports: br0=3") {
		t.Fatalf("status:\n%s", st)
	}
}

// kill stops the controller with kill -9 and waits for it to be gone.
func (k *controllerCase) kill() {
	k.ctl.Process.Signal(syscall.SIGKILL)
	k.ctl.Wait()
}

// killedMidPing: kill -9 during a 20 ms ping between linked containers
// loses nothing, since the flows stay in ovs-vswitchd; a flow changed in
// place keeps the counts, and the full comparison (--verify) finds it.
func (k *controllerCase) killedMidPing() {
	e, t := k.e, k.t
	pinged := pingSteadily(t, k.c1, "10.80.0.3", 100)
	time.Sleep(time.Second)
	k.kill()
	// From here on the controller compares flows one by one every second.
	k.ctl = e.startController(k.addr, "--verify", "1s")
	pinged("across a controller kill -9")
	eventually(t, 15*time.Second, "healthz after restart", func() bool { code, _ := e.httpGet(k.addr, "/healthz"); return code == 200 })
	if _, err := e.sb.Run("ovs-ofctl", "mod-flows", "br0", "table=30,actions=drop"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "flows changed in place restored", func() bool { return pings(k.c1, "10.80.0.3") })
}

// coldStart: flows lost while no controller runs: a cold start's first
// run compares flow counts (asked for while its monitor loads) and
// repairs. No full comparison (--verify) and no second run (--resync)
// comes within the test's wait: the first run must find it.
func (k *controllerCase) coldStart() {
	e, t := k.e, k.t
	k.kill()
	if _, err := e.sb.Run("ovs-ofctl", "del-flows", "br0", "table=30"); err != nil {
		t.Fatal(err)
	}
	if pings(k.c1, "10.80.0.3") {
		t.Fatal("linked containers still reach each other with table 30 emptied")
	}
	k.ctl = e.startController(k.addr, "--resync", "1h")
	eventually(t, 10*time.Second, "flows lost while the controller was down restored at its start", func() bool { return pings(k.c1, "10.80.0.3") })
	k.kill()
	k.ctl = e.startController(k.addr, "--verify", "1s")
}

// garbageCollected: a veth left by an attach killed before its row was
// made goes, and so does a vanished container's port.
func (k *controllerCase) garbageCollected() {
	e, t := k.e, k.t
	run(t, "ip", "-n", e.sb.Netns, "link", "add", "on0123456789ab", "type", "veth", "peer", "name", "leakpeer")
	eventually(t, 10*time.Second, "leaked veth removed", func() bool {
		return !slices.Contains(links(t, e.sb.Netns), "on0123456789ab")
	})
	if err := sandbox.DelNetns(k.c3); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "port of a deleted netns removed", func() bool {
		out, _ := e.sb.Vsctl("--columns=name", "find", "interface", "external_ids:container_id="+k.c3)
		return strings.TrimSpace(out) == ""
	})
}

// daemonsRestarted: after an ovs-vswitchd restart its internal ports in
// the containers die with it (userspace datapath); the controller
// re-attaches the new ones and reinstalls the flows, fail_mode=secure
// keeping isolation closed meanwhile. After an ovsdb-server restart it
// reconnects, and later drift is still repaired.
func (k *controllerCase) daemonsRestarted() {
	e, t := k.e, k.t
	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for !pings(k.c1, "10.80.0.3") {
		if pings(k.c2, "10.80.0.2") {
			t.Fatal("an unlinked direction got through while the host recovered")
		}
		if time.Since(start) > 30*time.Second {
			out, _ := e.sb.Run("ovs-vsctl", "--db="+e.sb.DB(), "show")
			t.Fatalf("linked containers did not reach each other again after an ovs-vswitchd restart:\n%s", out)
		}
	}
	t.Logf("connectivity back %.1f s after ovs-vswitchd restarted", time.Since(start).Seconds())
	noPing(t, k.c2, "10.80.0.2")
	if err := tcpVia(t, k.out, "192.0.2.1:8080", k.c1, "10.80.0.2:80"); err != nil {
		t.Fatalf("published port after an ovs-vswitchd restart: %v", err)
	}
	if err := e.sb.RestartOVSDB(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if _, err := e.sb.Run("ovs-ofctl", "del-flows", "br0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "flows restored after an ovsdb-server restart", func() bool { return pings(k.c1, "10.80.0.3") })
}

// Runs set off by OVSDB changes ask ovs-vswitchd nothing after attaches
// and detaches (their makers installed and removed the flows), yet an
// intent changed in place by hand reaches the flows at once, and so do the
// flows of a restarted ovs-vswitchd: no resync or full comparison is due
// in this test.
func TestControllerChangeRuns(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.84.0.0/24")
	const addr = "127.0.0.1:19481"
	e.startController(addr, "--resync", "1h", "--verify", "1h")
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })
	runs := func() int { return e.counter(addr, "ovsnet_reconcile_total") }
	settled := func(after int) {
		t.Helper() // a run after the change, and none pending
		eventually(t, 15*time.Second, "convergence after the change", func() bool { return runs() > after })
		time.Sleep(300 * time.Millisecond)
	}
	checks := e.counter(addr, "ovsnet_flow_checks_total")
	if checks < 1 {
		t.Fatalf("first run asked for no flow counts (%d)", checks)
	}

	c1, c2, c3 := e.container(), e.container(), e.container()
	r := runs()
	e.must("add-port", "br0", "eth1", c1, "--ip", "--type", "veth")
	e.must("add-port", "br0", "eth1", c2, "--ip", "--type", "veth")
	e.must("add-port", "br0", "eth1", c3, "--ip") // internal
	e.must("del-port", "br0", "eth1", c3)
	settled(r)
	if n := e.counter(addr, "ovsnet_flow_checks_total"); n != checks {
		t.Fatalf("runs after attaches and a detach asked for flow counts %d times", n-checks)
	}
	if n := e.counter(addr, "ovsnet_flow_updates_total"); n != 0 {
		t.Fatalf("runs after attaches and a detach sent %d bundles", n)
	}
	ping(t, c1, "10.84.0.3")

	port := func(c string) string {
		out, err := e.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:container_id="+c)
		if err != nil || strings.TrimSpace(out) == "" {
			t.Fatalf("port of %s: %v %q", c, err, out)
		}
		return strings.TrimSpace(out)
	}
	// A VLAN tag set by hand: c2's flows follow (c1 stays untagged).
	if _, err := e.sb.Vsctl("set", "port", port(c2), "tag=7"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "c2 on VLAN 7 cut off from untagged c1", func() bool { return !pings(c1, "10.84.0.3") })
	if _, err := e.sb.Vsctl("set", "port", port(c1), "tag=7"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "c1 joining VLAN 7 reaches c2", func() bool { return pings(c1, "10.84.0.3") })
	if n := e.counter(addr, "ovsnet_flow_updates_total"); n < 2 {
		t.Fatalf("VLAN changes sent %d bundles, want one each", n)
	}

	// ovs-vswitchd restarted: it starts with no flows (fail_mode=secure:
	// nothing passes). Its closed connection sets off a run that checks.
	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "flows back after an ovs-vswitchd restart", func() bool { return pings(c1, "10.84.0.3") })
	if n := e.counter(addr, "ovsnet_flow_checks_total"); n == checks {
		t.Fatal("flows came back with no flow check")
	}
}

// 40 concurrent attaches while the controller runs (with no pool, and
// with its default pool, whose 8 ports the first attaches claim), and the
// controller killed with -9 half-way: all succeed with distinct addresses
// and OVS ports, nothing leaks, and every container works.
func TestControllerConcurrentAttach(t *testing.T) {
	for _, pool := range []string{"0", "8"} {
		t.Run("pool "+pool, func(t *testing.T) { concurrentAttach(t, pool) })
	}
}

func concurrentAttach(t *testing.T, pool string) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.81.0.0/24")
	ports := map[string]bool{}
	if pool != "0" { // a bridge in use keeps a pool
		ports[e.addPortJSON("add-port", "br0", "eth1", e.container(), "--ip", "10.81.0.250").OVSPort] = true
	}
	const addr = "127.0.0.1:19478"
	ctl := e.startController(addr, "--pool", pool)
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })
	if pool != "0" {
		e.poolReady("br0", 8, otherType()) // the datapath's default type
	}
	const n = 40
	cs := make([]string, n)
	for i := range cs {
		cs[i] = e.container()
	}
	results := make(chan result, n)
	for i := range cs {
		go func(c string) { results <- e.ovsnet("add-port", "br0", "eth1", c, "--ip", "-o", "json") }(cs[i])
		if i == n/2 {
			ctl.Process.Signal(syscall.SIGKILL)
			ctl.Wait()
			e.startController(addr, "--pool", pool)
		}
	}
	seen := map[string]bool{}
	for range cs {
		r := <-results
		if r.code != 0 {
			t.Fatalf("attach failed: %s", r.err)
		}
		var p portJSON
		if err := jsonUnmarshal(r.out, &p); err != nil || len(p.Addresses) != 1 {
			t.Fatalf("attach output %q: %v", r.out, err)
		}
		if seen[p.Addresses[0]] || ports[p.OVSPort] {
			t.Fatalf("address %s or OVS port %s given twice", p.Addresses[0], p.OVSPort)
		}
		seen[p.Addresses[0]], ports[p.OVSPort] = true, true
	}
	eventually(t, 15*time.Second, "healthz after restart", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })
	// In the host: the attached veths (the kernel datapath's default
	// type) and the pool's ports, nothing else.
	for _, p := range e.pool("br0") {
		ports[p.OVSPort] = true
	}
	for _, l := range e.hostPorts() {
		if !ports[l] {
			t.Fatalf("link %s left in the host: neither attached nor the pool's (%d attached)", l, len(seen))
		}
	}
	for _, c := range cs {
		ping(t, c, "10.81.0.1")
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("state after the attaches needs repair: %q", out)
	}
}
