package controller

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
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
		m := randomMAC()
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Fatalf("random MAC %s is not locally administered unicast", m)
		}
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
	if n := nextOfport(nil); n != 1 {
		t.Fatalf("empty bridge: %d", n)
	}
	// LOCAL (65534) does not count; requested numbers do.
	if n := nextOfport([]vswitchd.Interface{iface(65534, 0), iface(3, 3), iface(0, 7)}); n != 8 {
		t.Fatalf("got %d, want 8", n)
	}
	// At the top of the range, the lowest free number is reused.
	if n := nextOfport([]vswitchd.Interface{iface(1, 1), iface(0xfeff, 0)}); n != 2 {
		t.Fatalf("wrap: got %d, want 2", n)
	}
}

func TestChooseAddresses(t *testing.T) {
	subs, _ := ipam.ParseSubnets([]string{"10.0.0.0/24", "fd00::/64"}, nil)
	used := map[netip.Addr]string{netip.MustParseAddr("10.0.0.2"): "c1/eth1"}
	got, err := chooseAddresses([]netip.Prefix{netip.MustParsePrefix("fd00::9/64")}, true, subs, used)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].String() != "fd00::9/64" || got[1].String() != "10.0.0.3/24" {
		t.Fatalf("explicit v6 plus auto v4: %v", got)
	}
	gws := gatewaysFor(got, subs, netip.Addr{})
	if len(gws) != 2 || gws[0].String() != "fd00::1" || gws[1].String() != "10.0.0.1" {
		t.Fatalf("gateways: %v", gws)
	}
	gws = gatewaysFor(got, subs, netip.MustParseAddr("10.0.0.254"))
	if gws[1].String() != "10.0.0.254" {
		t.Fatalf("explicit gateway: %v", gws)
	}
	if _, err := chooseAddresses([]netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}, false, subs, used); err == nil {
		t.Fatal("taken address accepted")
	}
}

func TestUsedAddrs(t *testing.T) {
	ifs := []vswitchd.Interface{{ExternalIDs: map[string]string{ovsdb.KeyIPv4: "10.0.0.5/24", ovsdb.KeyIPv6: "fd00::5/64",
		ovsdb.KeyContainerID: "web", ovsdb.KeyContainerIface: "eth1"}}}
	u := usedAddrs(ifs)
	if u[netip.MustParseAddr("10.0.0.5")] != "web/eth1" || u[netip.MustParseAddr("fd00::5")] != "web/eth1" || len(u) != 2 {
		t.Fatalf("%v", u)
	}
}
