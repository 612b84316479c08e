package pool

import (
	"context"
	"net/netip"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// TestRead: a bridge's pool is its pool's rows (ready ones by type, a
// half-made fill among the rest), capped at a quarter of its smallest
// subnet; a bridge without a subnet or pool's ports, and one being
// deleted, have no pool.
func TestRead(t *testing.T) {
	ctx := context.Background()
	h, err := network.Open(ctx, ovsdbtest.Serve(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	subs, err := ipam.ParseSubnets([]string{"10.9.0.0/24", "fd00:9::/64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	withSubnet := intent.NewBridge()
	for k, v := range (intent.Settings{Subnets: subs}).Encode() {
		withSubnet[k] = v
	}
	deleting := intent.NewBridge()
	for k, v := range withSubnet {
		deleting[k] = v
	}
	deleting[intent.KeyState] = intent.StateDeleting
	port := func(name, state, typ string, i int) ovsdb.PortSpec {
		p := netip.MustParsePrefix("10.9.0." + string(rune('2'+i)) + "/24")
		pi := intent.Port{Pooled: true, Bridge: "br0", State: state, Type: typ, MAC: ipam.MACFor([]netip.Prefix{p}), Addrs: []netip.Prefix{p}}
		return ovsdb.PortSpec{Name: name, OfportRequest: 10 + i, ExternalIDs: pi.Encode()}
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "br0", ExternalIDs: withSubnet})
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "bare", ExternalIDs: intent.NewBridge()})
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "gone", ExternalIDs: deleting})
		tx.AddPorts("br0", port("onp1", intent.StateReady, "veth", 0), port("onp2", intent.StateReady, "internal", 1),
			port("onp3", intent.StateAttaching, "veth", 2))
	}); err != nil {
		t.Fatal(err)
	}
	sts, err := Read(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 1 || sts[0].Bridge != "br0" {
		t.Fatalf("pools %+v, want br0's only", sts)
	}
	st := sts[0]
	if st.Cap != 63 || len(st.Ifs) != 3 || len(st.Ready["veth"]) != 1 || len(st.Ready["internal"]) != 1 {
		t.Fatalf("br0's pool: cap %d, %d rows, ready %v; want cap 63 (a quarter of the /24), 3 rows, one ready of each type", st.Cap, len(st.Ifs), st.Ready)
	}
	if st.Ready["veth"][0].Name != "onp1" {
		t.Fatalf("ready veth %s, want onp1 (onp3 is a fill that died)", st.Ready["veth"][0].Name)
	}
}
