package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	return udpFromArrives(t, src, "", dial, dst, listen)
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

// Intent that does not parse is reported by name and treated as strictly as
// it can be: a port whose address does not parse sends nothing and its
// address is not handed out again; a bridge whose icc does not parse stays
// isolated; one whose subnet does not parse keeps its NAT rules.
func TestBadIntentFailsClosed(t *testing.T) {
	e := newEnv(t)
	a, b, c, d := e.container(), e.container(), e.container(), e.container()
	e.must("add-br", "br1", "--subnet", "10.74.0.0/24", "--icc=false")
	pa := e.addPortJSON("add-port", "br1", "eth1", a, "--ip")
	e.must("add-port", "br1", "eth1", b, "--ip")
	e.must("add-port", "br1", "eth1", c, "--ip")
	ping(t, a, "10.74.0.1")
	noPing(t, b, "10.74.0.4")

	vsctl := func(args ...string) {
		t.Helper()
		if _, err := e.sb.Vsctl(args...); err != nil {
			t.Fatal(err)
		}
	}
	vsctl("set", "interface", pa.OVSPort, "external_ids:ovsnet-ipv4=garbage")
	vsctl("br-set-external-id", "br1", "ovsnet-icc", "FALSE")
	r := e.ovsnet("reconcile")
	if r.code == 0 || !strings.Contains(r.out, "interface "+pa.OVSPort+" ("+a+"/eth1) ovsnet-ipv4=\"garbage\"") ||
		!strings.Contains(r.out, `bridge br1 ovsnet-icc="FALSE"`) || !strings.Contains(r.err, "do not decode") {
		t.Fatalf("reconcile with bad intent: exit %d\n%s%s", r.code, r.out, r.err)
	}
	noPing(t, a, "10.74.0.1") // the port sends nothing
	noPing(t, b, "10.74.0.4") // still isolated
	ping(t, b, "10.74.0.1")   // the rest works
	pd := e.addPortJSON("add-port", "br1", "eth1", d, "--ip")
	if pd.Addresses[0] == "10.74.0.2/24" {
		t.Fatalf("an address whose intent does not parse was handed out again: %v", pd.Addresses)
	}

	// A subnet that does not parse: the bridge's NAT rules stay.
	rules := func() []string {
		var out []string
		for _, l := range ovsnetRules(e.iptablesSave()) {
			if strings.Contains(l, "bridge br1") {
				out = append(out, l)
			}
		}
		return out
	}
	before := rules()
	if len(before) == 0 {
		t.Fatal("no NAT rules for br1")
	}
	vsctl("br-set-external-id", "br1", "ovsnet-subnet", "garbage")
	if r := e.ovsnet("reconcile"); r.code == 0 || !strings.Contains(r.out, `bridge br1 ovsnet-subnet="garbage"`) {
		t.Fatalf("reconcile with a bad subnet: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if after := rules(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("a subnet that does not parse changed the bridge's NAT rules:\nbefore %v\nafter  %v", before, after)
	}

	// The controller reports it too, and stays healthy otherwise.
	e.startController("127.0.0.1:19474")
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := e.httpGet("127.0.0.1:19474", "/healthz")
		_, m := e.httpGet("127.0.0.1:19474", "/metrics")
		if code == 200 && strings.Contains(body, `ovsnet-ipv4="garbage"`) && strings.Contains(m, "ovsnet_bad_intent 3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("controller: /healthz %d %q, metrics:\n%s", code, body, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := e.must("status", "--controller", "127.0.0.1:19474"); !strings.Contains(out, `ovsnet-icc="FALSE"`) {
		t.Fatalf("status does not name the bad intent:\n%s", out)
	}
}

// A MAC already on the bridge (a container's or the bridge's own) is
// refused by add-port and add-ports, leaving nothing behind.
func TestMACConflictsRefused(t *testing.T) {
	e := newEnv(t)
	a, b := e.container(), e.container()
	e.must("add-br", "br1", "--subnet", "10.75.0.0/24")
	pa := e.addPortJSON("add-port", "br1", "eth1", a, "--ip")
	gw, err := e.sb.Vsctl("get", "bridge", "br1", "other_config:hwaddr")
	if err != nil {
		t.Fatal(err)
	}
	gwMAC := strings.Trim(strings.TrimSpace(gw), `"`)
	before := e.state(a, b)
	e.fails("MAC "+pa.MAC+" is already used on bridge br1 by "+a+"/eth1", "add-port", "br1", "eth1", b, "--ip", "--macaddress", strings.ToUpper(pa.MAC))
	e.fails("is bridge br1's own", "add-port", "br1", "eth1", b, "--ip", "--macaddress", gwMAC)
	list := t.TempDir() + "/list"
	if err := os.WriteFile(list, []byte("eth1 "+b+" --macaddress "+pa.MAC+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.fails("line 1 (eth1 "+b+"): MAC "+pa.MAC+" is already used", "add-ports", "br1", list, "--ip")
	if after := e.state(a, b); after != before {
		t.Fatalf("a refused MAC left changes:\nbefore %s\nafter  %s", before, after)
	}
	ping(t, a, "10.75.0.1")
}

// Rules rewritten in place (an option's negation moved) and duplicated
// jumps are drift: reconcile puts them right.
func TestNATDriftInPlace(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br1", "--subnet", "10.76.0.0/24")
	save := e.iptablesSave()
	n := 0
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "-A OVSNET-FORWARD") {
			n++
			if strings.Contains(l, "-i br1 ! -o br1") && strings.HasSuffix(l, "-j ACCEPT") {
				break
			}
		}
	}
	swapped := []string{"-R", "OVSNET-FORWARD", strconv.Itoa(n), "!", "-i", "br1", "-o", "br1", "-m", "comment", "--comment", "ovsnet: bridge br1", "-j", "ACCEPT"}
	if _, err := e.sb.Run("iptables", swapped...); err != nil {
		t.Fatal(err)
	}
	jump := []string{"-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-m", "comment", "--comment", "ovsnet: published ports", "-j", "OVSNET-DNAT"}
	if _, err := e.sb.Run("iptables", jump...); err != nil {
		t.Fatal(err)
	}
	out := e.must("reconcile")
	if !strings.Contains(out, "rebuilt filter/OVSNET-FORWARD") || !strings.Contains(out, "removed a duplicate of nat PREROUTING") {
		t.Fatalf("reconcile after rules rewritten in place:\n%s", out)
	}
	if got := e.iptablesSave(); got != save && (strings.Contains(got, "! -i br1 -o br1") || strings.Count(got, "-j OVSNET-DNAT") != 2) {
		t.Fatalf("iptables after reconcile:\n%s", got)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("second reconcile: %q", out)
	}
}

// A host right after install (no ovsnet bridge) converges: reconcile says
// nothing to change and exits 0, the controller is healthy, before any
// bridge and after the last one is deleted.
func TestControllerHealthyWithoutBridges(t *testing.T) {
	e := newEnv(t)
	if r := e.ovsnet("reconcile"); r.code != 0 || strings.TrimSpace(r.out) != "nothing to change" || r.err != "" {
		t.Fatalf("reconcile on a host without bridges: exit %d, %q, %q", r.code, r.out, r.err)
	}
	const addr = "127.0.0.1:19475"
	e.startController(addr)
	runs := func() int { return e.counter(addr, "ovsnet_reconcile_total") }
	healthyAfterRun := func(when string) {
		t.Helper()
		from := runs()
		deadline := time.Now().Add(20 * time.Second)
		for runs() < from+2 { // a whole run after this point
			if time.Now().After(deadline) {
				t.Fatalf("%s: the controller made no run", when)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, body := e.httpGet(addr, "/healthz"); code != 200 {
			t.Fatalf("%s: /healthz %d %q", when, code, body)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for code, _ := e.httpGet(addr, "/healthz"); code == 0; code, _ = e.httpGet(addr, "/healthz") {
		if time.Now().After(deadline) {
			t.Fatal("controller does not listen")
		}
		time.Sleep(100 * time.Millisecond)
	}
	healthyAfterRun("no bridge yet")
	e.must("add-br", "br1", "--subnet", "10.79.0.0/24")
	e.must("del-br", "br1")
	healthyAfterRun("after the last bridge was deleted")
}

// ovsnet's lock files are root's alone: another user cannot take them (and
// block ovsnet), a link is refused, and a held controller lock names the
// process holding it.
func TestLockFilesRootOnly(t *testing.T) {
	e := newEnv(t)
	if err := os.Chmod(e.sb.Dir, 0o755); err != nil { // as /var/run/openvswitch
		t.Fatal(err)
	}
	lock := e.sb.Dir + "/ovsnet.lock"
	if err := os.WriteFile(lock, nil, 0o644); err != nil { // as an older ovsnet left it
		t.Fatal(err)
	}
	e.must("show")
	if st, err := os.Stat(lock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode: %v %v", st.Mode(), err)
	}
	nobody := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "flock", "-n", "-x", lock, "true")
	if out, err := nobody.CombinedOutput(); err == nil {
		t.Fatalf("user nobody took ovsnet's lock: %s", out)
	}
	os.Remove(lock)
	if err := os.Symlink(e.sb.Dir+"/elsewhere", lock); err != nil {
		t.Fatal(err)
	}
	e.fails("not a link", "add-br", "br1")
	os.Remove(lock)

	held := exec.Command("flock", "-x", e.sb.Dir+"/ovsnet-controller.lock", "sleep", "30")
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { held.Process.Kill(); held.Wait() }()
	for {
		if b, _ := os.ReadFile("/proc/locks"); strings.Contains(string(b), " "+strconv.Itoa(held.Process.Pid)+" ") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.fails("is held by pid "+strconv.Itoa(held.Process.Pid)+" (flock, uid 0)", "controller", "--listen", "127.0.0.1:19476")
}

// add-br refuses subnets no container network can use or that another
// network already has, and a repeated add-br refuses settings other than
// the bridge's; add-port refuses an address of a family the bridge has no
// subnet of. None of it changes anything.
func TestBridgeSettingsChecked(t *testing.T) {
	e := newEnv(t)
	e.outside() // the host's uplink: 192.0.2.1/24
	a := e.container()
	e.must("add-br", "br1", "--subnet", "10.50.0.0/24")
	before := e.state(a)
	for subnet, want := range map[string]string{
		"10.50.0.0/25":     "subnet 10.50.0.0/25 overlaps bridge br1's 10.50.0.0/24",
		"10.0.0.0/8":       "overlaps bridge br1's",
		"192.0.2.128/25":   "overlaps the host's route to 192.0.2.0/24 (dev uplink)",
		"0.0.0.0/0":        "takes every address",
		"127.0.0.0/24":     "loopback",
		"224.0.0.0/24":     "multicast",
		"255.255.255.0/24": "reserved and broadcast",
		"fe80::/64":        "link-local",
	} {
		e.fails(want, "add-br", "br2", "--subnet", subnet)
	}
	e.fails("two IPv4 gateways", "add-br", "br2", "--subnet", "10.51.0.0/24", "--gateway", "10.51.0.1", "--gateway", "10.51.0.2")
	e.fails("the bridge has no IPv6 subnet", "add-port", "br1", "eth1", a, "--ip=fd00::5/64")
	for _, flag := range []string{"--icc=false", "--nat=false", "--mtu=1400"} {
		e.fails("already exists with other settings", "add-br", "br1", "--subnet", "10.50.0.0/24", flag)
	}
	e.must("add-br", "br1", "--subnet", "10.50.0.0/24", "--icc=true", "--nat=true")
	if after := e.state(a); after != before {
		t.Fatalf("refused settings left changes:\nbefore %s\nafter  %s", before, after)
	}
}

// A container's first attachment keeps its default route: a second one
// does not take it (its published port still answers), detaching the one
// that holds it hands it to the other, and --default-route takes it.
func TestDefaultRouteStays(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	a := e.container()
	e.must("add-br", "br1", "--subnet", "10.52.0.0/24")
	e.must("add-br", "br2", "--subnet", "10.53.0.0/24")
	e.must("add-port", "br1", "eth1", a, "--ip", "-p", "8085:80")
	e.must("add-port", "br2", "eth2", a, "--ip")
	route := func() string { return strings.TrimSpace(run(t, "ip", "-n", a, "-4", "route", "show", "default")) }
	if r := route(); !strings.Contains(r, "via 10.52.0.1 dev eth1") || strings.Count(r, "\n") != 0 {
		t.Fatalf("a second attachment moved the default route: %q", r)
	}
	if err := tcpVia(t, out, "192.0.2.1:8085", a, "10.52.0.2:80"); err != nil {
		t.Fatalf("published port after a second attachment: %v", err)
	}
	e.must("del-port", "br1", "eth1", a)
	if r := route(); !strings.Contains(r, "via 10.53.0.1 dev eth2") {
		t.Fatalf("detaching the interface holding the default route left %q", r)
	}
	e.must("add-port", "br1", "eth1", a, "--ip", "--default-route")
	if r := route(); !strings.Contains(r, "via 10.52.0.1 dev eth1") || strings.Count(r, "\n") != 0 {
		t.Fatalf("--default-route: %q", r)
	}
}

// A del-port or del-br killed with -9 at any point leaves what reconcile
// finishes: every container either has its interface and its OVS port or
// neither, no veth host end outlives its row, and no address is handed out
// while an interface still holds it.
func TestKilledDetachFinished(t *testing.T) {
	e := newEnv(t)
	cs := []string{e.container(), e.container(), e.container()}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 12; round++ {
		if r := e.ovsnet("add-br", "br1", "--subnet", "10.54.0.0/24"); r.code != 0 {
			t.Fatalf("round %d: add-br: %s", round, r.err)
		}
		for i, c := range cs {
			if !slices.Contains(links(t, c), "eth1") {
				typ := []string{"veth", otherType()}[(i+round)%2]
				e.must("add-port", "br1", "eth1", c, "--ip", "--type", typ, "-p", strconv.Itoa(9100+i)+":80")
			}
		}
		args := []string{"del-port", "br1", "eth1", cs[round%3]}
		if round%3 == 2 {
			args = []string{"del-br", "br1"}
		}
		cmd := e.sb.Command(ovsnetBin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if r := e.ovsnet("reconcile"); r.code != 0 {
			t.Fatalf("round %d (%v killed): reconcile: exit %d %s%s", round, args, r.code, r.out, r.err)
		}
		e.checkAttachments(fmt.Sprintf("round %d (%v killed)", round, args), cs)
	}
}

// checkAttachments checks that each container has eth1 exactly when OVSDB
// has its port, that no two share an address, and that the host holds no
// veth end without a row.
func (e *env) checkAttachments(when string, cs []string) {
	e.t.Helper()
	rows, err := e.sb.Vsctl("--bare", "--columns=name,external_ids", "find", "interface", "external_ids:ovsnet-owner=ovsnet")
	if err != nil {
		e.t.Fatal(err)
	}
	seen := map[string]string{}
	for _, c := range cs {
		has := slices.Contains(links(e.t, c), "eth1")
		if row := strings.Contains(rows, "container_id="+c+" ") || strings.Contains(rows, "container_id="+c+"\n"); has != row {
			e.t.Fatalf("%s: container %s has eth1: %v, OVS port: %v\n%s", when, c, has, row, rows)
		}
		for _, a := range addrs(e.t, c) {
			if !strings.HasPrefix(a, "eth1 ") {
				continue
			}
			if who, dup := seen[strings.Fields(a)[1]]; dup {
				e.t.Fatalf("%s: %s and %s both hold %s", when, who, c, a)
			}
			seen[strings.Fields(a)[1]] = c
		}
	}
	for _, l := range links(e.t, e.sb.Netns) {
		if strings.HasPrefix(l, "on") && !strings.Contains(rows, l) {
			e.t.Fatalf("%s: veth end %s has no OVS port", when, l)
		}
	}
}

// The small things: tagged frames from an access port go nowhere, a file
// that is not a list is not echoed, a publish on an address the host does
// not have says so, a failed attach gives its port number back, and a link
// whose end was detached shows as dangling.
func TestSmallHardening(t *testing.T) {
	e := newEnv(t)
	a, b := e.container(), e.container()
	e.must("add-br", "br1", "--subnet", "10.55.0.0/24", "--icc=false")
	pa := e.addPortJSON("add-port", "br1", "eth1", a, "--ip")
	e.must("add-port", "br1", "eth1", b, "--ip")
	gw, err := e.sb.Vsctl("get", "bridge", "br1", "other_config:hwaddr")
	if err != nil {
		t.Fatal(err)
	}
	pkt := "in_port=" + pa.OVSPort + ",dl_src=" + pa.MAC + ",dl_dst=" + strings.Trim(strings.TrimSpace(gw), `"`) + ",ip,nw_src=10.55.0.2,nw_dst=10.55.0.1"
	for _, c := range []struct {
		pkt  string
		drop bool
	}{{pkt, false}, {pkt + ",dl_vlan=5", true}} {
		out, err := e.sb.Run("ovs-appctl", "ofproto/trace", "br1", c.pkt)
		if err != nil || datapathDrops(out) != c.drop {
			t.Fatalf("trace %s: want dropped %v: %v\n%s", c.pkt, c.drop, err, out)
		}
	}

	secret := t.TempDir() + "/shadow"
	if err := os.WriteFile(secret, []byte("root:$y$j9T$Sup3rS3cretHash:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.ovsnet("add-ports", "br1", secret); r.code == 0 || !strings.Contains(r.err, "line 1: want INTERFACE CONTAINER") || strings.Contains(r.err, "S3cret") {
		t.Fatalf("add-ports of a file that is not a list: exit %d %q", r.code, r.err)
	}
	e.fails("line 1 is longer than 4096 bytes", "add-ports", "br1", "/dev/zero")

	next := func() string {
		out, err := e.sb.Vsctl("br-get-external-id", "br1", "ovsnet-next-ofport")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	c := e.container()
	before, was := e.state(a, b, c), next()
	e.fails("host address 1.2.3.4 is not an address of this host", "add-port", "br1", "eth1", c, "--ip", "-p", "1.2.3.4:8081:80")
	if after, now := e.state(a, b, c), next(); after != before || now != was {
		t.Fatalf("a failed add-port left changes (next port number %s, was %s):\nbefore %s\nafter  %s", now, was, before, after)
	}

	e.must("link", "br1", a, b)
	e.must("del-port", "br1", "eth1", b)
	if out := e.must("show", "br1"); !strings.Contains(out, "dangling: "+b+" not attached") {
		t.Fatalf("show does not mark a link to a detached container:\n%s", out)
	}
}

// Every intent key, tampered with by hand, leaves a container able to send
// nothing it could not send before: not to an isolated peer, not from an
// address that is not its own. Shown with packets after reconcile, key by
// key, each put back afterwards.
func TestEveryKeyTamperedFailsClosed(t *testing.T) {
	e := newEnv(t)
	a, b := e.container(), e.container()
	e.must("add-br", "br1", "--subnet", "10.59.0.0/24", "--subnet", "fd59::/64", "--icc=false")
	pa := e.addPortJSON("add-port", "br1", "eth1", a, "--ip", "-p", "9159:80")
	e.must("add-port", "br1", "eth1", b, "--ip")
	host := e.sb.Netns
	// a's container adds an address that is not its own, to spoof from.
	run(t, "ip", "-n", a, "addr", "add", "10.59.0.50/32", "dev", "eth1")
	contained := func(when string) {
		t.Helper()
		if udpArrives(t, a, "10.59.0.3:9999", b, "10.59.0.3:9999") {
			t.Fatalf("%s: a reached its isolated peer", when)
		}
		if udpFromArrives(t, a, "10.59.0.50:0", "10.59.0.1:9998", host, "10.59.0.1:9998") {
			t.Fatalf("%s: a sent from an address not its own", when)
		}
	}
	if !udpArrives(t, a, "10.59.0.1:9997", host, "10.59.0.1:9997") {
		t.Fatal("a does not reach its gateway")
	}
	contained("untouched")
	tamper := func(table, row, key string) {
		t.Helper()
		col := `external_ids:"` + key + `"`
		was, err := e.sb.Vsctl("--if-exists", "get", table, row, col)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.sb.Vsctl("set", table, row, col+"=garbage"); err != nil {
			t.Fatal(err)
		}
		e.ovsnet("reconcile")
		contained(table + " " + key + "=garbage")
		if was = strings.TrimSpace(was); was == "" {
			_, err = e.sb.Vsctl("remove", table, row, "external_ids", `"`+key+`"`)
		} else {
			_, err = e.sb.Vsctl("set", table, row, col+"="+was)
		}
		if err != nil {
			t.Fatal(err)
		}
		e.ovsnet("reconcile")
	}
	for _, k := range []string{"ovsnet-mac", "ovsnet-ipv4", "ovsnet-ipv6", "ovsnet-gateway", "ovsnet-mtu", "ovsnet-bridge",
		"ovsnet-type", "ovsnet-state", "ovsnet-owner", "container_id", "container_iface", "ovsnet-tx-offload", "ovsnet-publish"} {
		tamper("interface", pa.OVSPort, k)
	}
	for _, k := range []string{"ovsnet-icc", "ovsnet-subnet", "ovsnet-gateway", "ovsnet-nat", "ovsnet-ip-range", "ovsnet-mtu", "ovsnet-nd",
		"ovsnet-next-ofport", "ovsnet-ipv4-hint", "ovsnet-gen", "ovsnet-owner", "ovsnet-link:" + a + ">" + b} {
		tamper("bridge", "br1", k)
	}
	// Put back, it all works again.
	if r := e.ovsnet("reconcile"); r.code != 0 {
		t.Fatalf("reconcile after every key was put back: %s%s", r.out, r.err)
	}
	if !udpArrives(t, a, "10.59.0.1:9997", host, "10.59.0.1:9997") {
		t.Fatal("a does not reach its gateway after every key was put back")
	}
	contained("put back")
}

// udpFromArrives is udpArrives with the datagrams sent from laddr ("":
// the kernel's choice).
func udpFromArrives(t *testing.T, src, laddr, dial, dst, listen string) bool {
	t.Helper()
	var pc net.PacketConn
	inNetns(t, nsPath(dst), func() (err error) { pc, err = net.ListenPacket("udp", listen); return err })
	defer pc.Close()
	inNetns(t, nsPath(src), func() error {
		var la *net.UDPAddr
		if laddr != "" {
			var err error
			if la, err = net.ResolveUDPAddr("udp", laddr); err != nil {
				return err
			}
		}
		ra, err := net.ResolveUDPAddr("udp", dial)
		if err != nil {
			return err
		}
		c, err := net.DialUDP("udp", la, ra)
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

// A veth's host end is a bridge port only: on the userspace datapath
// ovs-vswitchd reads it with a packet socket, so the host's stack sees
// every frame too. It must not answer the container's ARP for the gateway
// (the container would then send to the host past the flows) nor take a
// packet from a source that is not the container's. A host end made
// without that (an older ovsnet's) is sealed by a full reconcile.
func TestVethHostEndSealed(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br1", "--subnet", "10.86.0.0/24")
	c := e.container()
	p := e.addPortJSON("add-port", "br1", "eth1", c, "--ip", "--type", "veth")
	run(t, "ip", "-n", c, "addr", "add", "10.86.0.77/32", "dev", "eth1")
	gwMAC := strings.TrimSpace(e.vsctlList("get", "bridge", "br1", "other_config:hwaddr"))
	check := func(when string) {
		t.Helper()
		for range 3 { // each ARP exchange is a race the host's stack would win at times
			run(t, "ip", "-n", c, "neigh", "flush", "dev", "eth1")
			ping(t, c, "10.86.0.1")
			if n := run(t, "ip", "-n", c, "neigh", "show", "10.86.0.1"); !strings.Contains(n, strings.Trim(gwMAC, `"`)) {
				t.Fatalf("%s: the container's entry for its gateway is not the bridge's MAC %s: %q", when, gwMAC, n)
			}
		}
		if udpFromArrives(t, c, "10.86.0.77:0", "10.86.0.1:9998", e.sb.Netns, "10.86.0.1:9998") {
			t.Fatalf("%s: a spoofed source reached the host", when)
		}
	}
	check("attached")
	for _, kv := range []string{"net.ipv4.conf." + p.OVSPort + ".arp_ignore=0", "net.ipv4.conf." + p.OVSPort + ".rp_filter=0"} {
		run(t, "ip", "netns", "exec", e.sb.Netns, "sysctl", "-qw", kv)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "kept the host's stack off veth host end "+p.OVSPort) {
		t.Fatalf("reconcile did not seal an open host end: %q", out)
	}
	check("sealed by reconcile")
}

// datapathDrops says whether an ofproto/trace's datapath actions deliver
// nothing: "drop", or only the port's flood meter.
func datapathDrops(trace string) bool {
	i := strings.LastIndex(trace, "Datapath actions: ")
	if i < 0 {
		return false
	}
	line, _, _ := strings.Cut(trace[i+len("Datapath actions: "):], "\n")
	for _, a := range strings.Split(strings.TrimSpace(line), ",") {
		if a != "drop" && !strings.HasPrefix(a, "meter(") {
			return false
		}
	}
	return true
}

// A detach finished late (its process died half-way) takes its own
// port's device out of the container, not another port's that has the
// interface's name by then: the row's MAC says which device is its. Here
// a row's interface name is pointed at another port's by hand.
func TestLateDetachSparesOtherDevice(t *testing.T) {
	onlyUserspace(t, "internal ports are taps in the container on the userspace datapath only")
	e := newEnv(t)
	e.must("add-br", "br1", "--subnet", "10.58.0.0/24")
	c := e.container()
	a := e.addPortJSON("add-port", "br1", "eth1", c, "--ip", "--type", "internal")
	b := e.addPortJSON("add-port", "br1", "eth2", c, "--ip", "--type", "internal")
	if _, err := e.sb.Vsctl("set", "interface", a.OVSPort, "external_ids:ovsnet-state=detaching", "external_ids:container_iface=eth2"); err != nil {
		t.Fatal(err)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "finished interrupted detach of "+a.OVSPort) {
		t.Fatalf("reconcile did not finish the detach: %q", out)
	}
	if !slices.Contains(links(t, c), "eth2") || !pings(c, "10.58.0.1") {
		t.Fatalf("the other port's eth2 was taken with the late detach: links %v", links(t, c))
	}
	eventually(t, 15*time.Second, "the detached port's own device gone with its row", func() bool { return !slices.Contains(links(t, c), "eth1") })
	if rows, _ := e.sb.Vsctl("--bare", "--columns=name", "find", "interface", "name="+b.OVSPort); strings.TrimSpace(rows) != b.OVSPort {
		t.Fatalf("the other port's row: %q", rows)
	}
}
