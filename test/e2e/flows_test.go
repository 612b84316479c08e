package e2e

import (
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tcpOpen tries one TCP connection from netns src to addr:port, where a
// listener in netns dst accepts it. It returns the dial error.
func tcpOpen(t *testing.T, src, dst, addr string, port int) error {
	t.Helper()
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	return tcpVia(t, src, hp, dst, hp)
}

// udpExchange sends a datagram from netns src to addr:port and waits for an
// echo from a server in netns dst (no server when echo is false: then a
// closed port's ICMP error is what comes back).
func udpExchange(t *testing.T, src, dst, addr string, port int, echo bool) error {
	t.Helper()
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	if !echo {
		dst = ""
	}
	return udpViaFrom(t, src, 0, hp, dst, hp)
}

func (e *env) verdict(args ...string) string {
	e.t.Helper()
	out := strings.TrimSpace(e.must(append([]string{"trace"}, args...)...))
	lines := strings.Split(out, "\n")
	last := lines[len(lines)-1]
	if n := strings.Count(out, "verdict:"); n != 1 || !strings.HasPrefix(last, "verdict: ") {
		e.t.Fatalf("trace must end with exactly one verdict line:\n%s", out)
	}
	return strings.TrimPrefix(last, "verdict: ")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// icc=false: containers reach the gateway but not each other, except along
// links, one way, on the listed ports; trace agrees with every packet.
func TestIsolationAndLinks(t *testing.T) {
	e := newEnv(t)
	c1, c2, c3 := e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.60.0.0/24", "--icc=false")
	for _, c := range []string{c1, c2, c3} {
		e.must("add-port", "br0", "eth1", c, "--ip")
	}
	a2, a3 := "10.60.0.3", "10.60.0.4"
	ping(t, c1, "10.60.0.1")
	ping(t, e.sb.Netns, "10.60.0.2")
	if v := e.verdict("br0", "--from", c1, "--to", "10.60.0.1"); v != "allowed" {
		t.Fatalf("trace to gateway: %s", v)
	}

	unlinkedDropped(e, c1, c2, a2)

	e.must("link", "br0", c1, c2, "--port", "5201/tcp")
	if err := tcpOpen(t, c1, c2, a2, 5201); err != nil {
		t.Fatalf("linked TCP: %v", err)
	}
	tcpTransfer(t, nsPath(c1), nsPath(c2), a2, 4<<20)
	if v := e.verdict("br0", "--from", c1, "--to", c2, "--proto", "tcp", "--dport", "5201"); v != "allowed" {
		t.Fatalf("trace of linked TCP: %s", v)
	}
	// Only that port, only that way.
	if err := tcpOpen(t, c1, c2, a2, 5202); err == nil {
		t.Fatal("link opened an unlisted port")
	}
	if err := tcpOpen(t, c2, c1, "10.60.0.2", 5201); err == nil {
		t.Fatal("link opened the reverse direction")
	}
	noPing(t, c1, a2)
	for _, v := range []string{
		e.verdict("br0", "--from", c1, "--to", c2, "--proto", "tcp", "--dport", "5202"),
		e.verdict("br0", "--from", c2, "--to", c1, "--proto", "tcp", "--dport", "5201"),
		e.verdict("br0", "--from", c1, "--to", c2),
	} {
		if !strings.HasPrefix(v, "dropped") {
			t.Fatalf("trace says %q where packets are dropped", v)
		}
	}

	// UDP with replies, and related ICMP (port unreachable) coming back.
	e.must("link", "br0", c1, c3, "--port", "5300/udp", "--port", "5301/udp")
	if err := udpExchange(t, c1, c3, a3, 5300, true); err != nil {
		t.Fatalf("linked UDP: %v", err)
	}
	if err := udpExchange(t, c1, c3, a3, 5301, false); err == nil || isTimeout(err) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("related ICMP port unreachable did not come back: %v", err)
	}
	// All protocols.
	e.must("link", "br0", c2, c3)
	ping(t, c2, a3)
	noPing(t, c3, a2)
	if v := e.verdict("br0", "--from", c2, "--to", c3); v != "allowed" {
		t.Fatalf("trace of an all-protocol link: %s", v)
	}
	show := e.must("show", "br0")
	for _, want := range []string{"link " + c1 + " -> " + c2 + " (5201/tcp)", "link " + c1 + " -> " + c3 + " (5300/udp,5301/udp)", "link " + c2 + " -> " + c3 + " (all)"} {
		if !strings.Contains(show, want) {
			t.Fatalf("show lacks %q:\n%s", want, show)
		}
	}

	e.must("unlink", "br0", c1, c2)
	if err := tcpOpen(t, c1, c2, a2, 5201); err == nil {
		t.Fatal("unlink left the link open")
	}
	if v := e.verdict("br0", "--from", c1, "--to", c2, "--proto", "tcp", "--dport", "5201"); !strings.HasPrefix(v, "dropped") {
		t.Fatalf("trace after unlink: %s", v)
	}
	e.fails("no link from "+c1+" to "+c2, "unlink", "br0", c1, c2)
	e.fails("has no interface on br0", "link", "br0", c1, "ovt-nobody")
	e.fails("bad port", "link", "br0", c1, c2, "--port", "99999")
	// Links survive a detach of their end and apply again on re-attach.
	e.must("del-port", "br0", "eth1", c3)
	e.must("add-port", "br0", "eth1", c3, "--ip")
	ping(t, c2, a3)
}

// unlinkedDropped: on an icc=false bridge, c1 reaches c2 (at a2) by no
// protocol, and trace says why.
func unlinkedDropped(e *env, c1, c2, a2 string) {
	t := e.t
	noPing(t, c1, a2)
	if err := tcpOpen(t, c1, c2, a2, 5201); err == nil {
		t.Fatal("TCP between unlinked containers got through")
	}
	if err := udpExchange(t, c1, c2, a2, 5300, true); !isTimeout(err) {
		t.Fatalf("UDP between unlinked containers: %v, want no answer", err)
	}
	for _, v := range []string{
		e.verdict("br0", "--from", c1, "--to", c2),
		e.verdict("br0", "--from", c1, "--to", c2, "--proto", "tcp", "--dport", "5201"),
		e.verdict("br0", "--from", c1, "--to", a2, "--proto", "udp", "--dport", "5300"),
	} {
		if !strings.HasPrefix(v, "dropped (table 41") || !strings.Contains(v, "no link allows this new connection") {
			t.Fatalf("trace of unlinked traffic: %q", v)
		}
	}
}

// icc=true: full connectivity within a VLAN, none across VLANs.
func TestVLANsAndICC(t *testing.T) {
	e := newEnv(t)
	c1, c2, c3, c4 := e.container(), e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.61.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ip")
	e.must("add-port", "br0", "eth1", c2, "--ip")
	e.must("add-port", "br0", "eth1", c3, "--ip", "--vlan", "10")
	e.must("add-port", "br0", "eth1", c4, "--ip", "--vlan", "10")
	ping(t, c1, "10.61.0.3")
	if err := tcpOpen(t, c2, c1, "10.61.0.2", 5201); err != nil {
		t.Fatalf("icc=true TCP: %v", err)
	}
	ping(t, c3, "10.61.0.5")
	noPing(t, c1, "10.61.0.4")
	noPing(t, c4, "10.61.0.2")
	if v := e.verdict("br0", "--from", c1, "--to", c2); v != "allowed" {
		t.Fatalf("trace within VLAN 0: %s", v)
	}
	if v := e.verdict("br0", "--from", c3, "--to", c4); v != "allowed" {
		t.Fatalf("trace within VLAN 10: %s", v)
	}
	if v := e.verdict("br0", "--from", c1, "--to", c3); !strings.HasPrefix(v, "dropped (table 30") {
		t.Fatalf("trace across VLANs: %s", v)
	}
}

// A container sending from another address or MAC, or claiming the
// gateway's or a neighbour's address in gratuitous ARP, reaches nobody and
// poisons no cache.
func TestSpoofGuard(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.62.0.0/24", "--subnet", "fd62::/64")
	e.must("add-port", "br0", "eth1", c1, "--ip", "--macaddress", "02:00:00:62:00:02")
	e.must("add-port", "br0", "eth1", c2, "--ip", "--macaddress", "02:00:00:62:00:03")
	ping(t, c1, "10.62.0.3")
	ping(t, c2, "10.62.0.1")
	ping(t, e.sb.Netns, "10.62.0.3")
	neigh := func(ns, addr string) string {
		return run(t, "ip", "-n", ns, "neigh", "show", addr)
	}
	gwMAC := strings.Fields(run(t, "ip", "-n", e.sb.Netns, "-br", "link", "show", "br0"))[2]
	if n := neigh(c2, "10.62.0.1"); !strings.Contains(n, gwMAC) {
		t.Fatalf("c2's entry for the gateway: %q (bridge MAC %s)", n, gwMAC)
	}

	// Another source address.
	run(t, "ip", "-n", c1, "addr", "add", "10.62.0.50/24", "dev", "eth1")
	if out, err := exec.Command("ip", "netns", "exec", c1, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", "10.62.0.50", "10.62.0.3").CombinedOutput(); err == nil {
		t.Fatalf("ping from a foreign address got through: %s", out)
	}
	run(t, "ip", "-n", c1, "addr", "del", "10.62.0.50/24", "dev", "eth1")
	// Gratuitous ARP claiming the gateway's and c2's addresses (arping
	// needs the address on the interface to send from it).
	dropped := e.spoofDrops("br0")
	for _, claim := range []string{"10.62.0.1", "10.62.0.3"} {
		run(t, "ip", "-n", c1, "addr", "add", claim+"/32", "dev", "eth1")
		run(t, "ip", "netns", "exec", c1, "busybox", "arping", "-U", "-c", "2", "-I", "eth1", "-s", claim, claim)
		run(t, "ip", "-n", c1, "addr", "del", claim+"/32", "dev", "eth1")
	}
	// Flow statistics reach OpenFlow from the datapath with some delay.
	now := e.spoofDrops("br0")
	for i := 0; i < 50 && now < dropped+4; i++ {
		time.Sleep(100 * time.Millisecond)
		now = e.spoofDrops("br0")
	}
	if now < dropped+4 {
		t.Fatalf("the spoof guard dropped %d packets during 4 forged ARPs", now-dropped)
	}
	if n := neigh(c2, "10.62.0.1"); !strings.Contains(n, gwMAC) {
		t.Fatalf("c2's gateway entry poisoned: %q", n)
	}
	if n := neigh(e.sb.Netns, "10.62.0.3"); !strings.Contains(n, "02:00:00:62:00:03") {
		t.Fatalf("host's entry for c2 poisoned: %q", n)
	}
	ping(t, c2, "10.62.0.1")
	// Another MAC.
	run(t, "ip", "-n", c1, "link", "set", "eth1", "address", "02:00:00:62:00:99")
	run(t, "ip", "-n", c1, "neigh", "flush", "all")
	noPing(t, c1, "10.62.0.3")
	noPing(t, c1, "10.62.0.1")
	run(t, "ip", "-n", c1, "link", "set", "eth1", "address", "02:00:00:62:00:02")
	ping(t, c1, "10.62.0.3")
	// IPv6 from a foreign address.
	run(t, "ip", "netns", "exec", c1, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "fd62::3")
	run(t, "ip", "-n", c1, "addr", "add", "fd62::50/64", "dev", "eth1", "nodad")
	if out, err := exec.Command("ip", "netns", "exec", c1, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-I", "fd62::50", "fd62::3").CombinedOutput(); err == nil {
		t.Fatalf("IPv6 ping from a foreign address got through: %s", out)
	}
}

var cookieRE = regexp.MustCompile(`cookie=(0x[0-9a-f]+)`)

// flowCounts counts the flows on a bridge per cookie.
func (e *env) flowCounts(bridge string) map[string]int {
	e.t.Helper()
	out, err := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", bridge, "--no-stats")
	if err != nil {
		e.t.Fatal(err)
	}
	n := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		if m := cookieRE.FindStringSubmatch(l); m != nil {
			n[m[1]]++
		}
	}
	return n
}

// At most 14 flows per port, none left after del-port; reconcile during a
// 20 ms ping repairs drift and loses no packet.
func TestFlowsPerPortAndResync(t *testing.T) {
	e := newEnv(t)
	c1, c2, c3 := e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.63.0.0/24", "--subnet", "fd63::/64", "--icc=false")
	e.must("add-br", "br4", "--subnet", "10.64.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ip")
	e.must("add-port", "br0", "eth1", c2, "--ip")
	e.must("add-port", "br4", "eth1", c3, "--ip")
	e.must("link", "br0", c1, c2)
	base := e.flowCounts("br0")
	bridge := base["0x100000000000000"]
	if bridge == 0 {
		t.Fatalf("no bridge flows: %v", base)
	}
	perPort := 0
	for c, n := range base {
		if strings.HasPrefix(c, "0x2") && len(c) == 17 {
			perPort++
			if n != 14 { // flows.PortFlows: 8, 4 holding its neighbour advertisements to its own, 2 passing TCP around its flood meter
				t.Fatalf("dual-stack port %s has %d flows, want 14", c, n)
			}
		}
	}
	if perPort != 2 {
		t.Fatalf("want flows for 2 ports, got %v", base)
	}
	for c, n := range e.flowCounts("br4") {
		if strings.HasPrefix(c, "0x2") && len(c) == 17 && n != 7 {
			t.Fatalf("IPv4 port %s has %d flows, want 7", c, n)
		}
	}
	e.must("del-port", "br0", "eth1", c2)
	after := e.flowCounts("br0")
	total := 0
	for _, n := range after {
		total += n
	}
	if total != bridge+14 {
		t.Fatalf("after del-port: %v (want only the bridge's %d flows and c1's 14; the link's flows go with c2)", after, bridge)
	}
	e.must("add-port", "br0", "eth1", c2, "--ip")
	ping(t, c1, "10.63.0.3")

	// Drift: a foreign flow that would open isolation, and a deleted one.
	if _, err := e.sb.Run("ovs-ofctl", "add-flow", "br0", "table=40,priority=1000,actions=NORMAL"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sb.Run("ovs-ofctl", "del-flows", "br0", "table=20,arp,arp_tpa=10.63.0.3"); err != nil {
		t.Fatal(err)
	}
	pinged := pingSteadily(t, c1, "10.63.0.3", 150)
	time.Sleep(500 * time.Millisecond)
	out := e.must("reconcile")
	if !strings.Contains(out, "resynced flows on br0: 1 added, 1 removed") {
		t.Fatalf("reconcile did not repair the drift: %q", out)
	}
	for i := 0; i < 3; i++ {
		e.must("reconcile")
		// Force full replacements while pinging.
		e.sb.Run("ovs-ofctl", "add-flow", "br0", "table=99,priority=1,actions=drop") // harmless: nothing resubmits to 99
		e.must("reconcile")
	}
	pinged("during resync")
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("reconcile after repair: %q", out)
	}
}

var packetsRE = regexp.MustCompile(`n_packets=(\d+)`)

// spoofDrops is how many packets the spoof guard's table miss dropped.
func (e *env) spoofDrops(bridge string) int {
	e.t.Helper()
	out, err := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", bridge, "table=10")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " priority=0 actions=load:0x2->NXM_NX_REG7[],resubmit(,60)") { // flows.DropSpoofed
			if m := packetsRE.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				return n
			}
		}
	}
	e.t.Fatalf("no table-miss flow in table 10:\n%s", out)
	return 0
}

// ARP requests and neighbour solicitations are answered by flows: a
// container that ignores them itself is still resolved, with its own MAC,
// and so is the gateway. Where the datapath cannot write ND options (the
// kernel's), solicitations are relayed to their target's owner instead.
func TestNeighboursAnsweredByFlows(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		e := newEnv(t)
		c1, c2 := e.container(), e.container()
		e.must("add-br", "br0", "--subnet", "10.65.0.0/24", "--subnet", "fd65::/64")
		if nd := e.bridgeKey("br0", "ovsnet-nd"); kernelDatapath {
			if nd != "relay" {
				t.Fatalf("kernel datapath (no nd_ext) recorded as %q, want relay", nd)
			}
			t.Skip("the kernel datapath cannot write ND options: solicitations are relayed (the relayed case)")
		} else if nd != "answer" {
			t.Fatalf("userspace datapath recorded as %q, want answer", nd)
		}
		e.must("add-port", "br0", "eth1", c1, "--ip")
		e.must("add-port", "br0", "eth1", c2, "--ip", "--macaddress", "02:00:00:65:00:03")
		// c2 answers no ARP and takes part in no IPv6 at all.
		run(t, "ip", "netns", "exec", c2, "sysctl", "-qw", "net.ipv4.conf.eth1.arp_ignore=8", "net.ipv6.conf.eth1.disable_ipv6=1")
		for _, a := range []string{"10.65.0.3", "fd65::3"} {
			e.resolves(c1, a, "02:00:00:65:00:03")
		}
		e.gatewayResolves(c1, "br0", "10.65.0.1", "fd65::1")
	})
	// Relayed: on the kernel datapath as probed, on the userspace one as
	// set by hand (a valid setting, which reconcile keeps). The bridge is
	// isolated: answers pass isolation, the pings themselves do not.
	t.Run("relayed", func(t *testing.T) {
		e := newEnv(t)
		c1, c2 := e.container(), e.container()
		e.must("add-br", "br0", "--subnet", "10.66.0.0/24", "--subnet", "fd66::/64", "--icc=false")
		if !kernelDatapath {
			e.vsctlList("set", "bridge", "br0", "external_ids:ovsnet-nd=relay")
			e.must("reconcile")
		}
		flows := e.dumpFlows("br0")
		if strings.Contains(flows, "nd_options_type") || !strings.Contains(flows, "table=22") {
			t.Fatalf("relaying bridge's flows:\n%s", flows)
		}
		e.must("add-port", "br0", "eth1", c1, "--ip", "--macaddress", "02:00:00:66:00:02")
		e.must("add-port", "br0", "eth1", c2, "--ip", "--macaddress", "02:00:00:66:00:03")
		e.resolves(c1, "fd66::3", "02:00:00:66:00:03")
		// The solicitation reached c2 itself: it learned the asker from it.
		if n := run(t, "ip", "-n", c2, "neigh", "show", "fd66::2"); !strings.Contains(n, "02:00:00:66:00:02") {
			t.Fatalf("c2 never saw c1's solicitation: %q", n)
		}
		e.gatewayResolves(c1, "br0", "10.66.0.1", "fd66::1")
		run(t, "ip", "netns", "exec", e.sb.Netns, "ping", "-6", "-c", "1", "-W", "2", "fd66::3")
		e.must("reconcile")
		if nd := e.bridgeKey("br0", "ovsnet-nd"); nd != "relay" {
			t.Fatalf("reconcile changed a valid ND setting to %q", nd)
		}
	})
}

// resolves pings a from container c (the reply does not matter) and
// checks c's neighbour entry for a holds mac.
func (e *env) resolves(c, a, mac string) {
	e.t.Helper()
	fam := "-4"
	if strings.Contains(a, ":") {
		fam = "-6"
	}
	exec.Command("ip", "netns", "exec", c, "ping", fam, "-c", "1", "-W", "1", a).Run()
	n := run(e.t, "ip", "-n", c, "neigh", "show", a)
	if !strings.Contains(n, mac) || strings.Contains(n, "INCOMPLETE") || strings.Contains(n, "FAILED") {
		e.t.Fatalf("%s not resolved to %s: %q", a, mac, n)
	}
}

// gatewayResolves checks container c reaches bridge's gateway addresses
// and resolves them to the bridge's MAC.
func (e *env) gatewayResolves(c, bridge string, gws ...string) {
	e.t.Helper()
	gwMAC := strings.Trim(e.vsctlList("get", "bridge", bridge, "other_config:hwaddr"), `"`)
	for _, a := range gws {
		fam := "-4"
		if strings.Contains(a, ":") {
			fam = "-6"
		}
		run(e.t, "ip", "netns", "exec", c, "ping", fam, "-c", "1", "-W", "2", a)
		if n := run(e.t, "ip", "-n", c, "neigh", "show", a); !strings.Contains(n, gwMAC) {
			e.t.Fatalf("gateway %s resolved to %q, want the bridge's %s", a, n, gwMAC)
		}
	}
}

// bridgeKey is one of bridge's external_ids ("" when unset).
func (e *env) bridgeKey(bridge, key string) string {
	e.t.Helper()
	out, err := e.sb.Vsctl("--if-exists", "get", "bridge", bridge, "external_ids:"+key)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Trim(strings.TrimSpace(out), `"`)
}

// dumpFlows is every flow of bridge, as ovs-ofctl prints them.
func (e *env) dumpFlows(bridge string) string {
	e.t.Helper()
	out, err := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", bridge)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}
