package attach

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Announce sends a gratuitous ARP for each IPv4 address and an unsolicited
// neighbour advertisement for each IPv6 address of dev, so that peers with a
// stale entry for the address (a container re-attached with a new MAC)
// update it at once. It runs in the calling thread's netns.
func Announce(dev string, addrs []netip.Prefix) error {
	if len(addrs) == 0 {
		return nil
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	for _, p := range addrs {
		frame, dst := garpFrame(ifi.HardwareAddr, p.Addr())
		if p.Addr().Is6() {
			frame, dst = unsolicitedNA(ifi.HardwareAddr, p.Addr())
		}
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], dst)
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			return fmt.Errorf("announce %s on %s: %w", p.Addr(), dev, err)
		}
	}
	return nil
}

func ethHeader(dst, src net.HardwareAddr, ethertype uint16) []byte {
	b := make([]byte, 14)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], ethertype)
	return b
}

// garpFrame is an ARP request with sender and target both set to ip,
// broadcast: the form every stack accepts as gratuitous.
func garpFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, net.HardwareAddr) {
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	arp := make([]byte, 28)
	binary.BigEndian.PutUint16(arp[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(arp[2:4], 0x0800) // IPv4
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:8], 1) // request
	a := ip.As4()
	copy(arp[8:14], mac)
	copy(arp[14:18], a[:])
	copy(arp[24:28], a[:])
	return append(ethHeader(bcast, mac, 0x0806), arp...), bcast
}

// unsolicitedNA is an ICMPv6 neighbour advertisement (override flag, target
// link-layer address option) from ip to all nodes, hop limit 255.
func unsolicitedNA(mac net.HardwareAddr, ip netip.Addr) ([]byte, net.HardwareAddr) {
	dstMAC := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	allNodes := netip.MustParseAddr("ff02::1")
	icmp := make([]byte, 32)
	icmp[0] = 136                                     // neighbour advertisement
	binary.BigEndian.PutUint32(icmp[4:8], 0x20000000) // override
	t := ip.As16()
	copy(icmp[8:24], t[:])
	icmp[24], icmp[25] = 2, 1 // target link-layer address, 8 bytes
	copy(icmp[26:32], mac)
	binary.BigEndian.PutUint16(icmp[2:4], icmpv6Checksum(ip, allNodes, icmp))

	hdr := make([]byte, 40)
	hdr[0] = 0x60
	binary.BigEndian.PutUint16(hdr[4:6], uint16(len(icmp)))
	hdr[6], hdr[7] = 58, 255
	d := allNodes.As16()
	copy(hdr[8:24], t[:])
	copy(hdr[24:40], d[:])
	return append(append(ethHeader(dstMAC, mac, 0x86dd), hdr...), icmp...), dstMAC
}

func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	s, d := src.As16(), dst.As16()
	pseudo := make([]byte, 0, 40+len(msg))
	pseudo = append(pseudo, s[:]...)
	pseudo = append(pseudo, d[:]...)
	pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(msg)))
	pseudo = append(pseudo, 0, 0, 0, 58)
	pseudo = append(pseudo, msg...)
	var sum uint32
	for i := 0; i+1 < len(pseudo); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(pseudo[i:]))
	}
	if len(pseudo)%2 == 1 {
		sum += uint32(pseudo[len(pseudo)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
