package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestOVNRouter: a router between two OVN networks on two chassis routes,
// but lets across only what a link allows (and its replies); a network
// with NAT, with containers, or on another router is refused; rm leaves
// nothing in the northbound database.
func TestOVNRouter(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 2)
	for i := range hs {
		joinOVN(t, c, hs, i)
	}
	e := hs[0]
	e.must("network", "create", "web", "--subnet", "10.71.1.0/24", "--nat=false")
	e.must("network", "create", "db", "--subnet", "10.71.2.0/24", "--nat=false")
	e.must("network", "create", "out", "--subnet", "10.71.3.0/24")
	e.must("router", "create", "r1")
	if out := e.must("router", "create", "r1"); !strings.Contains(out, "exists, unchanged") {
		t.Fatalf("create again: %s", out)
	}
	e.must("router", "create", "r2")
	e.fails("network out has NAT", "router", "attach", "r1", "out")
	e.must("router", "attach", "r1", "web")
	e.must("router", "attach", "r1", "db")
	if out := e.must("router", "attach", "r1", "web"); !strings.Contains(out, "(already)") {
		t.Fatalf("attach again: %s", out)
	}
	e.fails("network web is on router r1", "router", "attach", "r2", "web")
	routerAddress(t, hs, e)

	a, b := hs[0].container(), hs[1].container()
	hs[0].must("add-port", "web", "eth1", a, "--ip") // 10.71.1.2
	hs[1].must("add-port", "db", "eth1", b, "--ip")  // 10.71.2.2
	routerShown(t, e, a)
	e.fails("has 1 container port(s)", "router", "detach", "r1", "web")
	e.fails("still routes db, web", "router", "rm", "r1")

	routerIsolation(t, hs, a, b)

	var rs []struct {
		Name     string   `json:"name"`
		Networks []string `json:"networks"`
	}
	if err := json.Unmarshal([]byte(e.must("router", "ls", "-o", "json")), &rs); err != nil || len(rs) != 2 || rs[0].Name != "r1" || strings.Join(rs[0].Networks, ",") != "db,web" {
		t.Fatalf("router ls -o json: %+v %v", rs, err)
	}

	hs[0].must("del-port", "web", "eth1", a)
	hs[1].must("del-port", "db", "eth1", b)
	e.fails("network web is on router r1: take it off first", "network", "rm", "web")
	e.must("router", "detach", "r1", "web")
	e.fails("network web is not on router r1", "router", "detach", "r1", "web")
	e.must("router", "detach", "r1", "db")
	for _, r := range []string{"r1", "r2"} {
		e.must("router", "rm", r)
	}
	e.fails("no router r1", "router", "rm", "r1")
	for _, n := range []string{"web", "db", "out", "alt"} {
		e.must("network", "rm", n)
	}
	if out := run(t, "ovn-nbctl", "--db="+c.NB(), "show"); strings.TrimSpace(out) != "" {
		t.Fatalf("left in the northbound database:\n%s", out)
	}
	if out := run(t, "ovn-nbctl", "--db="+c.NB(), "--columns=match", "list", "acl"); strings.TrimSpace(out) != "" {
		t.Fatalf("ACLs left:\n%s", out)
	}
}

// routerShown: show names the router of each network, and lists a's
// network's one container, not the router's port.
func routerShown(t *testing.T, e *env, a string) {
	t.Helper()
	if r := run(t, "ip", "-n", a, "route", "show", "default"); !strings.Contains(r, "via 10.71.1.1") {
		t.Fatalf("a container on a routed network has no default route to its router: %q", r)
	}
	var views []struct {
		Name       string            `json:"name"`
		Router     string            `json:"router"`
		Containers []json.RawMessage `json:"containers"`
	}
	if err := json.Unmarshal([]byte(e.must("show", "web", "-o", "json")), &views); err != nil || len(views) != 1 || views[0].Router != "r1" || len(views[0].Containers) != 1 {
		t.Fatalf("show web -o json: %+v %v (want router r1, its one container and not the router's port)", views, err)
	}
	if out := e.must("show", "db"); !strings.Contains(out, "routed by r1") {
		t.Fatalf("show db: %s", out)
	}
}

// routerIsolation: the router answers on its ports; a (on web) reaches b
// (on db) only while a link lets it, b never reaches a; trace says so.
func routerIsolation(t *testing.T, hs []*env, a, b string) {
	t.Helper()
	e := hs[0]
	// The router answers on both its ports; nothing crosses it unlinked.
	// (ovn-controller programs the router's datapath on a's chassis once
	// a's port is bound there: it follows the attach, which waits for the
	// port alone.)
	eventually(t, 30*time.Second, "the router answering a ping", func() bool { return pings(a, "10.71.1.1") })
	ping(t, a, "10.71.1.1")
	ping(t, a, "10.71.2.1")
	noPing(t, a, "10.71.2.2")
	noPing(t, b, "10.71.1.2")
	if v := e.verdict("web", "--from", a, "--to", b); !strings.Contains(v, "from another network through the router, no link lets this new connection in") {
		t.Fatalf("trace across the router, unlinked: %s", v)
	}
	// A link from a (on web) to b (on db): a reaches b, replies and TCP
	// come back; b still cannot open anything to a.
	hs[1].must("link", "db", a, b)
	ping(t, a, "10.71.2.2")
	tcpTransfer(t, nsPath(a), nsPath(b), "10.71.2.2", 1<<20)
	for _, to := range []string{b, "10.71.2.2"} {
		if v := e.verdict("web", "--from", a, "--to", to, "--proto", "tcp", "--dport", "5201"); v != "allowed" {
			t.Fatalf("trace across the router to %s, linked: %s", to, v)
		}
	}
	e.fails("nor on a network routed with it", "trace", "web", "--from", a, "--to", "nosuch")
	noPing(t, b, "10.71.1.2")
	e.fails("nor on a network routed with it", "link", "web", "nosuch", a)
	hs[1].must("unlink", "db", a, b)
	noPing(t, a, "10.71.2.2")
}

// routerAddress: attach --address gives the router another address than
// the network's gateway, which becomes the gateway: containers attached
// after take it as their default route, and the router answers there.
func routerAddress(t *testing.T, hs []*env, e *env) {
	t.Helper()
	e.must("network", "create", "alt", "--subnet", "10.71.4.0/24", "--nat=false")
	e.fails("not a host address", "router", "attach", "r2", "alt", "--address", "10.71.5.1")
	e.fails("not a host address", "router", "attach", "r2", "alt", "--address", "10.71.4.255")
	e.fails("health checks come from", "router", "attach", "r2", "alt", "--address", "10.71.4.254")
	e.must("router", "attach", "r2", "alt", "--address", "10.71.4.129")
	if out := e.must("router", "attach", "r2", "alt", "--address", "10.71.4.129"); !strings.Contains(out, "(already)") {
		t.Fatalf("attach again: %s", out)
	}
	e.fails("detach it first", "router", "attach", "r2", "alt", "--address", "10.71.4.130")
	c := hs[1].container()
	hs[1].must("add-port", "alt", "eth1", c, "--ip")
	if got := run(t, "ip", "-n", c, "route"); !strings.Contains(got, "default via 10.71.4.129") {
		t.Fatalf("routes on a network attached with --address: %s", got)
	}
	eventually(t, 20*time.Second, "the router answering at its --address", func() bool { return pings(c, "10.71.4.129") })
	hs[1].must("del-port", "alt", "eth1", c)
	e.must("router", "detach", "r2", "alt")
}
