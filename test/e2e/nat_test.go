package e2e

import (
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// outside makes a namespace joined to the sandbox host by a veth: the
// host's uplink is 192.0.2.1, the outside 192.0.2.2, with no route to the
// container subnets.
func (e *env) outside() string {
	e.t.Helper()
	o := uniq("ovt-o")
	if err := sandbox.AddNetns(o); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sandbox.DelNetns(o) })
	run(e.t, "ip", "-n", e.sb.Netns, "link", "add", "uplink", "type", "veth", "peer", "name", "wan", "netns", o)
	run(e.t, "ip", "-n", e.sb.Netns, "addr", "add", "192.0.2.1/24", "dev", "uplink")
	run(e.t, "ip", "-n", e.sb.Netns, "link", "set", "uplink", "up")
	run(e.t, "ip", "-n", o, "addr", "add", "192.0.2.2/24", "dev", "wan")
	run(e.t, "ip", "-n", o, "link", "set", "wan", "up")
	return o
}

// tcpVia dials dial from netns src while netns dst listens on listen: the
// connection works only if something (DNAT) carries one to the other.
func tcpVia(t *testing.T, src, dial, dst, listen string) error {
	t.Helper()
	var ln net.Listener
	inNetns(t, nsPath(dst), func() (err error) { ln, err = net.Listen("tcp", listen); return err })
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var derr error
	inNetns(t, nsPath(src), func() error {
		c, err := net.DialTimeout("tcp", dial, 1500*time.Millisecond)
		if err == nil {
			c.SetDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 2)
			_, err = c.Read(buf)
			c.Close()
		}
		derr = err
		return nil
	})
	return derr
}

func udpVia(t *testing.T, src, dial, dst, listen string) error {
	t.Helper()
	return udpViaFrom(t, src, 0, dial, dst, listen)
}

// udpSend sends one datagram from a fixed source port, expecting nothing.
func udpSend(t *testing.T, src string, from int, dial string) {
	t.Helper()
	inNetns(t, nsPath(src), func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{Port: from}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dial)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("early"))
		return err
	})
}

// udpViaFrom sends a datagram from netns src (from source port from, 0 for
// any) to dial and waits for the echo of a server on listen in netns dst
// (no server when dst is "").
func udpViaFrom(t *testing.T, src string, from int, dial, dst, listen string) error {
	t.Helper()
	if dst != "" {
		var pc net.PacketConn
		inNetns(t, nsPath(dst), func() (err error) { pc, err = net.ListenPacket("udp", listen); return err })
		defer pc.Close()
		go func() {
			buf := make([]byte, 64)
			pc.SetDeadline(time.Now().Add(5 * time.Second))
			if n, from, err := pc.ReadFrom(buf); err == nil {
				pc.WriteTo(buf[:n], from)
			}
		}()
	}
	var rerr error
	inNetns(t, nsPath(src), func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{Port: from}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dial)))
		if err != nil {
			rerr = err
			return nil
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(1500 * time.Millisecond))
		c.Write([]byte("ping"))
		_, rerr = c.Read(make([]byte, 64))
		return nil
	})
	return rerr
}

func (e *env) iptablesSave() string {
	e.t.Helper()
	out, err := e.sb.Run("iptables-save")
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func ovsnetRules(save string) []string {
	var rs []string
	for _, l := range strings.Split(save, "\n") {
		if strings.Contains(l, "ovsnet") || strings.Contains(l, "OVSNET") {
			rs = append(rs, l)
		}
	}
	return rs
}

func TestNATAndPublishing(t *testing.T) {
	e := newEnv(t)
	k := &natCase{e: e, t: t, out: e.outside(), c1: e.container(), c2: e.container(), host: e.sb.Netns, c1addr: "10.70.0.2"}
	e.must("add-br", "br0", "--subnet", "10.70.0.0/24")
	e.must("add-port", "br0", "eth1", k.c1, "--ip", "-p", "8080:80", "-p", "127.0.0.1:9090:90", "-p", "5353:53/udp")
	e.must("add-port", "br0", "eth1", k.c2, "--ip")
	k.egressAndPublished()
	k.conflictsAndPicked()
	k.userChainAndRepairs()
	k.lateUDPAndTeardown()
}

// natCase is TestNATAndPublishing's host: br0 in NAT mode, c1 (c1addr)
// publishing TCP 8080, 127.0.0.1:9090 and UDP 5353, c2 publishing nothing,
// and the outside namespace out.
type natCase struct {
	e                         *env
	t                         *testing.T
	out, host, c1, c2, c1addr string
}

// egressAndPublished: egress is masqueraded; published ports answer from
// outside, the host and other containers, host-only ones from the host
// only, and a route to the subnet lets nothing else in.
func (k *natCase) egressAndPublished() {
	t := k.t
	// Egress: the outside has no route back, so this works only masqueraded.
	ping(t, k.c1, "192.0.2.2")
	if err := tcpVia(t, k.c2, "192.0.2.2:7000", k.out, "192.0.2.2:7000"); err != nil {
		t.Fatalf("egress TCP: %v", err)
	}

	// Published: from outside, from the host (both addresses), hairpin from
	// another container and from the container itself.
	for _, c := range []struct{ src, dial string }{
		{k.out, "192.0.2.1:8080"}, {k.host, "192.0.2.1:8080"}, {k.host, "10.70.0.1:8080"}, {k.c2, "192.0.2.1:8080"}, {k.c1, "192.0.2.1:8080"},
	} {
		if err := tcpVia(t, c.src, c.dial, k.c1, k.c1addr+":80"); err != nil {
			t.Fatalf("published TCP %s from %s: %v", c.dial, c.src, err)
		}
	}
	if err := udpVia(t, k.out, "192.0.2.1:5353", k.c1, k.c1addr+":53"); err != nil {
		t.Fatalf("published UDP from outside: %v", err)
	}
	// Host-only publishing.
	if err := tcpVia(t, k.host, "127.0.0.1:9090", k.c1, k.c1addr+":90"); err != nil {
		t.Fatalf("127.0.0.1 publishing from the host: %v", err)
	}
	if err := tcpVia(t, k.out, "192.0.2.1:9090", k.c1, k.c1addr+":90"); err == nil {
		t.Fatal("a 127.0.0.1 mapping is reachable from outside")
	}
	// Even with a route to the subnet, only published ports get in.
	run(t, "ip", "-n", k.out, "route", "add", "10.70.0.0/24", "via", "192.0.2.1")
	if err := tcpVia(t, k.out, k.c1addr+":80", k.c1, k.c1addr+":80"); err == nil {
		t.Fatal("an unpublished path reaches the container directly")
	}
	if err := tcpVia(t, k.out, "192.0.2.1:8080", k.c1, k.c1addr+":80"); err != nil {
		t.Fatalf("published TCP with a route present: %v", err)
	}
}

// conflictsAndPicked: taken host ports are refused; no host port picks a
// free one, which port reports; publishing it again changes nothing.
func (k *natCase) conflictsAndPicked() {
	e, t := k.e, k.t
	// Conflicts.
	e.fails("host port tcp 0.0.0.0:8080 is already published (by "+k.c1+"/eth1)", "publish", "br0", k.c2, "8080:80")
	e.fails("host port tcp 0.0.0.0:9090 overlaps 127.0.0.1:9090, already published (by "+k.c1+"/eth1)", "publish", "br0", k.c2, "9090:80")
	var ln net.Listener
	inNetns(t, nsPath(k.host), func() (err error) { ln, err = net.Listen("tcp", "0.0.0.0:7777"); return err })
	e.fails("host port tcp 0.0.0.0:7777 is in use by a host process", "publish", "br0", k.c2, "7777:80")
	ln.Close()
	e.fails("bad mapping", "publish", "br0", k.c2, "80/sctp")

	// No host port: a free one, reported by port.
	var got []struct {
		Mapping  string `json:"mapping"`
		HostPort int    `json:"host_port"`
	}
	json.Unmarshal([]byte(e.must("publish", "br0", k.c2, "81", "-o", "json")), &got)
	if len(got) != 1 || got[0].HostPort < 1024 {
		t.Fatalf("publish without host port: %+v", got)
	}
	hp := strconv.Itoa(got[0].HostPort)
	// Publishing again is publishing once: the same host port, no second
	// mapping.
	if again := strings.TrimSpace(e.must("publish", "br0", k.c2, "81")); !strings.Contains(again, hp) {
		t.Fatalf("publish 81 again: %q, want host port %s again", again, hp)
	}
	if p := strings.TrimSpace(e.must("port", "br0", k.c2)); p != "81/tcp -> 0.0.0.0:"+hp {
		t.Fatalf("port: %q", p)
	}
	if p := strings.TrimSpace(e.must("port", "br0", k.c1, "53/udp")); p != "53/udp -> 0.0.0.0:5353" {
		t.Fatalf("port 53/udp: %q", p)
	}
	if err := tcpVia(t, k.out, "192.0.2.1:"+hp, k.c2, "10.70.0.3:81"); err != nil {
		t.Fatalf("picked port: %v", err)
	}
}

// userChainAndRepairs: the administrator's chain comes first and survives
// reconcile; flushes and chain deletions are repaired, without duplicates.
func (k *natCase) userChainAndRepairs() {
	e, t := k.e, k.t
	// The administrator's chain comes first and survives reconcile.
	if _, err := e.sb.Run("iptables", "-I", "OVSNET-USER", "-s", "192.0.2.2", "-p", "tcp", "--dport", "80", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := tcpVia(t, k.out, "192.0.2.1:8080", k.c1, k.c1addr+":80"); err == nil {
		t.Fatal("OVSNET-USER rule did not take effect")
	}
	e.must("reconcile")
	if err := tcpVia(t, k.out, "192.0.2.1:8080", k.c1, k.c1addr+":80"); err == nil {
		t.Fatal("OVSNET-USER rule lost by reconcile")
	}
	if _, err := e.sb.Run("iptables", "-D", "OVSNET-USER", "-s", "192.0.2.2", "-p", "tcp", "--dport", "80", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}

	// Flushes and chain deletions are repaired, without duplicates.
	before := ovsnetRules(e.iptablesSave())
	for _, cmds := range [][][]string{
		{{"iptables", "-t", "nat", "-F"}},
		{{"iptables", "-t", "nat", "-F"}, {"iptables", "-t", "nat", "-X"}},
		{{"iptables", "-F"}},
	} {
		for _, c := range cmds {
			if _, err := e.sb.Run(c[0], c[1:]...); err != nil {
				t.Fatal(err)
			}
		}
		if err := tcpVia(t, k.out, "192.0.2.1:8080", k.c1, k.c1addr+":80"); err == nil && len(cmds[0]) > 2 && cmds[0][2] == "nat" {
			t.Fatal("published port still works after the nat table was flushed")
		}
		if r := e.must("reconcile"); strings.Contains(r, "nothing to change") {
			t.Fatalf("reconcile found nothing after %v", cmds)
		}
		if r := e.must("reconcile"); !strings.Contains(r, "nothing to change") {
			t.Fatalf("second reconcile changed: %q", r)
		}
		if after := ovsnetRules(e.iptablesSave()); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Fatalf("after %v and reconcile:\n%s\nwant:\n%s", cmds, strings.Join(after, "\n"), strings.Join(before, "\n"))
		}
		if err := tcpVia(t, k.out, "192.0.2.1:8080", k.c1, k.c1addr+":80"); err != nil {
			t.Fatalf("published port after repair: %v", err)
		}
		ping(t, k.c1, "192.0.2.2")
	}
}

// lateUDPAndTeardown: a UDP flow seen before its port was published follows
// it; unpublish, del-port and del-br leave no rule or reservation.
func (k *natCase) lateUDPAndTeardown() {
	e, t := k.e, k.t
	// A UDP flow the host saw before its port was published (conntrack holds
	// it, un-NATed) follows the new mapping at once: ovsnet flushes it.
	udpSend(t, k.out, 40001, "192.0.2.1:6000")
	e.must("publish", "br0", k.c2, "6000:60/udp")
	if err := udpViaFrom(t, k.out, 40001, "192.0.2.1:6000", k.c2, "10.70.0.3:60"); err != nil {
		t.Fatalf("UDP flow seen before publishing: %v", err)
	}

	// Unpublish, del-port, del-br.
	e.must("unpublish", "br0", k.c1, "8080:80")
	if err := tcpVia(t, k.out, "192.0.2.1:8080", k.c1, k.c1addr+":80"); err == nil {
		t.Fatal("unpublished port still reachable")
	}
	e.must("publish", "br0", k.c2, "8080:80") // free again
	e.must("del-port", "br0", "eth1", k.c1)
	if s := e.iptablesSave(); strings.Contains(s, k.c1+"/eth1") {
		t.Fatalf("del-port left rules:\n%s", strings.Join(ovsnetRules(s), "\n"))
	}
	e.must("del-br", "br0")
	if rs := ovsnetRules(e.iptablesSave()); len(rs) != 0 {
		t.Fatalf("del-br left rules:\n%s", strings.Join(rs, "\n"))
	}
	if out, err := e.sb.Vsctl("get", "Open_vSwitch", ".", "external_ids"); err != nil || strings.Contains(out, "hostport") {
		t.Fatalf("host port reservations left: %s %v", out, err)
	}
}
