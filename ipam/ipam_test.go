package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestParseSubnets(t *testing.T) {
	ss, err := ParseSubnets([]string{"172.16.1.7/24", "fd00:1::/64"}, []string{"fd00:1::fe"})
	if err != nil {
		t.Fatal(err)
	}
	if ss[0].Prefix.String() != "172.16.1.0/24" || ss[0].Gateway.String() != "172.16.1.1" {
		t.Fatalf("v4: %+v", ss[0])
	}
	if ss[1].Gateway.String() != "fd00:1::fe" {
		t.Fatalf("v6: %+v", ss[1])
	}
	bad := []struct {
		subnets, gws []string
		want         string
	}{
		{[]string{"10.0.0.0/33"}, nil, "malformed subnet"},
		{[]string{"10.0.0.0/24", "10.1.0.0/24"}, nil, "at most one per family"},
		{[]string{"10.0.0.0/31"}, nil, "too small"},
		{[]string{"10.0.0.0/24"}, []string{"10.0.1.1"}, "outside the subnet"},
		{[]string{"10.0.0.0/24"}, []string{"10.0.0.255"}, "broadcast"},
		{[]string{"10.0.0.0/24"}, []string{"fd00::1"}, "no IPv6 subnet"},
		{[]string{"10.0.0.0/24"}, []string{"nope"}, "malformed gateway"},
	}
	for _, b := range bad {
		if _, err := ParseSubnets(b.subnets, b.gws); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseSubnets(%v, %v) = %v, want %q", b.subnets, b.gws, err, b.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ss, _ := ParseSubnets([]string{"172.16.1.0/24"}, nil)
	used := map[netip.Addr]string{netip.MustParseAddr("172.16.1.3"): "c2/eth1"}
	p, err := Validate(netip.MustParsePrefix("172.16.1.2/24"), ss, used)
	if err != nil || p.String() != "172.16.1.2/24" {
		t.Fatalf("good address: %v %v", p, err)
	}
	r, _ := ParseRequest("172.16.1.9")
	if p, err := Validate(r, ss, used); err != nil || p.String() != "172.16.1.9/24" {
		t.Fatalf("bare address takes the subnet length: %v %v", p, err)
	}
	for req, want := range map[string]string{
		"172.16.2.2/24":   "outside",
		"172.16.1.0/24":   "network address",
		"172.16.1.255/24": "broadcast",
		"172.16.1.1/24":   "gateway",
		"172.16.1.3/24":   "already taken by c2/eth1",
		"172.16.1.4/16":   "prefix length 24",
		"224.0.0.1/24":    "not a unicast",
	} {
		if _, err := Validate(netip.MustParsePrefix(req), ss, used); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%s) = %v, want %q", req, err, want)
		}
	}
	if _, err := Validate(netip.PrefixFrom(netip.MustParseAddr("fd00::5"), -1), nil, nil); err == nil || !strings.Contains(err.Error(), "prefix length") {
		t.Errorf("bare v6 on a bridge without subnets: %v", err)
	}
	if _, err := Validate(netip.MustParsePrefix("fd00::5/64"), ss, nil); err == nil || !strings.Contains(err.Error(), "the bridge has no IPv6 subnet") {
		t.Errorf("v6 on an IPv4-only bridge: %v", err)
	}
	for _, bad := range []string{"0.0.0.0/0", "127.0.0.0/24", "224.0.0.0/24", "255.255.255.0/24", "169.254.1.0/24", "fe80::/64", "ff02::/64", "::/0"} {
		if err := CheckUsable(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("subnet %s accepted", bad)
		}
	}
	for _, good := range []string{"10.0.0.0/8", "172.16.0.0/24", "192.168.1.0/24", "100.64.0.0/24", "fd00:1::/64", "2001:db8::/64"} {
		if err := CheckUsable(netip.MustParsePrefix(good)); err != nil {
			t.Errorf("subnet %s refused: %v", good, err)
		}
	}
	if _, err := ParseRequest("10.0.0.300/24"); err == nil {
		t.Error("malformed address accepted")
	}
}

func TestAllocate(t *testing.T) {
	ss, _ := ParseSubnets([]string{"10.0.0.0/29", "fd00::/64"}, []string{"10.0.0.2"})
	used := map[netip.Addr]string{netip.MustParseAddr("10.0.0.1"): "a", netip.MustParseAddr("10.0.0.4"): "b"}
	var got []string
	for i := 0; i < 3; i++ {
		p, err := Allocate(ss[0], used)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.String())
		used[p.Addr()] = "x"
	}
	// .1 and .4 are used, .2 is the gateway, .7 is the broadcast address.
	if strings.Join(got, " ") != "10.0.0.3/29 10.0.0.5/29 10.0.0.6/29" {
		t.Fatalf("allocation order: %v", got)
	}
	if _, err := Allocate(ss[0], used); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want exhausted, got %v", err)
	}
	p, err := Allocate(ss[1], nil)
	if err != nil || p.String() != "fd00::2/64" {
		t.Fatalf("v6: %v %v", p, err)
	}
}

func TestCandidates(t *testing.T) {
	ss, _ := ParseSubnets([]string{"10.0.0.0/29"}, []string{"10.0.0.3"})
	s := ss[0]
	str := func(as []netip.Addr) string {
		var out []string
		for _, a := range as {
			out = append(out, a.String())
		}
		return strings.Join(out, " ")
	}
	if got := str(Candidates(s, netip.Addr{}, 3, nil)); got != "10.0.0.1 10.0.0.2 10.0.0.4" {
		t.Fatalf("from start: %s", got)
	}
	skip := map[netip.Addr]bool{netip.MustParseAddr("10.0.0.5"): true}
	if got := str(Candidates(s, netip.MustParseAddr("10.0.0.4"), 10, skip)); got != "10.0.0.4 10.0.0.6" {
		t.Fatalf("from hint, skipping: %s", got)
	}
	if got := Candidates(s, netip.MustParseAddr("10.0.0.7"), 10, nil); len(got) != 0 {
		t.Fatalf("past the end: %v", got)
	}
	// A hint below the first host or from the other family is ignored.
	if got := str(Candidates(s, netip.MustParseAddr("fd00::1"), 1, nil)); got != "10.0.0.1" {
		t.Fatalf("foreign hint: %s", got)
	}
}

func TestRanges(t *testing.T) {
	ss, _ := ParseSubnets([]string{"10.97.0.0/16"}, nil)
	if err := SetRanges(ss, []string{"10.97.1.0/29"}); err != nil {
		t.Fatal(err)
	}
	if ss[0].Gateway.String() != "10.97.1.1" || ss[0].Range.String() != "10.97.1.0/29" {
		t.Fatalf("gateway %s range %s", ss[0].Gateway, ss[0].Range)
	}
	// The range's first and last addresses are left out; .1 is the gateway.
	got := Candidates(ss[0], netip.Addr{}, 10, nil)
	if fmt.Sprint(got) != "[10.97.1.2 10.97.1.3 10.97.1.4 10.97.1.5 10.97.1.6]" {
		t.Fatalf("candidates %v", got)
	}
	p, err := Allocate(ss[0], map[netip.Addr]string{netip.MustParseAddr("10.97.1.2"): "a"})
	if err != nil || p.String() != "10.97.1.3/16" {
		t.Fatalf("allocate: %v %v", p, err)
	}
	if _, err := Validate(netip.MustParsePrefix("10.97.2.5/16"), ss, nil); err == nil || !strings.Contains(err.Error(), "outside this host's range") {
		t.Fatalf("validate outside the range: %v", err)
	}
	if _, err := Validate(netip.MustParsePrefix("10.97.1.7/16"), ss, nil); err == nil {
		t.Fatal("validate took the range's last address")
	}
	for _, b := range []struct {
		subnets, gws, ranges []string
		want                 string
	}{
		{[]string{"10.97.0.0/16"}, nil, []string{"10.98.1.0/24"}, "outside the subnet"},
		{[]string{"10.97.0.0/16"}, nil, []string{"10.96.0.0/12"}, "outside the subnet"},
		{[]string{"10.97.0.0/16"}, []string{"10.97.0.7"}, []string{"10.97.1.0/24"}, "outside this host's range"},
		{[]string{"10.97.0.0/16"}, nil, []string{"fd00::/64"}, "no IPv6 subnet"},
		{[]string{"10.97.0.0/16"}, nil, []string{"10.97.1.0/31"}, "too small"},
	} {
		ss, _ := ParseSubnets(b.subnets, b.gws)
		if err := SetRanges(ss, b.ranges); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("SetRanges(%v) = %v, want %q", b.ranges, err, b.want)
		}
	}
}

// A warm pool's addresses come from the top of the subnet (or the host's
// range), skipping the broadcast-looking last IPv4 address, the gateway
// and what is used.

func TestPublicIPv4(t *testing.T) {
	for cidr, want := range map[string]bool{"173.16.1.0/24": true, "8.8.8.0/24": true, "172.16.1.0/24": false, "10.1.0.0/16": false,
		"192.168.5.0/24": false, "100.64.1.0/24": false, "192.0.2.0/24": false, "172.0.0.0/8": true, "fd00::/64": false, "2001:db8::/64": false} {
		if got := PublicIPv4(netip.MustParsePrefix(cidr)); got != want {
			t.Errorf("%s: %v, want %v", cidr, got, want)
		}
	}
}

func TestGatewaysFor(t *testing.T) {
	subs, _ := ParseSubnets([]string{"10.0.0.0/24", "fd00::/64"}, nil)
	got := []netip.Prefix{netip.MustParsePrefix("fd00::9/64"), netip.MustParsePrefix("10.0.0.3/24")}
	gws := GatewaysFor(got, subs, netip.Addr{})
	if len(gws) != 2 || gws[0].String() != "fd00::1" || gws[1].String() != "10.0.0.1" {
		t.Fatalf("gateways: %v", gws)
	}
	gws = GatewaysFor(got, subs, netip.MustParseAddr("10.0.0.254"))
	if gws[1].String() != "10.0.0.254" {
		t.Fatalf("explicit gateway: %v", gws)
	}
	if gws := GatewaysFor([]netip.Prefix{netip.MustParsePrefix("192.0.2.5/24")}, subs, netip.Addr{}); len(gws) != 0 {
		t.Fatalf("address outside the bridge's subnets got gateway %v", gws)
	}
}
