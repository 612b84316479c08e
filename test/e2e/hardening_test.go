package e2e

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Packets to 127.0.0.0/8 reach the host's loopback only from lo: not from
// another machine routing 127.0.0.1 through the host, not from a container
// routing it through its gateway (127.0.0.1-published ports need
// route_localnet on the bridge). Each of the two guards (iptables' raw
// table, the pipeline) holds alone.
func TestLoopbackUnreachable(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	a, b := e.container(), e.container()
	host := e.sb.Netns
	e.must("add-br", "br1", "--subnet", "10.72.0.0/24")
	e.must("add-port", "br1", "eth1", a, "--ip", "-p", "127.0.0.1:9090:90/udp")
	e.must("add-port", "br1", "eth1", b, "--ip")
	if !udpArrives(t, host, "127.0.0.1:9090", a, "10.72.0.2:90") {
		t.Fatal("127.0.0.1 publishing from the host does not work")
	}
	// Both attackers route 127.0.0.1 out of their interface to the host.
	for _, c := range []struct{ ns, dev, via string }{{out, "wan", "192.0.2.1"}, {b, "eth1", "10.72.0.1"}} {
		run(t, "ip", "-n", c.ns, "route", "flush", "table", "local", "root", "127.0.0.0/8") // 127/8 is not local there any more
		run(t, "ip", "netns", "exec", c.ns, "sysctl", "-qw", "net.ipv4.conf."+c.dev+".route_localnet=1", "net.ipv4.conf.all.route_localnet=1")
		run(t, "ip", "-n", c.ns, "route", "add", "127.0.0.1/32", "via", c.via)
	}
	// Replies from 127.0.0.1 would be martians to the attacker: what counts
	// is whether a datagram arrives. 9476 stands for a host service on
	// loopback only (the controller's /metrics is one).
	check := func(when string) {
		t.Helper()
		if udpArrives(t, out, "127.0.0.1:9090", a, "10.72.0.2:90") {
			t.Fatalf("%s: another machine reached a 127.0.0.1-published port", when)
		}
		if udpArrives(t, b, "127.0.0.1:9090", a, "10.72.0.2:90") {
			t.Fatalf("%s: a container reached a 127.0.0.1-published port through its gateway", when)
		}
		if udpArrives(t, b, "127.0.0.1:9476", host, "127.0.0.1:9476") {
			t.Fatalf("%s: a container reached a host service on 127.0.0.1", when)
		}
	}
	check("both guards")

	// The pipeline alone: the raw table's rule removed by hand.
	guard := []string{"-t", "raw", "-D", "PREROUTING", "-d", "127.0.0.0/8", "!", "-i", "lo", "-m", "comment", "--comment", "ovsnet: loopback only from lo", "-j", "DROP"}
	if _, err := e.sb.Run("iptables", guard...); err != nil {
		t.Fatalf("the raw table holds no loopback guard: %v", err)
	}
	if udpArrives(t, b, "127.0.0.1:9476", host, "127.0.0.1:9476") {
		t.Fatal("without the raw rule, the pipeline let a container reach 127.0.0.1")
	}
	// iptables alone: reconcile puts the rule back; the pipeline's drop
	// flows removed by hand.
	if got := e.must("reconcile"); !strings.Contains(got, "loopback only from lo") {
		t.Fatalf("reconcile did not restore the loopback guard: %q", got)
	}
	for _, m := range []string{"ip,nw_dst=127.0.0.0/8", "ipv6,ipv6_dst=::1"} {
		if _, err := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "--strict", "del-flows", "br1", "table=10,priority=300,"+m); err != nil {
			t.Fatal(err)
		}
	}
	check("iptables alone")
	if got := e.must("reconcile"); !strings.Contains(got, "resynced flows on br1: 2 added") {
		t.Fatalf("reconcile did not restore the pipeline's loopback drops: %q", got)
	}
}

// udpArrives sends three datagrams from netns src to dial and says whether
// any reached a socket on listen in netns dst (within 1.5 s).
func udpArrives(t *testing.T, src, dial, dst, listen string) bool {
	t.Helper()
	var pc net.PacketConn
	inNetns(t, nsPath(dst), func() (err error) { pc, err = net.ListenPacket("udp", listen); return err })
	defer pc.Close()
	inNetns(t, nsPath(src), func() error {
		c, err := net.Dial("udp", dial)
		if err != nil {
			return err
		}
		defer c.Close()
		for range 3 {
			c.Write([]byte("probe"))
		}
		return nil
	})
	pc.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	_, _, err := pc.ReadFrom(make([]byte, 64))
	return err == nil
}

// A container's neighbour advertisements carry only its own addresses and
// MAC: one claiming a peer's address does not move the host's neighbour
// entry, while its own announcement still does.
func TestNeighbourAdvertGuard(t *testing.T) {
	e := newEnv(t)
	a, b := e.container(), e.container()
	e.must("add-br", "br1", "--subnet", "10.73.0.0/24", "--subnet", "fd73::/64", "--icc=false")
	macA, _ := net.ParseMAC("02:00:00:73:00:02")
	e.must("add-port", "br1", "eth1", a, "--ip", "--macaddress", macA.String())
	e.must("add-port", "br1", "eth1", b, "--ip", "--macaddress", "02:00:00:73:00:03")
	run(t, "ip", "netns", "exec", e.sb.Netns, "ping", "-6", "-c", "1", "-W", "2", "fd73::3")
	neigh := func(addr string) string {
		return run(t, "ip", "-n", e.sb.Netns, "neigh", "show", addr, "dev", "br1")
	}
	if n := neigh("fd73::3"); !strings.Contains(n, "02:00:00:73:00:03") {
		t.Fatalf("host's entry for fd73::3: %q", n)
	}
	// A stale, wrong entry for a's own address, for its announcement to fix.
	run(t, "ip", "-n", e.sb.Netns, "neigh", "replace", "fd73::2", "lladdr", "02:00:00:00:99:99", "dev", "br1", "nud", "stale")
	src := netip.MustParseAddr("fd73::2")
	for _, from := range []netip.Addr{src, netip.MustParseAddr("fe80::1")} {
		sendFrame(t, a, "eth1", neighbourAdvert(macA, from, netip.MustParseAddr("fd73::3"), macA))
	}
	// Then its own announcement: once it has landed, so had the others.
	sendFrame(t, a, "eth1", neighbourAdvert(macA, src, src, macA))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(neigh("fd73::2"), macA.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("a's own announcement did not reach the host: %q", neigh("fd73::2"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := neigh("fd73::3"); !strings.Contains(n, "02:00:00:73:00:03") {
		t.Fatalf("a container's advertisement poisoned the host's entry for a peer: %q", n)
	}
	run(t, "ip", "netns", "exec", e.sb.Netns, "ping", "-6", "-c", "1", "-W", "2", "fd73::3")
}
