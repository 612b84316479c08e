package ipam

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
)

// MACFor derives a container's MAC from its IPv4 address, as Docker does
// (0a:58 + the address, the convention of OVN-based CNIs): a container that
// comes back with the same address keeps its MAC, so peers' neighbour
// entries stay right without flooding its announcements to them. Without
// IPv4 it is random.
func MACFor(addrs []netip.Prefix) net.HardwareAddr {
	for _, a := range addrs {
		if a.Addr().Is4() {
			b := a.Addr().As4()
			return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
		}
	}
	return RandomMAC()
}

// AddrOfMAC is the IPv4 address a MAC made by MACFor was derived from.
func AddrOfMAC(m net.HardwareAddr) (netip.Addr, bool) {
	if len(m) != 6 || m[0] != 0x0a || m[1] != 0x58 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(m[2:6])), true
}

// RandomMAC returns a random locally administered unicast MAC.
func RandomMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	rand.Read(m)
	m[0] = m[0]&0xfe | 0x02
	return m
}

// ParseMAC validates a container MAC: well-formed, 6 bytes, unicast, not zero.
func ParseMAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("malformed MAC address %q: want six hex bytes such as 02:42:ac:11:00:02", s)
	}
	if m[0]&1 == 1 {
		return nil, fmt.Errorf("MAC address %s is multicast: a container needs a unicast address (even first byte)", m)
	}
	if m.String() == "00:00:00:00:00:00" {
		return nil, fmt.Errorf("MAC address %s is all zeros", m)
	}
	return m, nil
}
