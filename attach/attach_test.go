package attach

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestHostName(t *testing.T) {
	a := HostName("ovs-br1", "container1", "eth1")
	if len(a) > 15 || !strings.HasPrefix(a, "on") {
		t.Fatalf("bad host name %q", a)
	}
	if a != HostName("ovs-br1", "container1", "eth1") {
		t.Fatal("not deterministic")
	}
	for _, o := range []string{HostName("ovs-br2", "container1", "eth1"), HostName("ovs-br1", "container2", "eth1"), HostName("ovs-br1", "container1", "eth2")} {
		if o == a {
			t.Fatalf("collision: %s", o)
		}
	}
}

func TestGARPFrame(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:07")
	f, dst := garpFrame(mac, netip.MustParseAddr("173.16.1.2"))
	if dst.String() != "ff:ff:ff:ff:ff:ff" || len(f) != 42 {
		t.Fatalf("dst %s len %d", dst, len(f))
	}
	if binary.BigEndian.Uint16(f[12:]) != 0x0806 || net.IP(f[28:32]).String() != "173.16.1.2" || net.IP(f[38:42]).String() != "173.16.1.2" {
		t.Fatalf("bad ARP: % x", f)
	}
}

func TestNAChecksum(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:07")
	f, _ := unsolicitedNA(mac, netip.MustParseAddr("fd00::2"))
	src, _ := netip.AddrFromSlice(f[22:38])
	dst, _ := netip.AddrFromSlice(f[38:54])
	icmp := f[54:]
	// A correct checksum makes the sum over pseudo-header and message zero.
	if icmpv6Checksum(src, dst, icmp) != 0 {
		t.Fatalf("checksum does not verify")
	}
	if icmp[0] != 136 || f[21] != 255 {
		t.Fatalf("type %d hop limit %d", icmp[0], f[21])
	}
}
