package e2e

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// sendFrame sends one raw Ethernet frame out of dev in netns, as a hostile
// container with CAP_NET_RAW can.
func sendFrame(t *testing.T, netns, dev string, frame []byte) {
	t.Helper()
	inNetns(t, nsPath(netns), func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6})
	})
}

// neighbourAdvert is an Ethernet frame carrying an unsolicited, overriding
// IPv6 neighbour advertisement for target with tll as its target
// link-layer address, from src (MAC, address) to all nodes.
func neighbourAdvert(srcMAC net.HardwareAddr, src, target netip.Addr, tll net.HardwareAddr) []byte {
	dst := netip.MustParseAddr("ff02::1")
	icmp := []byte{136, 0, 0, 0, 0x20, 0, 0, 0} // type, code, checksum, flags: override
	t16 := target.As16()
	icmp = append(icmp, t16[:]...)
	icmp = append(icmp, 2, 1) // option: target link-layer address, 8 bytes
	icmp = append(icmp, tll...)
	binary.BigEndian.PutUint16(icmp[2:], icmp6Checksum(src, dst, icmp))
	ip := []byte{0x60, 0, 0, 0, 0, 0, 58, 255} // version, payload length, next header ICMPv6, hop limit 255
	binary.BigEndian.PutUint16(ip[4:], uint16(len(icmp)))
	s16, d16 := src.As16(), dst.As16()
	ip = append(append(ip, s16[:]...), d16[:]...)
	eth := append(append([]byte{0x33, 0x33, 0, 0, 0, 1}, srcMAC...), 0x86, 0xdd)
	return append(append(eth, ip...), icmp...)
}

func icmp6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	s16, d16 := src.As16(), dst.As16()
	pseudo := append(append(append([]byte{}, s16[:]...), d16[:]...), 0, 0, 0, 0, 0, 0, 0, 58)
	binary.BigEndian.PutUint16(pseudo[34:], uint16(len(msg)))
	var sum uint32
	b := append(pseudo, msg...)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	for i := 0; i < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
