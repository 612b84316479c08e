package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/attach"
)

// poolJSON is a bridge's warm pool as show -o json lists it.
type poolJSON struct {
	Name       string     `json:"name"`
	Containers []portJSON `json:"containers"`
	Pool       []portJSON `json:"pool"`
}

// pool reads bridge's pool's ports from show -o json.
func (e *env) pool(bridge string) []portJSON {
	e.t.Helper()
	var bs []poolJSON
	if err := json.Unmarshal([]byte(e.must("show", bridge, "-o", "json")), &bs); err != nil || len(bs) != 1 {
		e.t.Fatalf("show %s: %v", bridge, err)
	}
	return bs[0].Pool
}

// poolReady waits until bridge's pool holds n ready (waiting, down)
// ports of each type in types, and returns them.
func (e *env) poolReady(bridge string, n int, types ...string) []portJSON {
	e.t.Helper()
	var ps []portJSON
	eventually(e.t, 60*time.Second, bridge+"'s pool filled", func() bool {
		ps = e.pool(bridge)
		for _, typ := range types {
			if k := len(slices.DeleteFunc(slices.Clone(ps), func(p portJSON) bool { return p.Type != typ || p.State != "down" })); k != n {
				return false
			}
		}
		return len(ps) == n*len(types)
	})
	return ps
}

// occupy attaches a container to bridge at addr (given, so that it takes
// no pool's port): the bridge is in use, so the controller keeps a pool
// there.
func (e *env) occupy(bridge, addr string) string {
	e.t.Helper()
	c := e.container()
	e.must("add-port", bridge, "eth1", c, "--ip", addr)
	return c
}

func addrOf(p portJSON) string { return strings.Split(p.Addresses[0], "/")[0] }

// The warm pool: the controller keeps ports ready, nothing sent to them
// is answered before an attach takes one; an attach with an automatic
// address takes one (its OVS port, address and MAC) and works as any
// other (ping, TCP, the spoof guard, isolation and links), an explicit
// address bypasses it, the pool refills, and del-br takes every pool's
// port with the bridge.
func TestWarmPool(t *testing.T) {
	onlyUserspace(t, "its pools hold internal ports, which the kernel datapath cannot rename in a container (TestWarmPoolKernel)")
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.84.0.0/24")
	e.must("add-br", "br1", "--subnet", "10.85.0.0/24", "--icc=false")
	e.must("add-br", "br2", "--subnet", "10.90.0.0/29") // 5 addresses: a quarter is 1, too few for two types
	e.must("add-br", "br3", "--subnet", "10.91.0.0/24")
	c0 := e.occupy("br0", "10.84.0.200")
	e.occupy("br1", "10.85.0.200")
	e.occupy("br2", "10.90.0.6")
	const addr = "127.0.0.1:19484"
	ctl := e.startController(addr, "--pool", "2", "--pool-types", "veth,internal")
	before := e.poolReady("br0", 2, "veth", "internal")
	e.poolReady("br1", 2, "veth", "internal")
	if p := e.pool("br2"); len(p) != 0 {
		t.Fatalf("a pool took addresses of a /29: %+v", p)
	}
	// An idle bridge (no container, no attach) keeps no pool; its first
	// attach fills it.
	if p := e.pool("br3"); len(p) != 0 {
		t.Fatalf("an idle bridge got a pool: %+v", p)
	}
	e.occupy("br3", "10.91.0.200")
	e.poolReady("br3", 2, "veth", "internal")

	p1, p2 := e.warmPoolTakes(c0, before)
	c4, c5 := e.warmPoolRefills(addr, p1, p2)
	e.warmPoolRemoved(ctl, addr, c4, c5)
}

// warmPoolTakes: br0's pool (before) answers nothing (c0, attached at .200,
// asks); attaches take its ports (p1 internal, p2 veth), which work as any
// other; an explicit address takes the usual path; the spoof guard holds
// for a taken port.
func (e *env) warmPoolTakes(c0 string, before []portJSON) (p1, p2 portJSON) {
	t := e.t
	// Nothing answers for a pool's port: its container end is down in the
	// host, without an address.
	ping(t, c0, "10.84.0.1")
	for _, p := range before {
		noPing(t, c0, addrOf(p))
	}

	// Taken: an internal port (the userspace datapath's default) and a veth.
	c1, c2 := e.container(), e.container()
	p1 = e.addPortJSON("add-port", "br0", "eth1", c1, "--ip")
	p2 = e.addPortJSON("add-port", "br0", "eth1", c2, "--ip", "--type", "veth")
	for _, p := range []portJSON{p1, p2} {
		i := slices.IndexFunc(before, func(q portJSON) bool { return q.OVSPort == p.OVSPort })
		if i < 0 || before[i].Type != p.Type || before[i].Addresses[0] != p.Addresses[0] || before[i].MAC != p.MAC {
			t.Fatalf("%s was not taken from the pool %+v: %+v", p.Container, before, p)
		}
	}
	if got := links(t, c1); !slices.Contains(got, "eth1") {
		t.Fatalf("%s has no eth1: %v", c1, got)
	}
	ping(t, c1, addrOf(p2))
	ping(t, c2, "10.84.0.1")
	ping(t, c0, addrOf(p1))
	tcpTransfer(t, nsPath(c1), nsPath(c2), addrOf(p2), 4<<20)

	// An explicit address, and a pool that has none left of a type, take
	// the usual path.
	c3 := e.container()
	p3 := e.addPortJSON("add-port", "br0", "eth1", c3, "--ip", "10.84.0.50")
	if slices.ContainsFunc(before, func(q portJSON) bool { return q.OVSPort == p3.OVSPort }) {
		t.Fatalf("an explicit address took a pool's port: %+v", p3)
	}
	ping(t, c3, addrOf(p1))

	// The spoof guard holds for a taken port.
	run(t, "ip", "-n", c2, "addr", "add", "10.84.0.77/32", "dev", "eth1")
	if udpFromArrives(t, c2, "10.84.0.77:0", "10.84.0.1:9998", e.sb.Netns, "10.84.0.1:9998") {
		fl, _ := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", "br0")
		po, _ := e.sb.Vsctl("--columns=name,ofport,ofport_request,external_ids", "list", "interface", p2.OVSPort)
		t.Fatalf("a pool-taken port sent from an address not its own %+v\n%s\n%s", p2, po, fl)
	}
	if !udpArrives(t, c2, "10.84.0.1:9997", e.sb.Netns, "10.84.0.1:9997") {
		t.Fatal("a pool-taken port does not reach its gateway")
	}
	return p1, p2
}

// warmPoolRefills: isolation and links hold on br1's taken ports (c4, c5,
// returned); br0's pool refills with other ports, counted by show and the
// metrics; an explicit address a pool's
// port holds takes it when the type matches, else the port leaves.
func (e *env) warmPoolRefills(addr string, p1, p2 portJSON) (c4, c5 string) {
	t := e.t
	// Isolation and links, as for any port.
	c4, c5 = e.container(), e.container()
	p4 := e.addPortJSON("add-port", "br1", "eth1", c4, "--ip")
	p5 := e.addPortJSON("add-port", "br1", "eth1", c5, "--ip", "--type", "veth")
	noPing(t, c4, addrOf(p5))
	e.must("link", "br1", c4, c5)
	ping(t, c4, addrOf(p5))
	if udpArrives(t, c5, addrOf(p4)+":9996", c4, addrOf(p4)+":9996") {
		t.Fatal("a link let its destination open connections back")
	}

	// Refilled, with other ports.
	after := e.poolReady("br0", 2, "veth", "internal")
	for _, p := range after {
		if p.OVSPort == p1.OVSPort || p.OVSPort == p2.OVSPort {
			t.Fatalf("the pool still lists a taken port: %+v", p)
		}
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("state after takes and refills needs repair: %q", out)
	}
	if show := e.must("show", "br0"); !strings.Contains(show, "warm pool (ovsnet controller --pool): 2 internal down, 2 veth down") {
		t.Fatalf("show does not count the pool:\n%s", show)
	}
	if n := e.counter(addr, "ovsnet_pool_ready_ports"); n != 12 { // br0, br1, br3: 2 of each type
		t.Fatalf("ovsnet_pool_ready_ports = %d, want 12", n)
	}

	// An explicit address a pool's port holds takes that port when the
	// type is the same; else the port leaves the pool and the attach gets
	// the address.
	var v, in portJSON
	for _, p := range after {
		if p.Type == "veth" {
			v = p
		} else {
			in = p
		}
	}
	c6, c7 := e.container(), e.container()
	if p6 := e.addPortJSON("add-port", "br0", "eth1", c6, "--ip", addrOf(v), "--type", "veth"); p6.OVSPort != v.OVSPort {
		t.Fatalf("--ip %s (a pool's veth's) did not take it: %+v", addrOf(v), p6)
	}
	if p7 := e.addPortJSON("add-port", "br0", "eth1", c7, "--ip", addrOf(in), "--type", "veth"); p7.OVSPort == in.OVSPort || addrOf(p7) != addrOf(in) {
		t.Fatalf("--ip %s (a pool's internal port's) as a veth: %+v", addrOf(in), p7)
	}
	ping(t, c6, addrOf(in))
	return c4, c5
}

// With a warm pool, addresses still go lowest first, under churn too: the
// pool holds the lowest free ones and an attach takes its lowest port; a
// port detached on its own goes back to the pool at its address (its OVS
// port, number and flows kept; its link out of the container), so the
// next attach takes it from there; a port unlike the pool's (its own MAC)
// is deleted, and its address goes to the next attach on a fresh port; a
// container attached again after a detach gets its address back.
func TestWarmPoolLowestFirst(t *testing.T) {
	onlyUserspace(t, "its pools hold internal ports, which the kernel datapath cannot rename in a container")
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.86.0.0/24")
	e.occupy("br0", "10.86.0.200")
	e.startController("127.0.0.1:19489", "--pool", "3")
	before := e.poolReady("br0", 3, "internal")
	got := []string{}
	for _, p := range before {
		got = append(got, addrOf(p))
	}
	if slices.Sort(got); strings.Join(got, " ") != "10.86.0.2 10.86.0.3 10.86.0.4" {
		t.Fatalf("the pool holds %v, want the lowest free: .2 .3 .4", got)
	}
	fromPool := func(p portJSON) bool {
		return slices.ContainsFunc(before, func(q portJSON) bool { return q.OVSPort == p.OVSPort })
	}
	c1, c2, c3, c4, c5 := e.container(), e.container(), e.container(), e.container(), e.container()
	p1 := e.addPortJSON("add-port", "br0", "eth1", c1, "--ip")
	p2 := e.addPortJSON("add-port", "br0", "eth1", c2, "--ip")
	if addrOf(p1) != "10.86.0.2" || addrOf(p2) != "10.86.0.3" || !fromPool(p1) || !fromPool(p2) {
		t.Fatalf("two attaches got %s and %s (from the pool: %v %v), want .2 and .3 from the pool", addrOf(p1), addrOf(p2), fromPool(p1), fromPool(p2))
	}

	// A port unlike the pool's (here: its container has a link) is
	// deleted; its address goes to the next attach, on a fresh port.
	e.must("link", "br0", c1, c2)
	e.must("del-port", "br0", "eth1", c2)
	if slices.ContainsFunc(e.pool("br0"), func(q portJSON) bool { return q.OVSPort == p2.OVSPort }) {
		t.Fatalf("a linked container's port went back to the pool: %+v", e.pool("br0"))
	}
	p3 := e.addPortJSON("add-port", "br0", "eth1", c3, "--ip")
	if addrOf(p3) != "10.86.0.3" || p3.OVSPort == p2.OVSPort || fromPool(p3) {
		t.Fatalf("after .3 was freed the next attach got %s on %s, want .3 on a fresh port", addrOf(p3), p3.OVSPort)
	}

	// A port like the pool's goes back to it (its published port gone),
	// and the next attach takes it.
	e.must("unlink", "br0", c1, c2)
	e.must("publish", "br0", c1, "18094:80")
	if !strings.Contains(e.iptablesSave(), "18094") {
		t.Fatalf("publish did not add its rule: %s", e.iptablesSave())
	}
	e.must("del-port", "br0", "eth1", c1)
	if strings.Contains(e.iptablesSave(), "18094") {
		t.Fatalf("a port returned to the pool kept its published port's rule: %s", e.iptablesSave())
	}
	if slices.Contains(links(t, c1), "eth1") {
		t.Fatalf("%s still has eth1 after del-port", c1)
	}
	if !slices.ContainsFunc(e.pool("br0"), func(q portJSON) bool { return q.OVSPort == p1.OVSPort && addrOf(q) == "10.86.0.2" && q.State == "down" }) {
		t.Fatalf("%s's port (%s, .2) is not the pool's after del-port: %+v", c1, p1.OVSPort, e.pool("br0"))
	}
	p4 := e.addPortJSON("add-port", "br0", "eth1", c4, "--ip")
	if addrOf(p4) != "10.86.0.2" || p4.OVSPort != p1.OVSPort || p4.Ofport != p1.Ofport {
		t.Fatalf("after .2 went back to the pool the next attach got %s on %s (%d), want .2 on %s (%d)", addrOf(p4), p4.OVSPort, p4.Ofport, p1.OVSPort, p1.Ofport)
	}
	if p5 := e.addPortJSON("add-port", "br0", "eth1", c5, "--ip"); addrOf(p5) != "10.86.0.4" || !fromPool(p5) {
		t.Fatalf("then the pool's lowest, .4, was not taken: %+v", p5)
	}
	ping(t, c4, "10.86.0.4") // the returned port carries traffic
	ping(t, c4, "10.86.0.3")

	e.must("del-port", "br0", "eth1", c3)
	if p3 = e.addPortJSON("add-port", "br0", "eth1", c3, "--ip"); addrOf(p3) != "10.86.0.3" {
		t.Fatalf("a container attached again got %s, want its 10.86.0.3 back", addrOf(p3))
	}
	ping(t, c3, "10.86.0.2")
	// c3's fresh port (.3's, named for c3:eth1) is the pool's again: a
	// fresh attach of c3:eth1 does not collide with its name.
	e.must("del-port", "br0", "eth1", c3)
	if p := e.addPortJSON("add-port", "br0", "eth1", c3, "--ip", "10.86.0.150/24"); addrOf(p) != "10.86.0.150" {
		t.Fatalf("c3 attached again at .150: %+v", p)
	}
	ping(t, c3, "10.86.0.2")
	e.poolReady("br0", 3, "internal") // one over its size after a return: the highest goes
}

// warmPoolRemoved: --pool 0 removes the pool and a controller with one
// makes it again; del-br takes the pool's ports with the bridge.
func (e *env) warmPoolRemoved(ctl *exec.Cmd, addr, c4, c5 string) {
	t := e.t
	// --pool 0 removes the pool; a controller with one makes it again.
	ctl.Process.Kill()
	ctl.Wait()
	ctl = e.startController(addr, "--pool", "0")
	eventually(t, 30*time.Second, "--pool 0 removing the pool", func() bool { return len(e.pool("br0"))+len(e.pool("br1")) == 0 })
	ctl.Process.Kill()
	ctl.Wait()
	e.startController(addr, "--pool", "2", "--pool-types", "veth,internal")
	e.poolReady("br1", 2, "veth", "internal")

	// del-br takes the pool's ports with the bridge, which the controller
	// does not make again.
	e.must("del-br", "br0")
	e.must("del-port", "br1", "eth1", c4)
	e.must("del-port", "br1", "eth1", c5)
	e.must("del-br", "br1")
	e.must("del-br", "br2")
	e.must("del-br", "br3")
	time.Sleep(2 * time.Second) // a resync or two (--resync 1s)
	if hp := e.hostPorts(); len(hp) != 0 {
		t.Fatalf("host links left after del-br: %v", hp)
	}
	if rows := e.vsctlList("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-pool=true"); strings.TrimSpace(rows) != "" {
		t.Fatalf("pool rows left after del-br: %s", rows)
	}
	for _, l := range links(t, e.sb.Netns) {
		if strings.HasPrefix(l, "op") {
			t.Fatalf("a pool's veth end outlived its bridge: %s", l)
		}
	}
}

// checkPool checks that every pool's port has its devices in the host (a
// veth's two ends, an internal port's tap) and that no pool's veth end
// outlived its row.
func (e *env) checkPool(when string) {
	e.t.Helper()
	rows := e.vsctlList("--bare", "--columns=name,type", "find", "interface", "external_ids:ovsnet-pool=true")
	host := links(e.t, e.sb.Netns)
	names := map[string]bool{}
	for _, f := range strings.Split(strings.TrimSpace(rows), "\n\n") {
		ff := strings.Fields(f)
		if len(ff) == 0 {
			continue
		}
		names[ff[0]] = true
		need := []string{ff[0]}
		if len(ff) == 1 { // a veth: type ""
			need = append(need, "op"+ff[0][2:])
		}
		for _, n := range need {
			if !slices.Contains(host, n) {
				e.t.Fatalf("%s: pool's port %s has no %s in the host: %v", when, ff[0], n, host)
			}
		}
	}
	for _, l := range host {
		if strings.HasPrefix(l, "op") && !names["on"+l[2:]] {
			e.t.Fatalf("%s: pool's veth end %s has no row", when, l)
		}
	}
}

// kill -9 of the controller while it fills its pool, or while it attaches
// from it, leaves what reconcile finishes: containers with their
// interface and port or neither, no address held twice, every pool's port
// whole, nothing leaked; the CLI whose request was lost finishes its
// attach itself.
func TestWarmPoolKilled(t *testing.T) {
	onlyUserspace(t, "its pools hold internal ports, which the kernel datapath cannot rename in a container (TestWarmPoolKernel)")
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.87.0.0/24")
	e.occupy("br0", "10.87.0.200")
	cs := []string{e.container(), e.container(), e.container()}
	// A fill killed after it made a veth and before its row: reconcile
	// removes the veth, however rarely a kill below falls there.
	run(t, "ip", "-n", e.sb.Netns, "link", "add", "on0123456789ab", "type", "veth", "peer", "name", "op0123456789ab")
	if out := e.must("reconcile"); !strings.Contains(out, "on0123456789ab (leaked veth or tap)") {
		t.Fatalf("reconcile with a leaked veth: %q", out)
	}
	e.checkPool("a leaked veth")
	rng := rand.New(rand.NewPCG(3, 4))
	// killAt kills ctl once a row matching find is seen (and a random
	// moment more), or when the wait gives up.
	killAt := func(ctl *exec.Cmd, find ...string) bool {
		defer ctl.Process.Signal(syscall.SIGKILL)
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
			if rows, _ := e.sb.Vsctl(append([]string{"--bare", "--columns=name", "find", "interface"}, find...)...); strings.TrimSpace(rows) != "" {
				time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
				return true
			}
		}
		return false
	}
	caught := 0
	for round := range 8 {
		c := cs[round%3]
		if round%2 == 0 {
			e.must("controller", "--drain")
			ctl := e.startController("127.0.0.1:19485", "--pool", "40", "--pool-types", "veth,internal") // a fill long enough to be caught
			if killAt(ctl, "external_ids:ovsnet-pool=true", "external_ids:ovsnet-state=attaching") {     // mid-fill
				caught++
			}
			ctl.Wait()
		} else {
			ctl := e.startController("127.0.0.1:19485", "--pool", "3", "--pool-types", "veth,internal")
			e.poolReady("br0", 3, "veth", "internal") // shrunk from a fill's 40, or made
			if slices.Contains(links(t, c), "eth1") {
				e.must("del-port", "br0", "eth1", c)
			}
			typ := []string{"veth", "internal"}[round/2%2]
			add := e.sb.Command(ovsnetBin, "add-port", "br0", "eth1", c, "--ip", "--type", typ)
			var out strings.Builder
			add.Stdout, add.Stderr = &out, &out
			if err := add.Start(); err != nil {
				t.Fatal(err)
			}
			if killAt(ctl, "external_ids:container_id="+c, "external_ids:ovsnet-state=attaching") { // mid-take
				caught++
			}
			ctl.Wait()
			if err := add.Wait(); err != nil {
				t.Fatalf("round %d: add-port whose controller was killed: %v %s", round, err, out.String())
			}
		}
		r := e.ovsnet("reconcile")
		if r.code != 0 {
			t.Fatalf("round %d: reconcile: exit %d %s%s", round, r.code, r.out, r.err)
		}
		when := fmt.Sprintf("round %d", round)
		e.checkAttachments(when, cs)
		e.checkPool(when)
	}
	if caught < 4 {
		t.Fatalf("only %d of 8 kills fell while a port was attaching: the test proves little", caught)
	}
	e.startController("127.0.0.1:19485", "--pool", "3", "--pool-types", "veth,internal")
	e.poolReady("br0", 3, "veth", "internal")
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("after the rounds: %q", out)
	}
}

// A CNI ADD (automatic addressing, its default) through the controller
// takes a pool's port; CHECK passes on it and DEL removes it.
func TestCNIFromPool(t *testing.T) {
	onlyUserspace(t, "its pools hold internal ports, which the kernel datapath cannot rename in a container (TestWarmPoolKernel)")
	e := newEnv(t)
	e.startController("127.0.0.1:19486", "--resync", "1h", "--pool", "2") // the default type only: internal here
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"ovt-pool","type":"ovsnet","bridge":"br-cp","subnet":"10.88.0.0/24","ovsdb":%q}`, e.sb.DB())
	a, b := e.container(), e.container()
	if out, err := e.plugin("ADD", "cp-a", nsPath(a), conf); err != nil {
		t.Fatalf("ADD a: %v %s", err, out)
	}
	pool := e.poolReady("br-cp", 2, "internal")
	out, err := e.plugin("ADD", "cp-b", nsPath(b), conf)
	if err != nil {
		t.Fatalf("ADD b: %v %s", err, out)
	}
	got := cniAddress(t, out)
	if !slices.ContainsFunc(pool, func(p portJSON) bool { return p.Type == "internal" && addrOf(p) == got }) {
		t.Fatalf("ADD b got %s, not a pool's internal port's address: %+v", got, pool)
	}
	ping(t, a, got)
	check := strings.TrimSuffix(conf, "}") + `,"prevResult":` + out + "}"
	if out, err := e.plugin("CHECK", "cp-b", nsPath(b), check); err != nil {
		t.Fatalf("CHECK of a pool-taken port: %v %s", err, out)
	}
	if out, err := e.plugin("DEL", "cp-b", nsPath(b), conf); err != nil {
		t.Fatalf("DEL: %v %s", err, out)
	}
	if rows := e.vsctlList("--bare", "--columns=name", "find", "interface", "external_ids:container_id=cp-b"); strings.TrimSpace(rows) != "" {
		t.Fatalf("DEL left %s", rows)
	}
	if slices.Contains(links(t, b), "eth0") {
		t.Fatal("DEL left eth0 in the container")
	}
}

// A Docker network's bridge keeps veths in its pool, at the lowest free
// addresses, their container ends waiting in dockerd's namespace (here
// not OVS's): an endpoint whose address (docker run --ip, or Docker's
// IPAM's lowest) a pool's veth holds takes that port, its waiting end
// renamed there to the endpoint's name; a removed container's port goes
// back to the pool, and the next container takes it.
func TestDockerFromPool(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	driver := uniq("ovsnet-p")
	e.servePlugin(driver, "--pool", "2") // veths on a Docker network's bridge, whatever its default type
	net := dockerNet(t, driver, "--subnet", "10.89.0.0/24")
	var bs []poolJSON
	if err := json.Unmarshal([]byte(e.must("show", "-o", "json")), &bs); err != nil || len(bs) != 1 {
		t.Fatalf("show: %v %+v", err, bs)
	}
	if p := e.pool(bs[0].Name); len(p) != 0 {
		t.Fatalf("a Docker network with no container got a pool: %+v", p)
	}
	first := dockerOn(t, net, "--ip", "10.89.0.200") // its first container: the pool fills
	pool := e.poolReady(bs[0].Name, 2, "veth")
	for _, p := range pool { // where dockerd takes them: the take is a rename
		if !slices.Contains(links(t, ""), attach.PoolPeer(p.OVSPort)) {
			t.Fatalf("pool's veth %s does not wait in dockerd's namespace: %v", p.OVSPort, links(t, ""))
		}
	}
	a := dockerOn(t, net, "--ip", addrOf(pool[0]))
	b := dockerOn(t, net)
	if err := json.Unmarshal([]byte(e.must("show", "-o", "json")), &bs); err != nil || len(bs) != 1 {
		t.Fatalf("show: %v", err)
	}
	if !slices.ContainsFunc(bs[0].Containers, func(p portJSON) bool { return p.OVSPort == pool[0].OVSPort && addrOf(p) == addrOf(pool[0]) }) {
		t.Fatalf("the endpoint did not take the pool's port %+v: %+v", pool[0], bs[0].Containers)
	}
	// Docker's IPAM picks the lowest free address, which the pool holds.
	if !slices.ContainsFunc(bs[0].Containers, func(p portJSON) bool { return p.OVSPort == pool[1].OVSPort && addrOf(p) == addrOf(pool[1]) }) {
		t.Fatalf("the endpoint Docker's IPAM addressed did not take the pool's other port %+v: %+v", pool[1], bs[0].Containers)
	}
	run(t, "docker", "exec", a, "ping", "-c", "2", "-W", "2", b)
	run(t, "docker", "exec", b, "ping", "-c", "2", "-W", "2", a)

	// A removed container's port goes back to the pool, its end waiting in
	// dockerd's namespace again; the next container takes it.
	run(t, "docker", "rm", "-f", a)
	if !slices.ContainsFunc(e.pool(bs[0].Name), func(p portJSON) bool { return p.OVSPort == pool[0].OVSPort && p.State == "down" }) {
		t.Fatalf("%s's port %s is not the pool's after docker rm: %+v", a, pool[0].OVSPort, e.pool(bs[0].Name))
	}
	if !slices.Contains(links(t, ""), attach.PoolPeer(pool[0].OVSPort)) {
		t.Fatalf("the returned port's end does not wait in dockerd's namespace: %v", links(t, ""))
	}
	c := dockerOn(t, net)
	if err := json.Unmarshal([]byte(e.must("show", "-o", "json")), &bs); err != nil || len(bs) != 1 {
		t.Fatalf("show: %v", err)
	}
	if !slices.ContainsFunc(bs[0].Containers, func(p portJSON) bool { return p.OVSPort == pool[0].OVSPort && addrOf(p) == addrOf(pool[0]) }) {
		t.Fatalf("the next container did not take the returned port %s at %s: %+v", pool[0].OVSPort, addrOf(pool[0]), bs[0].Containers)
	}
	run(t, "docker", "exec", c, "ping", "-c", "2", "-W", "2", b)
	run(t, "docker", "rm", "-f", b, c, first)
	run(t, "docker", "network", "rm", net)
	if rows := e.vsctlList("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-pool=true"); strings.TrimSpace(rows) != "" {
		t.Fatalf("pool rows left after the network's removal: %s", rows)
	}
}

// TestDockerWaitsForStart: the controller holds back its own work (the
// pool's refill, convergence) from an endpoint's join until the
// container's start event, and ends the wait when Docker deletes the
// endpoint of a container that failed to start, not at its time bound;
// the pool refills after both.
func TestDockerWaitsForStart(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	driver := uniq("ovsnet-w")
	e.servePlugin(driver, "--pool", "2")
	net := dockerNet(t, driver, "--subnet", "10.88.0.0/24")
	var bs []poolJSON
	if err := json.Unmarshal([]byte(e.must("show", "-o", "json")), &bs); err != nil || len(bs) != 1 {
		t.Fatalf("show: %v %+v", err, bs)
	}
	br := bs[0].Name
	waits := func(end string) int {
		_, m := e.httpGet("127.0.0.1:19481", "/metrics")
		re := regexp.MustCompile(`(?m)^ovsnet_docker_start_waits_total\{end="` + end + `"\} (\d+)$`)
		got := re.FindStringSubmatch(m)
		if got == nil {
			t.Fatalf("/metrics has no start waits that ended %s:\n%s", end, m)
		}
		n, _ := strconv.Atoi(got[1])
		return n
	}
	dockerOn(t, net)
	e.poolReady(br, 2, "veth")
	a := dockerOn(t, net)
	eventually(t, 10*time.Second, "the wait for "+a+" ended by its start", func() bool { return waits("started") == 2 })
	e.poolReady(br, 2, "veth")

	// No such command: Docker joins the endpoint, fails to start the
	// container and deletes the endpoint.
	name := uniq("ovsnet-e2e-")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	if out, err := exec.Command("docker", "run", "-d", "--name", name, "--network", net, testImage, "/no-such-command").CombinedOutput(); err == nil {
		t.Fatalf("a container with no such command started: %s", out)
	}
	eventually(t, 10*time.Second, "the wait for "+name+" ended by its endpoint's removal", func() bool { return waits("removed") == 1 })
	if n := waits("timed_out"); n != 0 {
		t.Fatalf("%d waits timed out", n)
	}
	e.poolReady(br, 2, "veth")
}
