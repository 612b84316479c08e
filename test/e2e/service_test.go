package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// serveName serves container c's name to every connection on addr,
// until the returned listener is closed.
func serveName(t *testing.T, c, addr string) net.Listener {
	t.Helper()
	ln, err := sandbox.ServeReply(c, addr, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialNames connects n times from container c to addr, one after the
// other, and returns what each connection read ("ERR ..." for a failure).
func dialNames(t *testing.T, c, addr string, n int) []string {
	t.Helper()
	var got []string
	inNetns(t, nsPath(c), func() error {
		for range n {
			k, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				got = append(got, "ERR "+err.Error())
				continue
			}
			k.SetDeadline(time.Now().Add(2 * time.Second))
			b, _ := io.ReadAll(k)
			k.Close()
			got = append(got, string(b))
		}
		return nil
	})
	return got
}

// TestOVNService: a service's address on a routed network spreads
// connections over three backends on three chassis; a backend that stops
// serving leaves the rotation by its health check, and none is lost after;
// backends come and go by name; rm leaves nothing.
func TestOVNService(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 3)
	for i := range hs {
		joinOVN(t, c, hs, i)
	}
	e := hs[0]
	e.must("network", "create", "front", "--subnet", "10.72.0.0/24", "--nat=false")
	e.must("network", "create", "plain", "--subnet", "10.72.1.0/24", "--nat=false")
	e.must("router", "create", "r1")
	e.must("router", "attach", "r1", "front")
	var ws []string
	for i := range hs {
		w := hs[i].container()
		hs[i].must("add-port", "front", "eth1", w, "--ip") // 10.72.0.2, .3, .4
		ws = append(ws, w)
	}
	cl := hs[0].container()
	hs[0].must("add-port", "front", "eth1", cl, "--ip") // 10.72.0.5
	// A client on another network of the router.
	e.must("network", "create", "back", "--subnet", "10.72.2.0/24", "--nat=false")
	e.must("router", "attach", "r1", "back")
	other := hs[1].container()
	hs[1].must("add-port", "back", "eth1", other, "--ip")
	var lns []net.Listener
	for i, w := range ws {
		lns = append(lns, serveName(t, w, fmt.Sprintf("10.72.0.%d:8080", i+2)))
	}
	serviceRefusals(e, ws[0])
	args := []string{"service", "create", "web", "--network", "front", "--vip", "172.30.0.10:80"}
	for _, w := range ws {
		args = append(args, "--backend", w+":8080")
	}
	e.must(args...)
	if out := e.must(args...); !strings.Contains(out, "exists, unchanged") {
		t.Fatalf("create again: %s", out)
	}

	// Spread over all three, on three chassis, for clients on either
	// network of the router (through their own switch).
	for _, client := range []string{cl, other} {
		eventually(t, 30*time.Second, "every backend serving through the address", func() bool {
			got := dialNames(t, client, "172.30.0.10:80", 30)
			return !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "ERR") }) &&
				slices.Contains(got, ws[0]) && slices.Contains(got, ws[1]) && slices.Contains(got, ws[2])
		})
	}
	serviceTraced(t, e, hs[1], cl, other)
	// A backend stops serving: its health check finds it offline (proven in
	// the southbound database first), then it leaves the rotation.
	lns[1].Close()
	eventually(t, 30*time.Second, "the health check finding the stopped backend offline", func() bool {
		out := run(t, "ovn-sbctl", "--db="+c.SB(), "--bare", "--columns=status", "find", "service_monitor", `ip="10.72.0.3"`, "port=8080")
		return strings.TrimSpace(out) == "offline"
	})
	eventually(t, 30*time.Second, "the stopped backend out of the rotation", func() bool {
		got := dialNames(t, cl, "172.30.0.10:80", 30)
		return !slices.ContainsFunc(got, func(s string) bool { return s != ws[0] && s != ws[2] })
	})
	if got := dialNames(t, cl, "172.30.0.10:80", 30); slices.ContainsFunc(got, func(s string) bool { return s != ws[0] && s != ws[2] }) {
		t.Fatalf("after the health check took %s out, connections: %q", ws[1], got)
	}
	serviceBackends(t, e, cl, ws)
	if got := run(t, "ovn-nbctl", "--db="+c.NB(), "ls-lb-list", "back"); !strings.Contains(got, "ovsnet-svc-web") {
		t.Fatalf("the service is not on the router's other switch: %q", got)
	}
	hs[1].must("del-port", "back", "eth1", other)
	e.must("router", "detach", "r1", "back")
	if got := run(t, "ovn-nbctl", "--db="+c.NB(), "ls-lb-list", "back"); strings.TrimSpace(got) != "" {
		t.Fatalf("the service stayed on a switch taken off its router: %q", got)
	}
	e.must("service", "rm", "web")
	e.fails("no service web", "service", "rm", "web")
	if out := run(t, "ovn-nbctl", "--db="+c.NB(), "--columns=name", "list", "load_balancer"); strings.TrimSpace(out) != "" {
		t.Fatalf("load balancers left: %s", out)
	}
	if out := run(t, "ovn-nbctl", "--db="+c.NB(), "list", "load_balancer_health_check"); strings.TrimSpace(out) != "" {
		t.Fatalf("health checks left: %s", out)
	}
}

// serviceRefusals: a service on a network on no router, on an address in
// the network's subnet, or with a backend not attached is refused.
func serviceRefusals(e *env, w string) {
	e.t.Helper()
	e.fails("is on no router", "service", "create", "x", "--network", "plain", "--vip", "172.30.0.9:80", "--backend", w+":8080")
	e.fails("is in network front's subnet", "service", "create", "x", "--network", "front", "--vip", "10.72.0.200:80", "--backend", w+":8080")
	e.fails("not attached to network front", "service", "create", "x", "--network", "front", "--vip", "172.30.0.9:80", "--backend", "nosuch:8080")
}

// serviceTraced: trace follows a connection to the service to a backend,
// from either network (cl on front from e, other on back from o), on the
// service's port; on another port nothing takes it.
func serviceTraced(t *testing.T, e, o *env, cl, other string) {
	t.Helper()
	if v := e.verdict("front", "--from", cl, "--to", "web"); v != "allowed" {
		t.Fatalf("trace to the service: %s", v)
	}
	if v := o.verdict("back", "--from", other, "--to", "web"); v != "allowed" {
		t.Fatalf("trace to the service from the router's other network: %s", v)
	}
	if v := e.verdict("front", "--from", cl, "--to", "web", "--proto", "tcp", "--dport", "81"); !strings.HasPrefix(v, "dropped") {
		t.Fatalf("trace to the service's address on another port: %s", v)
	}
}

// serviceBackends: del-backend and add-backend change where connections
// go; ls says what the service spreads over.
func serviceBackends(t *testing.T, e *env, cl string, ws []string) {
	t.Helper()
	e.must("service", "del-backend", "web", ws[0]+":8080")
	e.fails("has no backend", "service", "del-backend", "web", ws[0]+":8080")
	eventually(t, 20*time.Second, "connections to the one backend left serving", func() bool {
		got := dialNames(t, cl, "172.30.0.10:80", 30)
		return !slices.ContainsFunc(got, func(s string) bool { return s != ws[2] })
	})
	e.must("service", "add-backend", "web", ws[0]+":8080")
	e.fails("has backend", "service", "add-backend", "web", ws[0]+":8080")
	var ls []struct {
		Name     string   `json:"name"`
		Backends []string `json:"backends"`
		Serving  []string `json:"serving"`
	}
	if err := json.Unmarshal([]byte(e.must("service", "ls", "-o", "json")), &ls); err != nil || len(ls) != 1 || len(ls[0].Backends) != 3 || len(ls[0].Serving) != 3 {
		t.Fatalf("service ls -o json: %+v %v", ls, err)
	}
	e.fails("has services (web)", "router", "detach", "r1", "front")
}
