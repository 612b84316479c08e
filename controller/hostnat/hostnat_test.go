package hostnat

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/nat/nattest"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// host is a NAT on an in-memory OVSDB holding bridge br0 (10.5.0.0/24, NAT
// mode) with containers a (10.5.0.2) and b (10.5.0.3), and a firewall
// recorder; it returns the two interfaces.
func host(t *testing.T) (*NAT, *nattest.Recorder, []vswitchd.Interface) {
	t.Helper()
	ctx := context.Background()
	db, err := ovsdb.Connect(ctx, ovsdbtest.Serve(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	subs, err := ipam.ParseSubnets([]string{"10.5.0.0/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	on := true
	ext := intent.NewBridge()
	for k, v := range (intent.Settings{Subnets: subs, NAT: &on}).Encode() {
		ext[k] = v
	}
	var specs []ovsdb.PortSpec
	for i, c := range []string{"a", "b"} {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 5, 0, byte(2 + i)}), 24)
		pi := intent.Port{Container: c, Iface: "eth1", Bridge: "br0", State: intent.StateReady, MAC: ipam.MACFor([]netip.Prefix{p}), Addrs: []netip.Prefix{p}}
		specs = append(specs, ovsdb.PortSpec{Name: "on-" + c, ExternalIDs: pi.Encode()})
	}
	if _, err := db.Do(ctx, func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "br0", ExternalIDs: ext})
		tx.AddPorts("br0", specs...)
	}); err != nil {
		t.Fatal(err)
	}
	var ifs []vswitchd.Interface
	for _, c := range []string{"a", "b"} {
		found, err := db.FindInterfaces(ctx, intent.OfContainer(c, "eth1"))
		if err != nil || len(found) != 1 {
			t.Fatalf("interface of %s: %v, %v", c, found, err)
		}
		ifs = append(ifs, found[0])
	}
	fw := &nattest.Recorder{}
	return &NAT{DB: db, Firewall: fw}, fw, ifs
}

func rulesWith(fw *nattest.Recorder, s string) int {
	n := 0
	for _, r := range fw.Rules(false) {
		if strings.Contains(r, s) {
			n++
		}
	}
	return n
}

// TestPublishAndRelease: a publish reserves its host ports on the
// interface and adds one DNAT rule each; another container cannot take a
// reserved host port; publishing a mapping again returns it as it is;
// releasing a mapping takes its rule and reservation
// away and keeps the rest; releasing a departing interface's takes all.
func TestPublishAndRelease(t *testing.T) {
	ctx := context.Background()
	n, fw, ifs := host(t)
	nb := nat.Bridge{Name: "br0", Subnet: netip.MustParsePrefix("10.5.0.0/24"), NAT: true}
	req := func(specs ...string) []nat.Mapping {
		var ms []nat.Mapping
		for _, s := range specs {
			m, err := nat.ParseMapping(s)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms
	}
	ms, err := n.Publish(ctx, nb, ifs[0], req("80", "53/udp"))
	if err != nil || len(ms) != 2 || ms[0].HostPort == 0 || rulesWith(fw, "--to-destination 10.5.0.2:") != 2 {
		t.Fatalf("publish: %+v, %v; rules %q", ms, err, fw.Rules(false))
	}
	if _, err := n.Publish(ctx, nb, ifs[1], req(fmt.Sprintf("%d:80", ms[0].HostPort))); err == nil || !strings.Contains(err.Error(), "already published (by a/eth1") {
		t.Fatalf("a reserved host port taken by another container: %v", err)
	}
	fresh, err := n.DB.FindInterfaces(ctx, intent.OfContainer("a", "eth1"))
	if err != nil {
		t.Fatal(err)
	}
	held, err := intent.Published("a", fresh[0].ExternalIDs)
	if err != nil || len(held) != 2 {
		t.Fatalf("reservations recorded: %v, %v", held, err)
	}
	// Publishing again is publishing once: the same mapping, no rule more.
	again, err := n.Publish(ctx, nb, fresh[0], req("80"))
	if err != nil || len(again) != 1 || again[0].HostPort != ms[0].HostPort || rulesWith(fw, "--to-destination 10.5.0.2:") != 2 {
		t.Fatalf("publish 80 again: %+v, %v (first %+v); rules %q", again, err, ms[0], fw.Rules(false))
	}
	if err := n.Release(ctx, fresh[0], held[:1], held[1:]); err != nil {
		t.Fatal(err)
	}
	fresh, _ = n.DB.FindInterfaces(ctx, intent.OfContainer("a", "eth1"))
	if kept, _ := intent.Published("a", fresh[0].ExternalIDs); len(kept) != 1 || rulesWith(fw, "--to-destination 10.5.0.2:") != 1 {
		t.Fatalf("after releasing one: kept %v, rules %q", kept, fw.Rules(false))
	}
	if err := n.ReleaseAll(fresh); err != nil || rulesWith(fw, "--to-destination") != 0 {
		t.Fatalf("release all: %v, rules %q", err, fw.Rules(false))
	}
	if err := n.Resync(ctx); err != nil || rulesWith(fw, "MASQUERADE") == 0 || !fw.Forwarding(false) {
		t.Fatalf("resync: %v, rules %q", err, fw.Rules(false))
	}
}
