package e2e

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Bridges are isolated from each other in both families, whichever was
// made first and with or without --icc=false: nothing unpublished crosses
// from one bridge to another, while published ports (from another bridge
// too), egress and links keep working, and del-br leaves no rule in either
// iptables.
func TestBridgesIsolated(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	a, a2, b := e.container(), e.container(), e.container()
	e.must("add-br", "bra", "--subnet", "10.72.0.0/24", "--subnet", "fd00:72::/64", "--icc=false")
	e.must("add-br", "brb", "--subnet", "10.73.0.0/24", "--subnet", "fd00:73::/64")
	pa := e.addPortJSON("add-port", "bra", "eth1", a, "--ip")
	pa2 := e.addPortJSON("add-port", "bra", "eth1", a2, "--ip")
	pb := e.addPortJSON("add-port", "brb", "eth1", b, "--ip", "-p", "8080:80")
	addr := func(p portJSON, v6 bool) string {
		for _, s := range p.Addresses {
			ip := strings.Split(s, "/")[0]
			if strings.Contains(ip, ":") == v6 {
				return ip
			}
		}
		t.Fatalf("%s has no address of that family: %v", p.Container, p.Addresses)
		return ""
	}
	for _, v6 := range []bool{false, true} {
		for _, c := range []struct {
			src, dst string
			to       portJSON
		}{{a, b, pb}, {b, a, pa}} {
			hp := net.JoinHostPort(addr(c.to, v6), "7200")
			if err := tcpVia(t, c.src, hp, c.dst, hp); err == nil {
				t.Fatalf("TCP from %s to %s on another bridge got through", c.src, hp)
			}
		}
	}
	// Published ports answer other bridges' containers, as they answer
	// the outside; egress and links work.
	if err := tcpVia(t, a, "192.0.2.1:8080", b, addr(pb, false)+":80"); err != nil {
		t.Fatalf("a published port from another bridge: %v", err)
	}
	if err := tcpVia(t, out, "192.0.2.1:8080", b, addr(pb, false)+":80"); err != nil {
		t.Fatalf("a published port from outside: %v", err)
	}
	ping(t, a, "192.0.2.2")
	ping(t, b, "192.0.2.2")
	e.must("link", "bra", a, a2, "--port", "7300/tcp")
	if err := tcpOpen(t, a, a2, addr(pa2, false), 7300); err != nil {
		t.Fatalf("a link on an isolated bridge: %v", err)
	}
	hp6 := net.JoinHostPort(addr(pa2, true), "7300")
	if err := tcpVia(t, a, hp6, a2, hp6); err != nil {
		t.Fatalf("a link over IPv6: %v", err)
	}
	for _, s := range []string{"ip6tables-save", "iptables-save"} {
		if save, _ := e.sb.Run(s); !strings.Contains(save, "-A OVSNET-ISOLATE -o brb") {
			t.Fatalf("%s lacks the isolation rules:\n%s", s, save)
		}
	}
	e.must("del-br", "bra")
	e.must("del-br", "brb")
	for _, s := range []string{"ip6tables-save", "iptables-save"} {
		if save, _ := e.sb.Run(s); len(ovsnetRules(save)) > 0 {
			t.Fatalf("%s after the last del-br: %v", s, ovsnetRules(save))
		}
	}
}

// An ICMP error that cites a linked connection passes between the link's
// ends (the destination's port unreachable reaches the source), but the
// same error forged by another container of an --icc=false bridge does
// not: conntrack calls it related whoever sends it.
func TestForgedICMPErrorsDropped(t *testing.T) {
	e := newEnv(t)
	a, b, x := e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.74.0.0/24", "--icc=false")
	pa := e.addPortJSON("add-port", "br0", "eth1", a, "--ip")
	pb := e.addPortJSON("add-port", "br0", "eth1", b, "--ip")
	e.addPortJSON("add-port", "br0", "eth1", x, "--ip")
	e.must("link", "br0", a, b, "--port", "5301/udp")
	aAddr, bAddr := netip.MustParseAddr(addrOf(pa)), netip.MustParseAddr(addrOf(pb))
	// B listens (and never answers): no error of its own kernel's.
	var ln net.PacketConn
	inNetns(t, nsPath(b), func() (err error) { ln, err = net.ListenPacket("udp", bAddr.String()+":5301"); return err })
	defer ln.Close()
	refused := func(from string) bool {
		t.Helper()
		var c *net.UDPConn
		inNetns(t, nsPath(a), func() (err error) {
			c, err = net.DialUDP("udp", &net.UDPAddr{Port: 40000}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bAddr, 5301)))
			return err
		})
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil { // conntrack commits A -> B:5301
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the datagram reaches B before the error is sent
		sendICMPError(t, from, aAddr, aAddr, 40000, bAddr, 5301)
		c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		_, err := c.Read(make([]byte, 16))
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	if !refused(b) {
		t.Fatal("the link's destination's port unreachable did not reach the source: the probe does not work")
	}
	if refused(x) {
		t.Fatalf("a port unreachable forged by an unlinked container reached the link's source\n%s", e.dumpFlows("br0"))
	}
}

// sendICMPError sends, from netns src, an ICMP port unreachable to dst
// citing a UDP datagram from inSrc:inSport to inDst:inDport.
func sendICMPError(t *testing.T, src string, dst, inSrc netip.Addr, inSport uint16, inDst netip.Addr, inDport uint16) {
	t.Helper()
	inner := []byte{0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, 17, 0, 0} // IPv4, 20+8+5 bytes, DF, TTL 64, UDP
	s4, d4 := inSrc.As4(), inDst.As4()
	inner = append(append(inner, s4[:]...), d4[:]...)
	binary.BigEndian.PutUint16(inner[10:], inetChecksum(inner))
	inner = binary.BigEndian.AppendUint16(inner, inSport)
	inner = binary.BigEndian.AppendUint16(inner, inDport)
	inner = append(inner, 0, 13, 0, 0) // UDP length, no checksum
	msg := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, inner...)
	binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
	inNetns(t, nsPath(src), func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	})
}

func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
