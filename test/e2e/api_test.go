package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/attach"
)

// apiCount reads ovsnet_api_requests_total{op,result} from the controller.
func (e *env) apiCount(addr, op, result string) int {
	e.t.Helper()
	return e.counter(addr, fmt.Sprintf(`ovsnet_api_requests_total{op="%s",result="%s"}`, op, result))
}

// counter reads one series of the controller's metrics (0 if absent).
func (e *env) counter(addr, series string) int {
	e.t.Helper()
	code, body := e.httpGet(addr, "/metrics")
	if code != 200 {
		e.t.Fatalf("/metrics: %d", code)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\d+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// With a controller running, add-port and del-port are served by it (its
// request counter moves; OVSNET_DIRECT=1 keeps it still), with the same
// results and errors as without one, and nothing left by a failed request.
func TestControllerAttachAPI(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.82.0.0/24")
	const addr = "127.0.0.1:19479"
	e.startController(addr, "--resync", "1h")
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })
	c1, c2, c3 := e.container(), e.container(), e.container()

	var p1 portJSON
	if err := json.Unmarshal([]byte(e.must("add-port", "br0", "eth1", c1, "--ip", "-o", "json")), &p1); err != nil || len(p1.Addresses) != 1 {
		t.Fatalf("add-port through the controller: %v %+v", err, p1)
	}
	if n := e.apiCount(addr, "add-port", "ok"); n != 1 {
		t.Fatalf("controller served %d add-ports, want 1", n)
	}
	if r := e.ovsnetWith([]string{"OVSNET_DIRECT=1"}, "add-port", "br0", "eth1", c2, "--ip", "--type", "veth"); r.code != 0 {
		t.Fatalf("direct add-port: %s", r.err)
	}
	if n := e.apiCount(addr, "add-port", "ok"); n != 1 {
		t.Fatalf("OVSNET_DIRECT=1 went through the controller (%d requests)", n)
	}
	ping(t, c2, strings.Split(p1.Addresses[0], "/")[0])
	ping(t, c1, "10.82.0.1")

	// An error comes back as the CLI's own, and the request leaves nothing.
	e.fails(`container not found: "no-such-ctr": no Docker `, "add-port", "br0", "eth1", "no-such-ctr", "--ip") // container, or engine (none in test/vm's VM)
	e.fails("already attached", "add-port", "br0", "eth1", c1, "--ip")
	if n := e.apiCount(addr, "add-port", "error"); n != 2 {
		t.Fatalf("controller answered %d failed add-ports, want 2", n)
	}
	// c2's veth, and c1's on the kernel datapath (veth is its default).
	if hp, want := e.hostPorts(), map[bool]int{false: 1, true: 2}[kernelDatapath]; len(hp) != want {
		t.Fatalf("host links after failed requests: %v, want %d", hp, want)
	}

	e.must("del-port", "br0", "eth1", c1)
	if n := e.apiCount(addr, "del-port", "ok"); n != 1 {
		t.Fatalf("controller served %d del-ports, want 1", n)
	}
	if out := run(t, "ip", "-n", c1, "-o", "link"); strings.Contains(out, "eth1") {
		t.Fatalf("eth1 still in %s after del-port: %s", c1, out)
	}
	e.fails("failed to find any attached port", "del-port", "br0", "eth1", c1)

	// Concurrent requests (their flows share bundles) all land.
	cs := []string{c1, c3, e.container(), e.container(), e.container(), e.container()}
	done := make(chan result, len(cs))
	for _, c := range cs {
		go func() { done <- e.ovsnet("add-port", "br0", "eth1", c, "--ip", "--type", "veth") }()
	}
	for range cs {
		if r := <-done; r.code != 0 {
			t.Fatalf("concurrent add-port: %s", r.err)
		}
	}
	for _, c := range cs {
		ping(t, c, "10.82.0.1")
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("state after the API's attaches needs repair: %q", out)
	}
	if st := e.must("status", "--controller", addr); !strings.Contains(st, "attach API requests: add-port/error=2 add-port/ok=7 del-port/error=1 del-port/ok=1") {
		t.Fatalf("status:\n%s", st)
	}
}

// A controller that takes an add-port and goes away before answering (here
// a stand-in that reads the request and hangs up) leaves the CLI to finish:
// a half-made port the controller left is removed and the attach made, and
// the command succeeds; a del-port is carried out here.
func TestAddPortControllerLost(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.83.0.0/24")
	c1, c2 := e.container(), e.container()
	var p1 portJSON
	json.Unmarshal([]byte(e.must("add-port", "br0", "eth1", c1, "--ip", "--type", "veth", "-o", "json")), &p1)
	// What a controller killed between commit and configuration leaves.
	if _, err := e.sb.Vsctl("set", "interface", p1.OVSPort, "external_ids:ovsnet-state=attaching"); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", c1, "link", "del", "eth1")
	// What one killed after making its veth, before committing the row,
	// leaves: the veth, its container end named already.
	c3 := e.container()
	run(t, "ip", "-n", e.sb.Netns, "link", "add", attach.HostName("br0", c3, "eth1"), "type", "veth", "peer", "name", "eth1", "netns", c3)

	var ln net.Listener
	inNetns(t, nsPath(e.sb.Netns), func() (err error) {
		ln, err = net.Listen("unix", filepath.Join(e.sb.Dir, "ovsnet.sock"))
		return err
	})
	defer ln.Close()
	taken := make(chan string, 5)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			taken <- line
			c.Close()
		}
	}()
	for _, c := range []string{c1, c2, c3} {
		r := e.ovsnet("add-port", "br0", "eth1", c, "--ip", "-o", "json")
		if r.code != 0 || !strings.Contains(r.err, "went away") {
			t.Fatalf("add-port %s with a lost controller: exit %d, stderr %q", c, r.code, r.err)
		}
		if rq := <-taken; !strings.Contains(rq, `"add-port"`) || !strings.Contains(rq, c) {
			t.Fatalf("request the controller got: %q", rq)
		}
		ping(t, c, "10.83.0.1")
	}
	if rows, _ := e.sb.Vsctl("--columns=name", "find", "interface", "name="+p1.OVSPort, "external_ids:ovsnet-state=attaching"); strings.TrimSpace(rows) != "" {
		t.Fatalf("half-made port left: %q", rows)
	}
	// A del-port the controller took and hung up on is finished here too.
	if r := e.ovsnet("del-port", "br0", "eth1", c2); r.code != 0 || !strings.Contains(r.err, "went away") {
		t.Fatalf("del-port with a lost controller: exit %d, stderr %q", r.code, r.err)
	}
	<-taken
	if out := run(t, "ip", "-n", c2, "-o", "link"); strings.Contains(out, "eth1") {
		t.Fatalf("eth1 still in %s after del-port: %s", c2, out)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("state after the resumed attaches needs repair: %q", out)
	}
}
