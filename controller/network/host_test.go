package network

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/ipam"
)

func TestCheckIfName(t *testing.T) {
	for _, ok := range []string{"eth1", "ovs-br1", "a", "eth0.10", "x23456789012345"} {
		if err := CheckIfName("interface", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                 "empty",
		"x234567890123456": "at most 15",
		"a/b":              "'/'",
		"..":               "not a valid",
		"a b":              "not a valid",
	} {
		if err := CheckIfName("interface", name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", name, err, want)
		}
	}
}

func TestParseMAC(t *testing.T) {
	if m, err := ParseMAC("02:42:AC:11:00:02"); err != nil || m.String() != "02:42:ac:11:00:02" {
		t.Fatalf("%v %v", m, err)
	}
	for s, want := range map[string]string{"zz": "malformed", "01:00:5e:00:00:01": "multicast",
		"00:00:00:00:00:00": "all zeros", "02:00:00:00:00:00:00:01": "malformed"} {
		if _, err := ParseMAC(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", s, err, want)
		}
	}
	for i := 0; i < 100; i++ {
		m := ipam.RandomMAC()
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Fatalf("random MAC %s is not locally administered unicast", m)
		}
	}
}

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

func TestMACFor(t *testing.T) {
	m := ipam.MACFor([]netip.Prefix{netip.MustParsePrefix("fd00::2/64"), netip.MustParsePrefix("173.16.1.2/24")})
	if m.String() != "0a:58:ad:10:01:02" {
		t.Fatalf("got %s", m)
	}
	if m := ipam.MACFor(nil); m[0]&1 != 0 || m[0]&2 == 0 {
		t.Fatalf("random MAC %s", m)
	}
}
