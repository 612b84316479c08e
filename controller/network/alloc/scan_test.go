package alloc

import (
	"net/netip"
	"testing"

	"github.com/ovsnet/ovsnet/ipam"
)

// Auto takes one address per family the interface lacks: the lowest free
// from the scan's hint (else the bridge's), moving the hint on; each goes
// into Used.
func TestAuto(t *testing.T) {
	subs, err := ipam.ParseSubnets([]string{"10.5.0.0/24", "fd05::/64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	used := map[netip.Addr]bool{netip.MustParseAddr("10.5.0.2"): true}
	f := AutoFrom{Used: used, Hints: map[bool]netip.Addr{}, Bridge: map[bool]netip.Addr{true: netip.MustParseAddr("10.5.0.2")}}
	have := []netip.Prefix{netip.MustParsePrefix("fd05::9/64")}
	got, err := Auto(have, subs, f)
	if err != nil || len(got) != 1 || got[0].String() != "10.5.0.3/24" {
		t.Fatalf("lowest free from the bridge's hint, IPv4 only: %v, %v", got, err)
	}
	if !used[netip.MustParseAddr("10.5.0.3")] || f.Hints[true] != netip.MustParseAddr("10.5.0.4") {
		t.Fatalf("used %v, hints %v: the address taken and the hint moved past it", used, f.Hints)
	}
	if got, _ := Auto(nil, subs[:1], f); len(got) != 1 || got[0].String() != "10.5.0.4/24" {
		t.Fatalf("the next from the scan's hint: %v", got)
	}
}
