package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// gatewayHolder is the chassis holding router's gateway now, by the
// southbound database's binding of its chassis-resident port ("": none).
func gatewayHolder(t *testing.T, c *sandbox.Central, router string) string {
	t.Helper()
	u := strings.TrimSpace(run(t, "ovn-sbctl", "--db="+c.SB(), "--bare", "--columns=chassis", "find", "port_binding", "logical_port=cr-ovsnet-gateway-"+router))
	if u == "" {
		return ""
	}
	return strings.TrimSpace(run(t, "ovn-sbctl", "--db="+c.SB(), "--bare", "--columns=name", "list", "chassis", u))
}

// systemID is host e's chassis name.
func (e *env) systemID() string {
	e.t.Helper()
	var st struct {
		SystemID string `json:"system_id"`
	}
	if err := json.Unmarshal([]byte(e.must("ovn", "status", "-o", "json")), &st); err != nil || st.SystemID == "" {
		e.t.Fatalf("ovn status: %v", err)
	}
	return st.SystemID
}

// TestOVNGatewayChassis: a router with a gateway on two chassis (each
// with an uplink to the outside segment) takes its networks out as one
// address from any chassis, held by the first; when that host dies (its
// daemons killed, its links down: proven), the second takes the address
// over and connections leave as the same address again; everything goes
// with rm.
func TestOVNGatewayChassis(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 3)
	out := uniq("ovt-out")
	if err := sandbox.JoinUplinks(out, hs[0].sb, hs[1].sb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sandbox.DelNetns(out) })
	for i := range hs {
		joinOVN(t, c, hs, i)
	}
	hs[0].must("ovn", "join", "--sb="+c.SB(), "--nb="+c.NB(), "--encap-ip", underlayAddr(0), "--uplink", "up0")
	hs[1].must("ovn", "join", "--sb="+c.SB(), "--nb="+c.NB(), "--encap-ip", underlayAddr(1), "--uplink", "up0")
	if st := hs[0].must("ovn", "status"); !strings.Contains(st, "uplink up0") {
		t.Fatalf("ovn status without the uplink: %s", st)
	}
	if got := hs[0].must("show", "ovn-uplink"); !strings.Contains(got, "OVN uplink: up0") {
		t.Fatalf("show ovn-uplink: %s", got)
	}
	a, b, e := hs[0].systemID(), hs[1].systemID(), hs[2]
	gw := []string{"router", "create", "edge", "--gateway-chassis", a + "," + b, "--gateway-address", "198.51.100.10/24", "--gateway-next-hop", sandbox.UplinkAddr}
	e.fails("has no uplink", "router", "create", "x", "--gateway-chassis", e.systemID(), "--gateway-address", "198.51.100.11/24", "--gateway-next-hop", sandbox.UplinkAddr)
	e.fails("no chassis nosuch", "router", "create", "x", "--gateway-chassis", "nosuch", "--gateway-address", "198.51.100.11/24", "--gateway-next-hop", sandbox.UplinkAddr)
	e.fails("together", "router", "create", "x", "--gateway-chassis", a)
	e.fails("must be another address", "router", "create", "x", "--gateway-chassis", a, "--gateway-address", "198.51.100.11/24", "--gateway-next-hop", "203.0.113.1")
	// join waited for the uplinks' mappings in the southbound database.
	e.must(gw...)
	if got := e.must(gw...); !strings.Contains(got, "exists, unchanged") {
		t.Fatalf("create again: %s", got)
	}
	e.fails("exists with another gateway", "router", "create", "edge", "--gateway-chassis", b, "--gateway-address", "198.51.100.10/24", "--gateway-next-hop", sandbox.UplinkAddr)
	e.must("network", "create", "app", "--subnet", "10.74.0.0/24", "--nat=false")
	e.must("router", "attach", "edge", "app")
	cs := []string{e.container(), hs[0].container()}
	e.must("add-port", "app", "eth1", cs[0], "--ip")
	hs[0].must("add-port", "app", "eth1", cs[1], "--ip")

	eventually(t, 30*time.Second, "the gateway held by the first chassis", func() bool { return gatewayHolder(t, c, "edge") == a })
	for i, cn := range cs {
		var got string
		eventually(t, 30*time.Second, "a connection out through the gateway", func() bool {
			got, _ = trySeenFrom(t, cn, out, sandbox.UplinkAddr+":7000")
			return got != ""
		})
		if got != "198.51.100.10" {
			t.Fatalf("container %d's connection arrived from %s, want the gateway's 198.51.100.10", i, got)
		}
	}
	gatewayLs(t, e, a, b)
	// A service on the gateway's address is published through it.
	serveName(t, cs[0], "10.74.0.2:80")
	e.must("service", "create", "pub", "--network", "app", "--vip", "198.51.100.10:8080", "--backend", cs[0]+":80")
	published(t, out, cs[0])
	if got := e.must("show", "app"); !strings.Contains(got, "routed by edge") || !strings.Contains(got, "out through its gateway as 198.51.100.10") ||
		!strings.Contains(got, "services pub 198.51.100.10:8080") {
		t.Fatalf("show app: %s", got)
	}
	gatewayFailover(t, c, hs, cs[0], out, b)
	gatewayRemoved(t, c, e, cs[0])
	// Joining again without --uplink gives the device back.
	hs[1].must("ovn", "join", "--sb="+c.SB(), "--nb="+c.NB(), "--encap-ip", underlayAddr(1))
	if out, err := hs[1].sb.Vsctl("list-br"); err != nil || strings.Contains(out, "ovn-uplink") {
		t.Fatalf("the uplink bridge stayed: %s %v", out, err)
	}
	if out, _ := hs[1].sb.Vsctl("get", "open_vswitch", ".", "external_ids"); strings.Contains(out, "ovn-bridge-mappings") || strings.Contains(out, "ovsnet-ovn-uplink") {
		t.Fatalf("the uplink's keys stayed: %s", out)
	}
}

// published: the outside reaches backend (the service pub's one) at the
// gateway's address.
func published(t *testing.T, out, backend string) {
	t.Helper()
	eventually(t, 30*time.Second, "the outside reaching the service through the gateway", func() bool {
		return slices.Equal(dialNames(t, out, "198.51.100.10:8080", 3), []string{backend, backend, backend})
	})
}

// gatewayLs: router ls -o json says the gateway.
func gatewayLs(t *testing.T, e *env, a, b string) {
	t.Helper()
	var rs []struct {
		Name    string `json:"name"`
		Gateway *struct {
			Chassis []string `json:"chassis"`
			Address string   `json:"address"`
			NextHop string   `json:"next_hop"`
		} `json:"gateway"`
	}
	if err := json.Unmarshal([]byte(e.must("router", "ls", "-o", "json")), &rs); err != nil || len(rs) != 1 || rs[0].Gateway == nil ||
		strings.Join(rs[0].Gateway.Chassis, ",") != a+","+b || rs[0].Gateway.Address != "198.51.100.10/24" || rs[0].Gateway.NextHop != sandbox.UplinkAddr {
		t.Fatalf("router ls -o json: %+v %v", rs, err)
	}
}

// gatewayFailover: host 0, holding the gateway, dies; chassis b takes it
// over and cn's connections leave as the same address.
func gatewayFailover(t *testing.T, c *sandbox.Central, hs []*env, cn, out, b string) {
	t.Helper()
	if err := hs[0].sb.Crash("ovn-controller", "ovs-vswitchd"); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", hs[0].sb.Netns, "link", "set", "up0", "down")
	run(t, "ip", "-n", hs[0].sb.Netns, "link", "set", "ul0", "down")
	if _, err := trySeenFrom(t, cn, out, sandbox.UplinkAddr+":7001"); err == nil && gatewayHolder(t, c, "edge") != b {
		t.Fatal("a connection still left through the dead gateway chassis")
	}
	eventually(t, 60*time.Second, "the second chassis holding the gateway", func() bool { return gatewayHolder(t, c, "edge") == b })
	var got string
	eventually(t, 30*time.Second, "a connection out through the second chassis", func() bool {
		got, _ = trySeenFrom(t, cn, out, sandbox.UplinkAddr+":7002")
		return got != ""
	})
	if got != "198.51.100.10" {
		t.Fatalf("after failover the connection arrived from %s, want 198.51.100.10", got)
	}
	published(t, out, cn)
}

// gatewayRemoved: the router goes only without networks, and its gateway
// with it, leaving no row behind.
func gatewayRemoved(t *testing.T, c *sandbox.Central, e *env, cn string) {
	t.Helper()
	e.fails("still routes app", "router", "rm", "edge")
	e.must("service", "rm", "pub")
	e.must("del-port", "app", "eth1", cn)
	// The dead host's container port stays in the northbound database
	// until that host returns; take it off by hand, as its operator would.
	for _, p := range strings.Fields(run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name", "find", "logical_switch_port", "type=\"\"")) {
		run(t, "ovn-nbctl", "--db="+c.NB(), "lsp-del", p)
	}
	e.must("router", "detach", "edge", "app")
	e.must("router", "rm", "edge")
	for _, table := range []string{"nat", "ha_chassis_group", "ha_chassis", "logical_router_static_route", "logical_router_port"} {
		if got := strings.TrimSpace(run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=_uuid", "list", table)); got != "" {
			t.Fatalf("%s rows left: %s", table, got)
		}
	}
	if got := run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name", "list", "logical_switch"); strings.Contains(got, "ovsnet-gateway") {
		t.Fatalf("the gateway's switch is left: %s", got)
	}
}
