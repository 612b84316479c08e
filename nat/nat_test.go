package nat

import (
	"net/netip"
	"strings"
	"testing"
)

func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestParseMapping(t *testing.T) {
	for in, want := range map[string]string{
		"80":                    "0.0.0.0:0:80/tcp",
		"8080:80":               "0.0.0.0:8080:80/tcp",
		"127.0.0.1:9090:90":     "127.0.0.1:9090:90/tcp",
		"53/udp":                "0.0.0.0:0:53/udp",
		"192.0.2.1::443":        "192.0.2.1:0:443/tcp",
		"192.0.2.1:5353:53/udp": "192.0.2.1:5353:53/udp",
	} {
		m, err := ParseMapping(in)
		if err != nil || m.String() != want {
			t.Errorf("%s: %v %v, want %s", in, m, err, want)
		}
	}
	for _, bad := range []string{"", "0", "70000", "80/sctp", "a:80", "fd00::1:80:80", "1:2:3:4", "8080:0"} {
		if _, err := ParseMapping(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	m, _ := ParseMapping("8080:80")
	if m.Docker() != "80/tcp -> 0.0.0.0:8080" {
		t.Errorf("docker form: %s", m.Docker())
	}
}

func TestOverlaps(t *testing.T) {
	p := func(s string) Mapping { m, _ := ParseMapping(s); return m }
	if !p("8080:80").Overlaps(p("127.0.0.1:8080:81")) || !p("127.0.0.1:8080:81").Overlaps(p("8080:80")) {
		t.Error("every-address and one-address mappings of a port overlap")
	}
	if p("127.0.0.1:8080:80").Overlaps(p("192.0.2.1:8080:80")) {
		t.Error("two different addresses do not overlap")
	}
	if p("8080:80").Overlaps(p("8080:80/udp")) || p("8080:80").Overlaps(p("8081:80")) {
		t.Error("other protocol or port do not overlap")
	}
	ms, err := ParseList(FormatList([]Mapping{p("8080:80"), p("53:53/udp")}))
	if err != nil || len(ms) != 2 {
		t.Fatalf("round trip: %v %v", ms, err)
	}
}

func TestRules(t *testing.T) {
	m, _ := ParseMapping("127.0.0.1:9090:90")
	r := MappingRule("web/eth1", mustAddr("10.0.0.2"), m)
	got := strings.Join(r.Spec, " ")
	want := "-d 127.0.0.1/32 -p tcp -m tcp --dport 9090 -m comment --comment ovsnet: web/eth1 90/tcp -> 127.0.0.1:9090 -j DNAT --to-destination 10.0.0.2:90"
	if r.Chain != ChainDNAT || got != want {
		t.Fatalf("got %s", got)
	}
	rs := BridgeRules(Bridge{Name: "br0", Subnet: mustPrefix("10.0.0.0/24"), NAT: true}, []netip.Prefix{mustPrefix("10.1.0.0/24")})
	var text []string
	for _, r := range rs {
		text = append(text, r.String())
	}
	all := strings.Join(text, "\n")
	// Accepts before the drop; no masquerade toward the other subnet.
	if strings.Index(all, "-o br0 -j DROP") < strings.Index(all, "--ctstate DNAT -j ACCEPT") {
		t.Fatalf("drop before accept:\n%s", all)
	}
	if !strings.Contains(all, "-s 10.0.0.0/24 -d 10.1.0.0/24 -j RETURN") || strings.Index(all, "-j RETURN") > strings.Index(all, "! -o br0 -j MASQUERADE") {
		t.Fatalf("other subnets must be exempted first:\n%s", all)
	}
	if r := BridgeRules(Bridge{Name: "br1", NAT: false}, nil); len(r) != 2 || strings.Contains(r[0].String(), "DROP") {
		t.Fatalf("routed bridge: %v", r)
	}
}

func TestCanon(t *testing.T) {
	listed := strings.Fields(`-o br0 -m conntrack --ctstate DNAT -m comment --comment "ovsnet: bridge br0" -j ACCEPT`)
	spec := []string{"-o", "br0", "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT", "-m", "comment", "--comment", "ovsnet: bridge br0"}
	if canon(listed, true) != canon(spec, false) {
		t.Fatalf("%q != %q", canon(listed, true), canon(spec, false))
	}
	if canon(listed, true) == canon(append(spec[:len(spec)-1:len(spec)-1], "ovsnet: bridge br1"), false) {
		t.Fatal("different comments compare equal")
	}
}

func TestRestoreQuote(t *testing.T) {
	for in, want := range map[string]string{
		"DNAT":                 "DNAT",
		"10.0.0.2:80":          "10.0.0.2:80",
		"ovsnet: web1/eth1 80": `"ovsnet: web1/eth1 80"`,
		`a"b`:                  `"a\"b"`,
		`a\b`:                  `"a\\b"`,
		"":                     `""`,
	} {
		if got := restoreQuote(in); got != want {
			t.Errorf("restoreQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// A published mapping satisfies a request for its container port and
// protocol unless the request names another host port or address.
func TestSatisfiedBy(t *testing.T) {
	pub, _ := ParseMapping("0.0.0.0:49153:80/tcp")
	for spec, want := range map[string]bool{"80": true, "49153:80": true, "80/udp": false, "8080:80": false, "127.0.0.1::80": false, "81": false} {
		m, err := ParseMapping(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.SatisfiedBy(pub); got != want {
			t.Errorf("%s satisfied by %s: %v, want %v", spec, pub.Docker(), got, want)
		}
	}
}
