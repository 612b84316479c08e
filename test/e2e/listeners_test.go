package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Bad clients cannot stop the controller: hundreds of half-sent requests
// to the page (any local user can connect) and to the attach API, with
// the controller's descriptors limited so that they run out. The page
// holds a bounded number of connections and times out slow ones; the
// API's accept loop is seen failing (the log says so) and carries on, so
// an attach a moment later is served by the controller, not by the CLI
// on its own.
func TestBadClientsCannotStallController(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.86.0.0/24")
	const addr = "127.0.0.1:19486"
	e.startControllerUnder([]string{"prlimit", "--nofile=160:160"}, addr, "--resync", "1h")
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	inNetns(t, nsPath(e.sb.Netns), func() error {
		for range 400 {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				break // the backlog is full: what the kernel holds, not the controller
			}
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n", addr) // never finished
			held = append(held, c)
		}
		return nil
	})
	sock := filepath.Join(e.sb.Dir, "ovsnet.sock")
	for range 300 {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			break
		}
		c.Write([]byte(`{"op":"add-po`)) // never finished
		held = append(held, c)
	}
	t.Logf("holding %d half-sent requests", len(held))
	logs, _ := filepath.Glob(filepath.Join(e.sb.Dir, "controller-*.log"))
	eventually(t, 30*time.Second, "the API's accept loop out of descriptors", func() bool {
		for _, l := range logs {
			if b, _ := os.ReadFile(l); bytes.Contains(b, []byte("too many open files")) {
				return true
			}
		}
		return false
	})

	c := e.container()
	r := e.ovsnetWith(nil, "add-port", "br0", "eth1", c, "--ip")
	if r.code != 0 {
		t.Fatalf("attach while bad clients hold connections: %s", r.err)
	}
	if n := e.apiCount(addr, "add-port", "ok"); n != 1 {
		t.Fatalf("the controller served %d add-ports, want 1 (the CLI gave up on it)", n)
	}
	ping(t, c, "10.86.0.1")
	if code, _ := e.httpGet(addr, "/healthz"); code != 200 {
		t.Fatalf("the page after the flood: %d", code)
	}
}

// The page answers only to its own addresses (no DNS rebinding), and
// what runs something (a trace) only as same-origin JSON of bounded size.
func TestPageRefusesForeignRequests(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.87.0.0/24")
	const addr = "127.0.0.1:19487"
	e.startController(addr)
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })
	trace := `{"bridge":"br0","from":"a","to":"10.87.0.1"}`
	for _, c := range []struct {
		what, req string
		want      int
	}{
		{"a foreign Host", "GET /api/topology HTTP/1.0\r\nHost: rebind.example.com:19487\r\n\r\n", 421},
		{"localhost", "GET /api/topology HTTP/1.0\r\nHost: localhost:19487\r\n\r\n", 200},
		{"a text/plain POST", post(addr, "text/plain", "", trace), 415},
		{"a foreign Origin", post(addr, "application/json", "http://evil.example", trace), 403},
		{"a big body", post(addr, "application/json", "", `{"bridge":"`+strings.Repeat("x", 1<<20)+`"}`), 400},
		{"the page's own trace", post(addr, "application/json", "http://"+addr, trace), 400}, // no container "a": a trace error, but served
	} {
		code, body := e.httpRaw(addr, c.req)
		if code != c.want {
			t.Fatalf("%s: %d, want %d: %s", c.what, code, c.want, body)
		}
		if c.what == "the page's own trace" && !strings.Contains(body, "error") {
			t.Fatalf("the page's trace was not run: %s", body)
		}
	}
}

func post(addr, ctype, origin, body string) string {
	h := fmt.Sprintf("POST /api/trace HTTP/1.0\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n", addr, ctype, len(body))
	if origin != "" {
		h += "Origin: " + origin + "\r\n"
	}
	return h + "\r\n" + body
}

// What the front ends accept: names that tools would read as options,
// MTUs above the bridge's, the container's loopback, the host's own
// namespace as a container's; a CNI DEL takes only its own network's
// attachment; the Docker plugin refuses IDs that are not Docker's and
// bodies beyond a bound.
func TestFrontEndsRefuseOddInput(t *testing.T) {
	e := newEnv(t)
	e.fails("starts with '-'", "add-br", "--", "--subnet")
	e.must("add-br", "br1", "--subnet", "10.88.0.0/24", "--mtu", "1500")
	a := e.container()
	e.fails("MTU 9000 is above bridge br1's 1500", "add-port", "br1", "eth1", a, "--ip", "--mtu", "9000")
	e.fails("loopback", "add-port", "br1", "lo", a, "--ip")
	before := e.state(a)
	conf := func(name string) string {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovsnet","bridge":"br1","subnet":"10.88.0.0/24","ovsdb":%q}`, name, e.sb.DB())
	}
	if out, err := e.plugin("ADD", "hostns", "/proc/self/ns/net", conf("net-a")); err == nil || !strings.Contains(out, "host's network namespace") {
		t.Fatalf("CNI ADD into the host's own namespace: %v\n%s", err, out)
	}
	if after := e.state(a); after != before {
		t.Fatalf("a refused ADD left changes:\nbefore %s\nafter  %s", before, after)
	}

	// The same container ID and interface attached by the CLI and by the
	// CNI plugin for net-a: DEL for net-b, then for net-a, each leaves
	// what is not its own.
	b := e.container()
	e.must("add-port", "br1", "eth0", b, "--ip")
	if out, err := e.plugin("DEL", b, nsPath(b), conf("net-a")); err != nil {
		t.Fatalf("CNI DEL of nothing of its own: %v\n%s", err, out)
	}
	if !slices.Contains(links(t, b), "eth0") {
		t.Fatal("a CNI DEL removed a port the CLI attached")
	}
	c := e.container()
	if out, err := e.plugin("ADD", "ctr-c", nsPath(c), conf("net-a")); err != nil {
		t.Fatalf("CNI ADD: %v\n%s", err, out)
	}
	if out, err := e.plugin("DEL", "ctr-c", nsPath(c), conf("net-b")); err != nil || !slices.Contains(links(t, c), "eth0") {
		t.Fatalf("a DEL for another network removed net-a's attachment (%v):\n%s", err, out)
	}
	if out, err := e.plugin("DEL", "ctr-c", nsPath(c), conf("net-a")); err != nil || slices.Contains(links(t, c), "eth0") {
		t.Fatalf("net-a's own DEL (%v):\n%s", err, out)
	}

	name := uniq("ovt-odd")
	e.servePlugin(name)
	sock := filepath.Join("/run/docker/plugins", name+".sock")
	hc := http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for _, c := range []struct{ body, want string }{
		{`{"NetworkID":"../../../../etc","IPv4Data":[{"Pool":"10.89.0.0/24"}]}`, "is not Docker's"},
		{`{"NetworkID":"` + strings.Repeat("a", 2<<20) + `"}`, "too large"},
	} {
		rs, err := hc.Post("http://plugin/NetworkDriver.CreateNetwork", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rs.Body)
		rs.Body.Close()
		if rs.StatusCode != 400 || !strings.Contains(string(got), c.want) {
			t.Fatalf("the plugin took %.60s...: %d %s", c.body, rs.StatusCode, got)
		}
	}
	if brs := e.vsctlList("list-br"); brs != "br1" {
		t.Fatalf("bridges after refused requests: %q", brs)
	}
}

// An ovs-vswitchd restart with no controller takes every flow with it; the
// next CNI ADD onto the bridge puts them back (its container and the one
// attached before reach each other), and STATUS said so until then.
func TestAttachRestoresLostPipeline(t *testing.T) {
	e := newEnv(t)
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"net-p","type":"ovsnet","bridge":"br-p","subnet":"10.89.0.0/24","portType":"veth","ovsdb":%q}`, e.sb.DB())
	a, b := e.container(), e.container()
	if out, err := e.plugin("ADD", "ctr-a", nsPath(a), conf); err != nil {
		t.Fatalf("ADD: %v\n%s", err, out)
	}
	if out, err := e.plugin("STATUS", "", "", conf); err != nil {
		t.Fatalf("STATUS before the restart: %v\n%s", err, out)
	}
	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.dumpFlows("br-p"), "cookie="); n != 0 {
		t.Fatalf("the restarted ovs-vswitchd kept %d flows: the test needs them gone", n)
	}
	if out, err := e.plugin("STATUS", "", "", conf); err == nil || !strings.Contains(out, "lost its flows") {
		t.Fatalf("STATUS with the pipeline gone: %v\n%s", err, out)
	}
	out, err := e.plugin("ADD", "ctr-b", nsPath(b), conf)
	if err != nil {
		t.Fatalf("ADD after the restart: %v\n%s", err, out)
	}
	ping(t, b, "10.89.0.2")
	ping(t, a, "10.89.0.1")
	if out, err := e.plugin("STATUS", "", "", conf); err != nil {
		t.Fatalf("STATUS once the ADD restored the flows: %v\n%s", err, out)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("reconcile after the ADD's restore: %q", out)
	}
}
