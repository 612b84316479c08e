package alloc

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// seeded is an in-memory OVSDB holding bridge "br0" with subnet and the
// bridge keys in set, and a container interface holding each of held (an
// address, or "mac:ADDR" for the MAC derived from ADDR alone, as a port
// whose address no longer decodes holds it), asking for OpenFlow ports
// 10, 11...
func seeded(t *testing.T, subnet string, set map[string]string, held ...string) (*ovsdb.Client, intent.Bridge) {
	t.Helper()
	db, err := ovsdb.Connect(context.Background(), ovsdbtest.Serve(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, intenttest.Bridge(t, db, subnet, set, held...)
}

func allocated(t *testing.T, db *ovsdb.Client, br intent.Bridge, requested ...string) (*Claim, error) {
	t.Helper()
	var rq []netip.Prefix
	for _, r := range requested {
		rq = append(rq, netip.MustParsePrefix(r))
	}
	subs := make([]ipam.Subnet, len(br.Subnets))
	copy(subs, br.Subnets)
	return Probe(context.Background(), db, br, subs, rq, len(rq) == 0)
}

// The lowest free address above the hint, skipping those held by address
// or by MAC; the next OpenFlow port number nothing holds or asks for.
func TestAllocateProbes(t *testing.T) {
	db, br := seeded(t, "10.9.0.0/24", map[string]string{intent.KeyNextOfport: "10"}, "10.9.0.2", "mac:10.9.0.3")
	c, err := allocated(t, db, br)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Addrs) != 1 || c.Addrs[0] != netip.MustParsePrefix("10.9.0.4/24") {
		t.Errorf("allocated %v, want 10.9.0.4/24 (.2 held by its address, .3 by its MAC)", c.Addrs)
	}
	if c.Ofport != 12 { // 10 and 11 are asked for by the two ports
		t.Errorf("ofport %d, want 12", c.Ofport)
	}
	if len(c.Hints) != 1 || c.Hints[0] != netip.MustParseAddr("10.9.0.5") {
		t.Errorf("hints %v, want 10.9.0.5", c.Hints)
	}
}

// An address given explicitly is checked, not taken from another.
func TestAllocateExplicit(t *testing.T) {
	db, br := seeded(t, "10.9.0.0/24", nil, "10.9.0.2")
	if _, err := allocated(t, db, br, "10.9.0.2/24"); err == nil || !strings.Contains(err.Error(), "10.9.0.2 is already taken by c10.9.0.2/eth1") {
		t.Errorf("a held address given: %v", err)
	}
	c, err := allocated(t, db, br, "10.9.0.7/24")
	if err != nil || len(c.Addrs) != 1 || c.Addrs[0] != netip.MustParsePrefix("10.9.0.7/24") {
		t.Errorf("a free address given: %v, %v", c, err)
	}
	if _, err := allocated(t, db, br, "10.8.0.7/24"); err == nil {
		t.Error("an address outside the subnet was taken")
	}
}

// A hint past every free address starts again from the subnet's start;
// a full subnet is ErrExhausted.
func TestAllocateRestartAndExhaustion(t *testing.T) {
	db, br := seeded(t, "10.9.2.0/29", map[string]string{intent.KeyHintIPv4: "10.9.2.6"}, "10.9.2.6")
	c, err := allocated(t, db, br)
	if err != nil || c.Addrs[0] != netip.MustParsePrefix("10.9.2.2/29") {
		t.Errorf("past the hint: %v, %v; want 10.9.2.2/29", c, err)
	}
	db, br = seeded(t, "10.9.1.0/30", nil, "10.9.1.2")
	if _, err := allocated(t, db, br); !errors.Is(err, ipam.ErrExhausted) {
		t.Errorf("a full /30: %v, want ErrExhausted", err)
	}
}

func iface(ofport, req int) vswitchd.Interface {
	i := vswitchd.Interface{}
	if ofport != 0 {
		i.Ofport = &ofport
	}
	if req != 0 {
		i.OfportRequest = &req
	}
	return i
}

func TestNextOfport(t *testing.T) {
	if n := NextOfport(nil); n != 1 {
		t.Fatalf("empty bridge: %d", n)
	}
	// LOCAL (65534) does not count; requested numbers do.
	if n := NextOfport([]vswitchd.Interface{iface(65534, 0), iface(3, 3), iface(0, 7)}); n != 8 {
		t.Fatalf("got %d, want 8", n)
	}
	// At the top of the range, the lowest free number is reused.
	if n := NextOfport([]vswitchd.Interface{iface(1, 1), iface(0xfeff, 0)}); n != 2 {
		t.Fatalf("wrap: got %d, want 2", n)
	}
}

func TestLowerHints(t *testing.T) {
	ext := map[string]string{intent.KeyHintIPv4: "10.0.0.9", intent.KeyHintIPv6: "fd00::3"}
	set := LowerHints(intent.DecodeBridge("br", ext), []netip.Addr{netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.5"),
		netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("fd00::2")})
	if set[intent.KeyHintIPv4] != "10.0.0.5" || set[intent.KeyHintIPv6] != "fd00::2" || len(set) != 2 {
		t.Fatalf("%v", set)
	}
	// Freeing above the hint changes nothing; no hint stays no hint.
	if set := LowerHints(intent.DecodeBridge("br", ext), []netip.Addr{netip.MustParseAddr("10.0.0.20")}); len(set) != 0 {
		t.Fatalf("%v", set)
	}
	if set := LowerHints(intent.DecodeBridge("br", nil), []netip.Addr{netip.MustParseAddr("10.0.0.1")}); len(set) != 0 {
		t.Fatalf("%v", set)
	}
}

func TestUsedAddrs(t *testing.T) {
	ifs := []vswitchd.Interface{{ExternalIDs: map[string]string{intent.KeyIPv4: "10.0.0.5/24", intent.KeyIPv6: "fd00::5/64",
		intent.KeyContainerID: "web", intent.KeyContainerIface: "eth1"}}}
	u := UsedAddrs(ifs)
	if u[netip.MustParseAddr("10.0.0.5")] != "web/eth1" || u[netip.MustParseAddr("fd00::5")] != "web/eth1" || len(u) != 2 {
		t.Fatalf("%v", u)
	}
}

// A warm pool's port at an address is the lowest free one only when
// everything below it is in use: below the hint without a probe, from the
// hint up by probes (by address or MAC); then the hint moves past it.
func TestNoneFreeBelow(t *testing.T) {
	ctx := context.Background()
	pool := []netip.Prefix{netip.MustParsePrefix("10.9.0.5/24")}
	db, br := seeded(t, "10.9.0.0/24", map[string]string{intent.KeyHintIPv4: "10.9.0.3"}, "10.9.0.2", "10.9.0.3", "mac:10.9.0.4")
	set, ok, err := NoneFreeBelow(ctx, db, br, br.Subnets, pool)
	if err != nil || !ok || set[intent.KeyHintIPv4] != "10.9.0.6" {
		t.Errorf(".3 and .4 held above the hint .3: %v %v %v; want ok, hint .6", set, ok, err)
	}
	db, br = seeded(t, "10.9.0.0/24", map[string]string{intent.KeyHintIPv4: "10.9.0.3"}, "10.9.0.2", "10.9.0.4")
	if _, ok, err := NoneFreeBelow(ctx, db, br, br.Subnets, pool); err != nil || ok {
		t.Errorf(".3 is free below the pool's .5: %v %v", ok, err)
	}
	db, br = seeded(t, "10.9.0.0/24", map[string]string{intent.KeyHintIPv4: "10.9.0.9"}, "10.9.0.2")
	if set, ok, err := NoneFreeBelow(ctx, db, br, br.Subnets, pool); err != nil || !ok || len(set) != 0 {
		t.Errorf("below the hint: %v %v %v; want ok, hint kept", set, ok, err)
	}
	far := []netip.Prefix{netip.MustParsePrefix("10.9.0.200/24")}
	if _, ok, err := NoneFreeBelow(ctx, db, br, br.Subnets, far); err != nil || ok {
		t.Errorf("a gap too wide to probe: %v %v", ok, err)
	}
}
