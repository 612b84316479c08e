package ipam

import (
	"net/netip"
	"strings"
	"testing"
)

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
		m := RandomMAC()
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Fatalf("random MAC %s is not locally administered unicast", m)
		}
	}
}

func TestMACFor(t *testing.T) {
	m := MACFor([]netip.Prefix{netip.MustParsePrefix("fd00::2/64"), netip.MustParsePrefix("172.16.1.2/24")})
	if m.String() != "0a:58:ac:10:01:02" {
		t.Fatalf("got %s", m)
	}
	if m := MACFor(nil); m[0]&1 != 0 || m[0]&2 == 0 {
		t.Fatalf("random MAC %s", m)
	}
}
