package network

import (
	"net/netip"
	"testing"

	"github.com/ovsnet/ovsnet/ipam"
)

func TestGatewaysFor(t *testing.T) {
	subs, _ := ipam.ParseSubnets([]string{"10.0.0.0/24", "fd00::/64"}, nil)
	got := []netip.Prefix{netip.MustParsePrefix("fd00::9/64"), netip.MustParsePrefix("10.0.0.3/24")}
	gws := gatewaysFor(got, subs, netip.Addr{})
	if len(gws) != 2 || gws[0].String() != "fd00::1" || gws[1].String() != "10.0.0.1" {
		t.Fatalf("gateways: %v", gws)
	}
	gws = gatewaysFor(got, subs, netip.MustParseAddr("10.0.0.254"))
	if gws[1].String() != "10.0.0.254" {
		t.Fatalf("explicit gateway: %v", gws)
	}
	if gws := gatewaysFor([]netip.Prefix{netip.MustParsePrefix("192.0.2.5/24")}, subs, netip.Addr{}); len(gws) != 0 {
		t.Fatalf("address outside the bridge's subnets got gateway %v", gws)
	}
}
