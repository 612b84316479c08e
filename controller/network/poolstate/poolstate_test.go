package poolstate

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
)

// A bridge keeps a pool while it holds containers or within Idle of its
// last attach here; the first attach on an idle bridge wakes the pool to
// fill it, later ones do not.
func TestWanted(t *testing.T) {
	p := New(8, nil)
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if p.Wanted("br0", false, t0) {
		t.Error("a bridge never attached to, without containers, wants a pool")
	}
	if !p.Wanted("br0", true, t0) {
		t.Error("a bridge with containers wants none")
	}
	p.Attached("br0", t0)
	select {
	case <-p.Woken():
	default:
		t.Error("the first attach did not wake the pool")
	}
	p.Attached("br0", t0.Add(time.Minute))
	select {
	case <-p.Woken():
		t.Error("an attach on a bridge in use woke the pool")
	default:
	}
	if !p.Wanted("br0", false, t0.Add(Idle)) {
		t.Error("within Idle of the last attach the pool goes")
	}
	if p.Wanted("br0", false, t0.Add(time.Minute+Idle)) {
		t.Error("an idle bridge keeps its pool")
	}
}

// The types kept: the bridge's default, veths on a Docker network's
// bridge, or those asked for that the datapath takes.
func TestTypesFor(t *testing.T) {
	if got := New(8, nil).TypesFor("netdev", false); len(got) != 1 || got[0] != "internal" {
		t.Errorf("userspace default: %v", got)
	}
	if got := New(8, nil).TypesFor("netdev", true); len(got) != 1 || got[0] != "veth" {
		t.Errorf("a Docker network's bridge: %v", got)
	}
	if got := New(8, []string{"veth", "internal"}).TypesFor("system", false); len(got) != 1 || got[0] != "veth" {
		t.Errorf("the kernel datapath refuses internal: %v", got)
	}
}

// A port fits the pool when it is what the pool would make on its bridge:
// anything of its own (a MAC, an MTU, a type not kept, a link) does not.
func TestFits(t *testing.T) {
	p := New(8, nil)
	sub := ipam.Subnet{Prefix: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.1")}
	bi := intent.Bridge{Name: "br0", Subnets: []ipam.Subnet{sub}, FloodPPS: 100}
	addrs := []netip.Prefix{netip.MustParsePrefix("10.1.0.5/24")}
	like := intent.Port{Container: "c1", Type: "internal", Addrs: addrs, MAC: ipam.MACFor(addrs), FloodPPS: 100,
		Gateways: ipam.GatewaysFor(addrs, bi.Subnets, netip.Addr{})}
	if !p.Fits(bi, datapath.Netdev, like) {
		t.Fatalf("a port like the pool's does not fit: %+v", like)
	}
	for what, change := range map[string]func(*intent.Port, *intent.Bridge){
		"its own MAC":   func(q *intent.Port, _ *intent.Bridge) { q.MAC = net.HardwareAddr{2, 0, 0, 0, 0, 9} },
		"its own MTU":   func(q *intent.Port, _ *intent.Bridge) { q.MTU = 1400 },
		"a veth":        func(q *intent.Port, _ *intent.Bridge) { q.Type = "veth" },
		"no address":    func(q *intent.Port, _ *intent.Bridge) { q.Addrs = nil },
		"no gateway":    func(q *intent.Port, _ *intent.Bridge) { q.Gateways = nil },
		"a link":        func(_ *intent.Port, b *intent.Bridge) { b.Links = []intent.Link{{Src: "c2", Dst: "c1"}} },
		"another bound": func(q *intent.Port, _ *intent.Bridge) { q.FloodPPS = 0 },
	} {
		q, b := like, bi
		change(&q, &b)
		if p.Fits(b, datapath.Netdev, q) {
			t.Errorf("a port with %s fits the pool", what)
		}
	}
	if New(0, nil).Fits(bi, datapath.Netdev, like) {
		t.Error("a port fits a pool of size 0")
	}
}
