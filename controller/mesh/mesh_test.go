package mesh

import (
	"context"
	"strings"
	"testing"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

func TestUnderlayBridgeNames(t *testing.T) {
	if n := UnderlayBridge("eth0"); n != "ovs-eth0" {
		t.Fatalf("short device: %q", n)
	}
	a, b := UnderlayBridge("enp0s31f6abcd1"), UnderlayBridge("enp0s31f6abcd2")
	if a == b || len(a) > 15 || len(b) > 15 {
		t.Fatalf("long devices with a common prefix: %q, %q", a, b)
	}
}

// A bridge spanning hosts takes the smallest MTU its tunnels' underlays
// leave; an MTU the user gave stays.
func TestAutoMTU(t *testing.T) {
	ts := []intent.Tunnel{{Type: VXLAN, UnderlayMTU: 1500}, {Type: GRE, UnderlayMTU: 1400}, {Type: VXLAN}}
	auto := intent.DecodeBridge("br0", intent.MTUSetting(1450))
	if got := AutoMTU(auto, ts); got[intent.KeyMTU] != "1358" || got[intent.KeyMTUAuto] != "true" {
		t.Errorf("auto MTU over a 1400 GRE underlay: %v", got)
	}
	if got := AutoMTU(intent.DecodeBridge("br0", map[string]string{intent.KeyMTU: "9000"}), ts); got != nil {
		t.Errorf("the user's MTU was replaced: %v", got)
	}
	if got := AutoMTU(auto, nil); got != nil {
		t.Errorf("no tunnel, no underlay: %v", got)
	}
}

// Tunnel options are checked before anything is read: the remote, the
// type, the device kind and the key's width.
func TestOptionsCheck(t *testing.T) {
	key := func(k uint32) *uint32 { return &k }
	for _, c := range []struct {
		o    Options
		want string // "" : accepted
	}{
		{Options{Remote: "192.0.2.2"}, ""},
		{Options{Remote: "192.0.2.2", Type: GRE, Key: key(1 << 30)}, ""},
		{Options{Remote: "2001:db8::1"}, "bad remote"},
		{Options{Remote: "224.0.0.1"}, "bad remote"},
		{Options{Remote: "192.0.2.2", Type: "ipip"}, "unknown tunnel type"},
		{Options{Remote: "192.0.2.2", Device: "tap"}, "unknown --device"},
		{Options{Remote: "192.0.2.2", Key: key(1 << 24)}, "24 bits"},
	} {
		o := c.o
		_, _, err := o.Check()
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
		if err == nil && o.Type == "" {
			t.Errorf("%+v: no default type", c.o)
		}
	}
}

// Place gives each OVS tunnel its own port number from OfportBase up, the
// first free one; kernel VXLAN tunnels of a bridge share one port. Against
// finds the same tunnel again, and refuses another to the same remote or a
// VXLAN tunnel of the other kind.
func TestPlaceAndAgainst(t *testing.T) {
	t1 := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.2", Type: VXLAN, Port: PortName("br0", "192.0.2.2", VXLAN, 0)}
	if shared, err := Place(&t1, nil, false); err != nil || shared || t1.Ofport != OfportBase {
		t.Fatalf("first: %+v, %v, %v", t1, shared, err)
	}
	t2 := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.3", Type: VXLAN, Port: PortName("br0", "192.0.2.3", VXLAN, 0)}
	if _, err := Place(&t2, []intent.Tunnel{t1}, false); err != nil || t2.Ofport != OfportBase+1 {
		t.Fatalf("second: %+v, %v", t2, err)
	}
	k1 := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.2", Type: VXLAN, Key: 7}
	if shared, err := Place(&k1, nil, true); err != nil || shared || !k1.Kernel || !strings.HasPrefix(k1.Port, "tk") {
		t.Fatalf("kernel: %+v, %v", k1, err)
	}
	k2 := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.3", Type: VXLAN, Key: 7}
	if shared, err := Place(&k2, []intent.Tunnel{k1}, true); err != nil || !shared || k2.Port != k1.Port || k2.Ofport != k1.Ofport {
		t.Fatalf("second kernel tunnel shares the port: %+v, %v, %v", k2, shared, err)
	}
	if !SharesPort(k1, []intent.Tunnel{k2}) || SharesPort(t1, []intent.Tunnel{t2}) {
		t.Error("SharesPort")
	}
	o := Options{Bridge: "br0", Remote: "192.0.2.2", Type: VXLAN}
	if same, err := o.Against([]intent.Tunnel{t1}, t1, false); err != nil || same == nil || same.Remote != t1.Remote {
		t.Fatalf("the same tunnel again: %v, %v", same, err)
	}
	other := t1
	other.Key = 9
	if _, err := o.Against([]intent.Tunnel{t1}, other, false); err == nil || !strings.Contains(err.Error(), "already has a vxlan tunnel") {
		t.Fatalf("another to the same remote: %v", err)
	}
	if _, err := o.Against([]intent.Tunnel{k1}, t2, false); err == nil || !strings.Contains(err.Error(), "all of one kind") {
		t.Fatalf("VXLAN of the other kind: %v", err)
	}
}

// Kernel picks the kernel device for VXLAN on the userspace datapath, and
// for GRE there where the kernel has ip_gre, unless --device ovs; never
// for Geneve or on the kernel datapath, where --device kernel is refused.
func TestKernelDevice(t *testing.T) {
	for _, c := range []struct {
		typ, device, dp string
		gre             bool
		want            bool
		err             string
	}{
		{VXLAN, "", "netdev", false, true, ""},
		{VXLAN, "ovs", "netdev", true, false, ""},
		{GRE, "", "netdev", true, true, ""},
		{GRE, "", "netdev", false, false, ""},
		{GRE, "kernel", "netdev", false, false, "no ip_gre"},
		{GRE, "ovs", "netdev", true, false, ""},
		{Geneve, "", "netdev", true, false, ""},
		{Geneve, "kernel", "netdev", true, false, "VXLAN's and GRE's"},
		{VXLAN, "", "system", true, false, ""},
		{GRE, "kernel", "system", true, false, "kernel vports already"},
	} {
		got, err := Options{Bridge: "br0", Type: c.typ, Device: c.device}.Kernel(c.dp, c.gre)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %v, %v", c, got, err)
		}
	}
	g := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.2", Type: GRE, Port: PortName("br0", "192.0.2.2", GRE, 0)}
	g2 := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.3", Type: GRE, Port: PortName("br0", "192.0.2.3", GRE, 0)}
	if shared, err := Place(&g, nil, true); err != nil || shared || !g.Kernel || g.Ofport != OfportBase {
		t.Fatalf("kernel GRE: %+v, %v, %v", g, shared, err)
	}
	if shared, err := Place(&g2, []intent.Tunnel{g}, true); err != nil || shared || g2.Port == g.Port || g2.Ofport != OfportBase+1 {
		t.Fatalf("a second kernel GRE tunnel has its own port: %+v, %v, %v", g2, shared, err)
	}
	if Device(g) == Device(g2) || !strings.HasPrefix(Device(g), "gr") || PortSpec(g).Type != "internal" || kernelMTU(intent.Tunnel{Type: GRE, UnderlayMTU: 1500}) != 1458 {
		t.Errorf("kernel GRE devices: %s %s %s", Device(g), Device(g2), PortSpec(g).Type)
	}
}

// CheckUnique refuses a tunnel another bridge has (OVS tells tunnels apart
// by remote, type and key) and a kernel VXLAN key another bridge uses;
// DelRows takes a tunnel's key and, unless shared, its port.
func TestUniqueAndDelRows(t *testing.T) {
	ctx := context.Background()
	db, err := ovsdb.Connect(ctx, ovsdbtest.Serve(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other := intent.Tunnel{Bridge: "br1", Remote: "192.0.2.2", Type: VXLAN, Key: 5, Local: "192.0.2.1", Port: PortName("br1", "192.0.2.2", VXLAN, 5), Ofport: OfportBase}
	ext := intent.NewBridge()
	for k, v := range other.Encode() {
		ext[k] = v
	}
	if _, err := db.Do(ctx, func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "br1", ExternalIDs: ext})
		tx.AddPorts("br1", PortSpec(other))
	}); err != nil {
		t.Fatal(err)
	}
	same := other
	same.Bridge = "br0"
	if err := CheckUnique(ctx, db, same); err == nil || !strings.Contains(err.Error(), "bridge br1 already has") {
		t.Fatalf("the same tunnel on another bridge: %v", err)
	}
	same.Key = 6
	if err := CheckUnique(ctx, db, same); err != nil {
		t.Fatalf("another key: %v", err)
	}
	if err := DelRows(ctx, db, "br1", other, nil); err != nil {
		t.Fatal(err)
	}
	bs, err := BridgeSettings(ctx, db)
	if err != nil || len(bs) != 1 || len(intent.DecodeBridge("br1", bs[0].ExternalIDs).Tunnels) != 0 {
		t.Fatalf("after DelRows: %+v, %v", bs, err)
	}
	if ps, err := ovsdb.Select[vswitchd.Port](ctx, db, []ovsdbops.Condition{ovsdb.NameIs(other.Port)}, "_uuid"); err != nil || len(ps) != 0 {
		t.Fatalf("the tunnel's port left: %v, %v", ps, err)
	}
}
