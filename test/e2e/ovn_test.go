package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// newCentral starts a hermetic OVN central node for the test.
func newCentral(t *testing.T) *sandbox.Central {
	t.Helper()
	c, err := sandbox.StartCentral(uniq("ovt-ovn"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("central cleanup: %v", err)
		}
	})
	return c
}

type ovnStatus struct {
	SystemID   string `json:"system_id"`
	EncapIP    string `json:"encap_ip"`
	Datapath   string `json:"bridge_datapath_type"`
	Underlay   string `json:"underlay_bridge"`
	Controller bool   `json:"ovn_controller_running"`
	InSB       bool   `json:"chassis_in_southbound"`
}

// A host joins OVN with one command on that host: its chassis appears in
// the southbound database with its address, on the userspace datapath
// with the address on an OVS bridge, and OVN makes the Geneve tunnels to
// the other chassis by itself. Joining again changes nothing; a host
// without ovn-controller is told so; leaving undoes it all.
func TestOVNJoin(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 3)
	for _, h := range hs[:2] {
		if err := h.sb.StartOVNController(); err != nil {
			t.Fatal(err)
		}
	}
	sb := "--sb=" + c.SB()
	hs[0].fails("not an OVN chassis", "ovn", "status")
	var st ovnStatus
	if err := json.Unmarshal([]byte(hs[0].must("ovn", "join", sb, "--encap-ip", underlayAddr(0), "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	// On the kernel datapath br-int is a system bridge and Geneve a kernel
	// vport: no datapath type to set, and the underlay stays where it is.
	wantDP, wantUL := "netdev", "ovs-ul0"
	if kernelDatapath {
		wantDP, wantUL = "", ""
	}
	if !st.Controller || !st.InSB || st.EncapIP != underlayAddr(0) || st.Datapath != wantDP || st.Underlay != wantUL || st.SystemID == "" {
		t.Fatalf("join: %+v", st)
	}
	var again ovnStatus
	json.Unmarshal([]byte(hs[0].must("ovn", "join", sb, "--encap-ip", underlayAddr(0), "-o", "json")), &again)
	if again.SystemID != st.SystemID || !again.InSB {
		t.Fatalf("joining again: %+v, was %+v", again, st)
	}
	hs[1].must("ovn", "join", sb, "--encap-ip", underlayAddr(1))
	show := run(t, "ovn-sbctl", "--db="+c.SB(), "show")
	if !strings.Contains(show, st.SystemID) || !strings.Contains(show, `ip: "`+underlayAddr(1)+`"`) {
		t.Fatalf("the southbound database:\n%s", show)
	}
	// OVN's own tunnels, with no tunnel command on either host.
	eventually(t, 20*time.Second, "a Geneve tunnel from host 0 to host 1", func() bool {
		out, _ := hs[0].sb.Vsctl("--bare", "--columns=options", "find", "interface", "type=geneve")
		return strings.Contains(out, underlayAddr(1))
	})
	hs[2].fails("ovn-controller is not running on this host", "ovn", "join", sb, "--encap-ip", underlayAddr(2))

	// The controller reports the chassis: ready, and what is wrong when
	// ovn-controller stops (the host's own convergence stays healthy).
	const addr = "127.0.0.1:19487"
	ctl := hs[0].startController(addr)
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := hs[0].httpGet(addr, "/healthz"); return code == 200 })
	eventually(t, 15*time.Second, "ovsnet_ovn_chassis_ready 1", func() bool { return hs[0].counter(addr, "ovsnet_ovn_chassis_ready") == 1 })
	if err := hs[0].sb.StopOVNController(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "/healthz naming the stopped ovn-controller", func() bool {
		code, body := hs[0].httpGet(addr, "/healthz")
		return code == 200 && strings.Contains(body, "ovn-controller is not running") && hs[0].counter(addr, "ovsnet_ovn_chassis_ready") == 0
	})
	if err := hs[0].sb.StartOVNController(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "ovsnet_ovn_chassis_ready back to 1", func() bool { return hs[0].counter(addr, "ovsnet_ovn_chassis_ready") == 1 })
	ctl.Process.Kill()
	ctl.Wait()

	hs[0].must("ovn", "leave")
	hs[0].must("ovn", "leave") // twice is fine
	if ext := hs[0].vsctlList("get", "open_vswitch", ".", "external_ids"); strings.Contains(ext, "ovn-remote") || !strings.Contains(ext, st.SystemID) {
		t.Fatalf("after leave, external_ids: %s", ext)
	}
	if show := run(t, "ovn-sbctl", "--db="+c.SB(), "show"); strings.Contains(show, st.SystemID) {
		t.Fatalf("the chassis is still in the southbound database:\n%s", show)
	}
	if a := addrs(t, hs[0].sb.Netns); !strings.Contains(strings.Join(a, "\n"), "ul0 "+underlayAddr(0)) {
		t.Fatalf("the underlay did not get its address back: %v", a)
	}
}

// OVN networks are logical switches in the northbound database, with
// OVN's IPAM settings and ovsnet's mark: made once (again changes
// nothing, another subnet is refused), listed, removed; the northbound
// database is --ovn or the one ovn join --nb recorded.
func TestOVNNetwork(t *testing.T) {
	c := newCentral(t)
	e := newEnv(t)
	e.fails("no northbound database", "network", "ls")
	nb := "--ovn=" + c.NB()
	e.must("network", "create", "lab", "--subnet", "10.60.0.0/16", nb)
	if out := e.must("network", "create", "lab", "--subnet", "10.60.0.0/16", nb); !strings.Contains(out, "exists, unchanged") {
		t.Fatalf("creating again: %q", out)
	}
	e.fails("exists with subnet 10.60.0.0/16", "network", "create", "lab", "--subnet", "10.61.0.0/16", nb)
	cfg := run(t, "ovn-nbctl", "--db="+c.NB(), "get", "logical_switch", "lab", "other_config", "external_ids")
	if !strings.Contains(cfg, `subnet="10.60.0.0/16"`) || !strings.Contains(cfg, `exclude_ips="10.60.0.1"`) || !strings.Contains(cfg, "ovsnet-owner=ovsnet") {
		t.Fatalf("the logical switch: %s", cfg)
	}
	run(t, "ovn-nbctl", "--db="+c.NB(), "ls-add", "theirs")
	e.fails("is not ovsnet's", "network", "create", "theirs", "--subnet", "10.62.0.0/24", nb)
	e.fails("is not ovsnet's", "network", "rm", "theirs", nb)
	// The recorded default, as ovn join --nb leaves it.
	if _, err := e.sb.Vsctl("set", "open_vswitch", ".", "external_ids:ovsnet-ovn-nb="+c.NB()); err != nil {
		t.Fatal(err)
	}
	var ns []struct {
		Name, Subnet, Gateway string
		Ports                 int
	}
	if err := json.Unmarshal([]byte(e.must("network", "ls", "-o", "json")), &ns); err != nil || len(ns) != 1 || ns[0].Name != "lab" || ns[0].Subnet != "10.60.0.0/16" {
		t.Fatalf("network ls: %v %+v", err, ns)
	}
	run(t, "ovn-nbctl", "--db="+c.NB(), "lsp-add", "lab", "p1")
	e.fails("still has 1 port(s)", "network", "rm", "lab")
	run(t, "ovn-nbctl", "--db="+c.NB(), "lsp-del", "p1")
	e.must("network", "rm", "lab")
	e.fails("no OVN network lab", "network", "rm", "lab")
	if out := run(t, "ovn-nbctl", "--db="+c.NB(), "ls-list"); strings.Contains(out, "lab") || !strings.Contains(out, "theirs") {
		t.Fatalf("logical switches after rm: %s", out)
	}
}

// Containers on two chassis attached to one OVN network reach each
// other (ping, TCP) over OVN's own Geneve tunnels with no tunnel command;
// OVN's port security drops spoofed sources; del-port removes the
// logical port and the local one; the network then goes.
func TestOVNAttach(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 2)
	for i, h := range hs {
		if err := h.sb.StartOVNController(); err != nil {
			t.Fatal(err)
		}
		h.must("ovn", "join", "--sb="+c.SB(), "--nb="+c.NB(), "--encap-ip", underlayAddr(i))
	}
	hs[0].must("network", "create", "lab", "--subnet", "10.60.0.0/24")
	c0, c1 := hs[0].container(), hs[1].container()
	p0 := hs[0].addPortJSON("add-port", "lab", "eth1", c0, "--ip")
	p1 := hs[1].addPortJSON("add-port", "lab", "eth1", c1, "--ip", "--type", "veth")
	if p0.Addresses[0] != "10.60.0.2/24" || p1.Addresses[0] != "10.60.0.3/24" || p0.MTU != 1400 {
		t.Fatalf("addresses from the network, MTU for Geneve: %+v %+v", p0, p1)
	}
	lsps := run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name,addresses,port_security,up", "list", "logical_switch_port")
	if !strings.Contains(lsps, p0.OVSPort) || !strings.Contains(lsps, "10.60.0.3") || strings.Count(lsps, "true") != 2 {
		t.Fatalf("logical switch ports:\n%s", lsps)
	}
	ping(t, c0, "10.60.0.3")
	ping(t, c1, "10.60.0.2")
	for _, h := range hs { // convergence leaves OVN's integration bridge and its ports alone
		if out := h.must("reconcile"); !strings.Contains(out, "nothing to change") {
			t.Fatalf("reconcile on a chassis: %q", out)
		}
	}
	ping(t, c0, "10.60.0.3")
	tcpTransfer(t, nsPath(c0), nsPath(c1), "10.60.0.3", 4<<20)
	run(t, "ip", "-n", c0, "addr", "add", "10.60.0.77/32", "dev", "eth1")
	if udpFromArrives(t, c0, "10.60.0.77:0", "10.60.0.3:9998", c1, "10.60.0.3:9998") {
		t.Fatal("a spoofed source crossed the OVN network")
	}
	if !udpArrives(t, c0, "10.60.0.3:9997", c1, "10.60.0.3:9997") {
		t.Fatal("UDP from c0's own address did not arrive")
	}
	hs[0].fails("hands out addresses itself", "add-port", "lab", "eth2", c0, "--ip", "10.60.0.9")
	hs[0].fails("is an OVN network: it is one broadcast domain", "set-vlan", "lab", "eth1", c0, "10")
	hs[1].must("del-port", "lab", "eth1", c1)
	if lsps := run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name", "list", "logical_switch_port"); strings.Contains(lsps, p1.OVSPort) {
		t.Fatalf("del-port left its logical port: %s", lsps)
	}
	if ports, _ := hs[1].sb.Vsctl("list-ports", "br-int"); strings.Contains(ports, p1.OVSPort) {
		t.Fatalf("del-port left its OVS port: %s", ports)
	}
	hs[0].fails("still has 1 port(s)", "network", "rm", "lab")
	hs[0].must("del-port", "lab", "eth1", c0)
	hs[0].must("network", "rm", "lab")
}

// deploy/ovn-central.sh puts a central node's databases on TCP, once:
// a chassis then joins over TCP (here inside the central's namespace).
func TestDeployOVNCentral(t *testing.T) {
	c := newCentral(t)
	script := func() string {
		cmd := exec.Command("ip", "netns", "exec", c.Netns, "../../deploy/ovn-central.sh", "127.0.0.1")
		cmd.Env = append(os.Environ(), "OVN_NB_DB="+c.NB(), "OVN_SB_DB="+c.SB())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ovn-central.sh: %v: %s", err, out)
		}
		return string(out)
	}
	if out := script(); !strings.Contains(out, "ovn-nbctl: listening on ptcp:6641:127.0.0.1") || !strings.Contains(out, "ovn-sbctl: listening on ptcp:6642:127.0.0.1") {
		t.Fatalf("first run: %q", out)
	}
	if out := script(); strings.TrimSpace(out) != "" {
		t.Fatalf("second run changed something: %q", out)
	}
	eventually(t, 10*time.Second, "the southbound database on TCP", func() bool {
		return exec.Command("ip", "netns", "exec", c.Netns, "ovn-sbctl", "--db=tcp:127.0.0.1:6642", "--timeout=2", "show").Run() == nil
	})
	run(t, "ip", "netns", "exec", c.Netns, "ovn-nbctl", "--db=tcp:127.0.0.1:6641", "ls-list")
}

// joinOVN starts ovn-controller on host i and joins it with one command.
func joinOVN(t *testing.T, c *sandbox.Central, hs []*env, i int) {
	t.Helper()
	if err := hs[i].sb.StartOVNController(); err != nil {
		t.Fatal(err)
	}
	hs[i].must("ovn", "join", "--sb="+c.SB(), "--nb="+c.NB(), "--encap-ip", underlayAddr(i))
}

// Three chassis, the third joining late with one command on it and none
// on the others: containers on each reach each other on an open network;
// on an --icc=false network nothing passes between them but what links
// let through (from any host: the intent is in the northbound database),
// in the link's direction and on its ports, with replies; unlink closes
// it again; and removing it all leaves no logical row.
func TestOVNIsolation(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 3)
	joinOVN(t, c, hs, 0)
	joinOVN(t, c, hs, 1)
	hs[0].must("network", "create", "lab", "--subnet", "10.60.0.0/24")
	hs[1].must("network", "create", "iso", "--subnet", "10.61.0.0/24", "--icc=false")
	if out := hs[0].must("network", "ls"); !strings.Contains(out, "iso 10.61.0.0/24 (gateway 10.61.0.1), 0 port(s), isolated") {
		t.Fatalf("network ls: %q", out)
	}
	cs := make([]string, 3)
	lab, iso := make([]string, 3), make([]string, 3)
	attach := func(i int) {
		cs[i] = hs[i].container()
		lab[i] = strings.Split(hs[i].addPortJSON("add-port", "lab", "eth1", cs[i], "--ip").Addresses[0], "/")[0]
		iso[i] = strings.Split(hs[i].addPortJSON("add-port", "iso", "eth2", cs[i], "--ip", "--type", "veth").Addresses[0], "/")[0]
	}
	attach(0)
	attach(1)
	joinOVN(t, c, hs, 2) // late: nothing runs on hosts 0 and 1
	attach(2)
	for i := range 3 {
		for j := range 3 {
			if i != j { // the first contact over a new Geneve tunnel may take a try or two
				eventually(t, 20*time.Second, fmt.Sprintf("c%d reaching c%d", i, j), func() bool { return pings(cs[i], lab[j]) })
			}
		}
	}
	// TCP both ways across chassis, arriving from the container's own
	// address: nothing translates between them.
	for k, p := range [][2]int{{0, 2}, {2, 0}} {
		if got := seenFrom(t, cs[p[0]], cs[p[1]], fmt.Sprintf("%s:%d", lab[p[1]], 7300+k)); got != lab[p[0]] {
			t.Fatalf("TCP from c%d to c%d arrived from %s, want %s", p[0], p[1], got, lab[p[0]])
		}
	}
	for _, p := range [][2]int{{0, 1}, {1, 0}, {2, 0}, {1, 2}} {
		if pings(cs[p[0]], iso[p[1]]) {
			t.Fatalf("on the isolated network %s reaches %s with no link", cs[p[0]], cs[p[1]])
		}
	}
	hs[2].fails("has no port on OVN network iso", "link", "iso", cs[0], "nobody")
	hs[2].fails("name the container", "link", "iso", "10.61.0.9", cs[0])
	hs[2].must("link", "iso", cs[0], cs[1]) // neither end is on host 2
	eventually(t, 10*time.Second, "the link c0 -> c1 across chassis", func() bool { return pings(cs[0], iso[1]) })
	tcpTransfer(t, nsPath(cs[0]), nsPath(cs[1]), iso[1], 1<<20)
	if pings(cs[1], iso[0]) {
		t.Fatal("the link c0 -> c1 lets c1 open connections to c0")
	}
	hs[0].must("link", "iso", cs[2], cs[0], "--port", "9999/udp")
	eventually(t, 10*time.Second, "the link c2 -> c0 on 9999/udp", func() bool { return udpArrives(t, cs[2], iso[0]+":9999", cs[0], iso[0]+":9999") })
	if udpArrives(t, cs[2], iso[0]+":9998", cs[0], iso[0]+":9998") || pings(cs[2], iso[0]) {
		t.Fatal("the link c2 -> c0 on 9999/udp lets other traffic through")
	}
	ovnIsolationTraced(t, hs, cs, iso)
	ovnIsolationShown(t, hs, cs)
	hs[1].must("unlink", "iso", cs[0], cs[1])
	eventually(t, 10*time.Second, "unlink closing c0 -> c1", func() bool { return !pings(cs[0], iso[1]) })
	hs[1].fails("no link from", "unlink", "iso", cs[0], cs[1])

	for i := range 3 {
		hs[i].must("del-ports", "lab", cs[i])
		hs[i].must("del-ports", "lab", cs[i]) // none left: nothing to do
		hs[i].must("del-port", "iso", "eth2", cs[i])
	}
	hs[0].must("network", "rm", "lab")
	hs[0].must("network", "rm", "iso")
	for _, table := range []string{"logical_switch", "logical_switch_port", "port_group", "acl"} {
		if out := run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=_uuid", "list", table); strings.TrimSpace(out) != "" {
			t.Fatalf("%s rows left: %s", table, out)
		}
	}
	for i, h := range hs {
		h.must("reconcile") // the chassis' gateways go with their networks
		if ports, _ := h.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-owner=ovsnet"); strings.TrimSpace(ports) != "" {
			t.Fatalf("host %d kept ports: %s", i, ports)
		}
	}
}

// ovnIsolationTraced: the trace says what TestOVNIsolation's packets met,
// from any host, with OVN's stages (cs: the containers, iso: their
// addresses on the isolated network).
func ovnIsolationTraced(t *testing.T, hs []*env, cs, iso []string) {
	for _, tr := range []struct {
		h          int
		from, to   string
		args       []string
		verdictHas string
	}{
		{2, cs[0], cs[1], nil, "verdict: allowed"},
		{0, cs[0], cs[1], nil, "geneve("}, // the source here: OVS's side too, a Geneve push to c1's chassis
		{0, cs[1], cs[0], nil, "verdict: dropped (ls_out_acl"},
		{1, cs[2], iso[0], []string{"--proto", "udp", "--dport", "9999"}, "verdict: allowed"},
		{1, cs[2], cs[0], []string{"--proto", "udp", "--dport", "9998"}, "no link allows this new connection"},
	} {
		out := hs[tr.h].must(append([]string{"trace", "iso", "--from", tr.from, "--to", tr.to}, tr.args...)...)
		if !strings.Contains(out, tr.verdictHas) || !strings.Contains(out, "ls_in_check_port_sec") || strings.Contains(out, "this chassis:") != (tr.h == 0 && tr.from == cs[0]) {
			t.Fatalf("trace %s -> %s %v:\n%s", tr.from, tr.to, tr.args, out)
		}
	}
}

// ovnIsolationShown: every host shows the networks with every chassis'
// containers, in JSON, text and the picture.
func ovnIsolationShown(t *testing.T, hs []*env, cs []string) {
	var shown []struct {
		Name, Datapath string
		ICC            bool
		Containers     []portJSON
		Links          []struct{ Src, Dst, Ports string }
	}
	if err := json.Unmarshal([]byte(hs[1].must("show", "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	chassis := map[string]bool{}
	for _, b := range shown {
		switch b.Name {
		case "iso":
			for _, p := range b.Containers {
				chassis[p.Chassis] = true
			}
			if b.Datapath != "ovn" || b.ICC || len(b.Containers) != 3 || len(b.Links) != 2 {
				t.Fatalf("show iso: %+v", b)
			}
		case "br-int":
			if len(b.Containers) != 0 {
				t.Fatalf("OVN's ports shown on br-int too: %+v", b)
			}
		}
	}
	if len(chassis) != 3 || chassis[""] {
		t.Fatalf("chassis of iso's containers: %v", chassis)
	}
	if out := hs[2].must("show", "lab"); !strings.Contains(out, "lab (OVN network, subnet 10.60.0.0/24") || strings.Count(out, "chassis ") != 3 {
		t.Fatalf("show lab:\n%s", out)
	}
	if svg := hs[0].must("show", "-o", "svg"); !strings.Contains(svg, cs[2]) {
		t.Fatalf("the picture has no %s", cs[2])
	}
}

// Faults on an isolated OVN network with one link: ovn-controller
// stopped and started, ovn-northd restarted, ovs-vswitchd restarted (the
// controller puts the internal port back into its container): the link
// comes back by itself and the unlinked direction never opens. ACLs
// removed by hand come back with a reconcile; a logical port whose
// interface is gone, or whose container is, goes with the controller's
// convergence.
func TestOVNFaults(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 2)
	joinOVN(t, c, hs, 0)
	joinOVN(t, c, hs, 1)
	hs[0].must("network", "create", "iso", "--subnet", "10.61.0.0/24", "--icc=false")
	c0, c1 := hs[0].container(), hs[1].container()
	a0 := strings.Split(hs[0].addPortJSON("add-port", "iso", "eth1", c0, "--ip").Addresses[0], "/")[0] // internal
	p1 := hs[1].addPortJSON("add-port", "iso", "eth1", c1, "--ip", "--type", "veth")
	a1 := strings.Split(p1.Addresses[0], "/")[0]
	hs[0].must("link", "iso", c0, c1)
	const addr = "127.0.0.1:19488"
	hs[0].startController(addr)
	hs[1].startController(addr)
	reach := func(when string) {
		t.Helper()
		eventually(t, 30*time.Second, "the link c0 -> c1 "+when, func() bool { return pings(c0, a1) })
	}
	isolated := func(when string) {
		t.Helper()
		if pings(c1, a0) {
			t.Fatalf("%s: c1 reaches c0 with no link", when)
		}
	}
	reach("at the start")
	isolated("at the start")

	if err := hs[1].sb.StopOVNController(); err != nil {
		t.Fatal(err)
	}
	isolated("ovn-controller of c1's host stopped")
	if err := hs[1].sb.StartOVNController(); err != nil {
		t.Fatal(err)
	}
	isolated("ovn-controller of c1's host starting")
	reach("after ovn-controller restarted")
	isolated("after ovn-controller restarted")

	if err := c.RestartNorthd(); err != nil {
		t.Fatal(err)
	}
	isolated("ovn-northd restarting")
	reach("after ovn-northd restarted")
	isolated("after ovn-northd restarted")

	if err := hs[0].sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := hs[0].sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	isolated("ovs-vswitchd of c0's host starting")
	reach("after ovs-vswitchd restarted (c0's internal port put back)")
	isolated("after ovs-vswitchd restarted")

	// ACLs removed by hand are put back by whoever converges first: this
	// reconcile, or one of the controllers' resyncs (every second), which
	// then logs the repair.
	const repaired = "brought OVN network iso's port group and ACLs to its intent"
	logged := func() int { return strings.Count(hs[0].controllerLogs()+hs[1].controllerLogs(), repaired) }
	before := logged()
	pg := run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name", "list", "port_group")
	run(t, "ovn-nbctl", "--db="+c.NB(), "clear", "port_group", strings.TrimSpace(pg), "acls")
	if out := hs[1].must("reconcile"); !strings.Contains(out, repaired) {
		eventually(t, 15*time.Second, "reconcile ("+strings.TrimSpace(out)+") or a controller repairing the ACLs removed by hand",
			func() bool { return logged() > before })
	}
	eventually(t, 15*time.Second, "isolation back", func() bool { return !pings(c1, a0) })
	reach("with the ACLs put back")

	ovnFaultsCollected(t, c, hs, c0, p1)
	hs[0].must("network", "rm", "iso")
}

// ovnFaultsCollected: with the controllers running, c1's interface (p1)
// removed by hand takes its logical port (and the veth end with no row)
// with it; c0's container gone takes its port and logical port; then
// neither host keeps a port, nor its gateway on the network.
func ovnFaultsCollected(t *testing.T, c *sandbox.Central, hs []*env, c0 string, p1 portJSON) {
	hs[1].sb.Vsctl("del-port", "br-int", p1.OVSPort)
	lsp := func(port string) bool {
		return strings.Contains(run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name", "list", "logical_switch_port"), port)
	}
	eventually(t, 15*time.Second, "the logical port of an interface removed by hand gone", func() bool { return !lsp(p1.OVSPort) })
	// c0's container gone: its port and logical port go.
	if err := sandbox.DelNetns(c0); err != nil {
		t.Fatal(err)
	}
	// Then neither host keeps a port, nor its gateway on the network.
	eventually(t, 15*time.Second, "the ports of a vanished container gone, and both gateways", func() bool {
		r0, _ := hs[0].sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-owner=ovsnet")
		r1, _ := hs[1].sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-owner=ovsnet")
		return strings.TrimSpace(r0+r1) == "" && strings.TrimSpace(run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name", "find", "logical_switch_port", `type=""`)) == ""
	})
	for i, h := range hs {
		if out := h.must("reconcile"); !strings.Contains(out, "nothing to change") {
			t.Fatalf("host %d: reconcile after the controllers: %q", i, out)
		}
	}
}

// Ten chassis with a container each, one network: all 45 pairs reach
// each other over OVN's full mesh of Geneve tunnels, which no host was
// told about. Half the hosts attach with add-ports (a list), half with
// add-port. The log has each host's memory (ovsdb-server, ovs-vswitchd,
// ovn-controller).
func TestOVNTenHosts(t *testing.T) {
	const n = 10
	c := newCentral(t)
	hs := newHosts(t, n)
	for i := range hs {
		joinOVN(t, c, hs, i)
	}
	hs[0].must("network", "create", "lab", "--subnet", "10.62.0.0/24")
	cs, as := make([]string, n), make([]string, n)
	list := filepath.Join(t.TempDir(), "list")
	for i, h := range hs {
		cs[i] = h.container()
		if i%2 == 1 {
			as[i] = strings.Split(h.addPortJSON("add-port", "lab", "eth1", cs[i], "--ip").Addresses[0], "/")[0]
			continue
		}
		if err := os.WriteFile(list, []byte("eth1 "+cs[i]+" --type veth\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var ps []portJSON
		if err := json.Unmarshal([]byte(h.must("add-ports", "lab", list, "--ip", "-o", "json")), &ps); err != nil || len(ps) != 1 {
			t.Fatalf("add-ports on an OVN network: %v %+v", err, ps)
		}
		as[i] = strings.Split(ps[0].Addresses[0], "/")[0]
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			eventually(t, 20*time.Second, fmt.Sprintf("c%d reaching c%d", i, j), func() bool { return pings(cs[i], as[j]) })
		}
	}
	for i, h := range hs {
		var parts []string
		for _, d := range []string{"ovsdb-server", "ovs-vswitchd", "ovn-controller"} {
			parts = append(parts, fmt.Sprintf("%s %d MiB", d, rssMiB(t, filepath.Join(h.sb.Dir, d+".pid"))))
		}
		t.Logf("host %d: %s", i, strings.Join(parts, ", "))
	}
}

// rssMiB is the resident memory of the daemon whose pid file is path.
func rssMiB(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	t.Fatalf("no VmRSS in %s", path)
	return 0
}

// seenFrom is the source address a TCP connection from netns src to addr
// arrives with at a listener in netns dst.
func seenFrom(t *testing.T, src, dst, addr string) string {
	t.Helper()
	s, err := trySeenFrom(t, src, dst, addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trySeenFrom is seenFrom, saying why no connection arrived.
func trySeenFrom(t *testing.T, src, dst, addr string) (string, error) {
	t.Helper()
	var ln net.Listener
	inNetns(t, nsPath(dst), func() (err error) { ln, err = net.Listen("tcp", addr); return err })
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	var dialErr error
	inNetns(t, nsPath(src), func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			c.Close()
		}
		dialErr = err
		return nil
	})
	if dialErr != nil {
		return "", fmt.Errorf("from %s to %s: %w", src, addr, dialErr)
	}
	select {
	case s := <-seen:
		return s, nil
	case <-time.After(3 * time.Second):
		return "", fmt.Errorf("no connection from %s reached %s", src, addr)
	}
}

// Containers on an OVN network reach the outside through the host they
// run on, masqueraded as that host, with no router and no central
// gateway; a published port answers on the container's host; isolation
// still holds between them. A --nat=false network has no gateway and
// refuses -p. A gateway's address removed by hand comes back with a
// reconcile, and a chassis' gateway goes with its last container.
func TestOVNEgress(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 3) // host 2 stays out of OVN: the outside world
	joinOVN(t, c, hs, 0)
	joinOVN(t, c, hs, 1)
	world := hs[2].sb.Netns
	hs[0].must("network", "create", "lab", "--subnet", "10.63.0.0/24", "--icc=false")
	hs[0].must("network", "create", "flat", "--subnet", "10.64.0.0/24", "--nat=false")
	c0, c1 := hs[0].container(), hs[1].container()
	p0 := hs[0].addPortJSON("add-port", "lab", "eth1", c0, "--ip")
	hs[1].must("add-port", "lab", "eth1", c1, "--ip", "--type", "veth", "-p", "8080:80")
	a1 := "10.63.0.3"
	if len(p0.Gateways) != 1 || p0.Gateways[0] != "10.63.0.1" {
		t.Fatalf("the container's gateway: %+v", p0)
	}
	for i, cn := range []string{c0, c1} {
		if got := seenFrom(t, cn, world, fmt.Sprintf("%s:%d", underlayAddr(2), 7000+i)); got != underlayAddr(i) {
			t.Fatalf("egress from host %d's container arrived from %s, want its host's %s", i, got, underlayAddr(i))
		}
	}
	if err := tcpVia(t, world, underlayAddr(1)+":8080", c1, a1+":80"); err != nil {
		t.Fatalf("a port published on host 1, from outside: %v", err)
	}
	hs[0].must("publish", "lab", c0, "9091:91")
	if err := tcpVia(t, world, underlayAddr(0)+":9091", c0, "10.63.0.2:91"); err != nil {
		t.Fatalf("ovsnet publish on host 0, from outside: %v", err)
	}
	if pings(c0, a1) {
		t.Fatal("the gateway opened isolation: c0 reaches c1 with no link")
	}
	hs[0].fails("was made with --nat=false", "add-port", "flat", "eth2", c0, "--ip", "-p", "8081:81")
	if p := hs[0].addPortJSON("add-port", "flat", "eth2", c0, "--ip"); len(p.Gateways) != 0 {
		t.Fatalf("a --nat=false network gave a gateway: %+v", p)
	}
	for i := range 2 {
		if out := hs[i].must("reconcile"); !strings.Contains(out, "nothing to change") {
			t.Fatalf("host %d: reconcile after attaching: %q", i, out)
		}
	}

	gw, err := hs[0].sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-ovn-gateway=10.63.0.1/24")
	if err != nil || strings.TrimSpace(gw) == "" {
		t.Fatalf("host 0's gateway row: %v %q", err, gw)
	}
	run(t, "ip", "-n", hs[0].sb.Netns, "addr", "flush", "dev", strings.TrimSpace(gw))
	if out := hs[0].must("reconcile"); !strings.Contains(out, "added gateway 10.63.0.1/24") {
		t.Fatalf("reconcile after the gateway lost its address: %q", out)
	}
	if got := seenFrom(t, c0, world, underlayAddr(2)+":7010"); got != underlayAddr(0) {
		t.Fatalf("egress after the repair arrived from %s", got)
	}

	hs[1].must("del-port", "lab", "eth1", c1)
	if out := hs[1].must("reconcile"); !strings.Contains(out, "removed gateway") {
		t.Fatalf("reconcile after host 1's last container left: %q", out)
	}
	if rows, _ := hs[1].sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:ovsnet-owner=ovsnet"); strings.TrimSpace(rows) != "" {
		t.Fatalf("host 1 kept %s", rows)
	}
	if rules := run(t, "ip", "netns", "exec", hs[1].sb.Netns, "iptables-save"); strings.Contains(rules, "10.63.0.0/24") {
		t.Fatalf("host 1 kept NAT rules of the network:\n%s", rules)
	}
}

// The CNI plugin on an OVN network (its "bridge" names the network): ADD
// on two chassis gives containers that reach each other and the outside
// through their own host; CHECK passes; DEL, twice, leaves no port, local
// or logical. No bridge of that name is made.
func TestOVNCNI(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 2)
	joinOVN(t, c, hs, 0)
	joinOVN(t, c, hs, 1)
	hs[0].must("network", "create", "lab", "--subnet", "10.65.0.0/24")
	cs, got := make([]string, 2), make([]string, 2)
	bad := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"ovt-ovn","type":"ovsnet","bridge":"nolab","ovn":true,"ovsdb":%q}`, hs[0].sb.DB())
	if out, err := hs[0].plugin("ADD", "x", nsPath(hs[0].container()), bad); err == nil || !strings.Contains(out, "no OVN network nolab") {
		t.Fatalf("ADD to a missing OVN network: %v %s", err, out)
	}
	confs := make([]string, 2)
	for i, h := range hs {
		confs[i] = fmt.Sprintf(`{"cniVersion":"1.1.0","name":"ovt-ovn","type":"ovsnet","bridge":"lab","ovn":true,"ovsdb":%q}`, h.sb.DB())
		cs[i] = h.container()
		out, err := h.plugin("ADD", cs[i], nsPath(cs[i]), confs[i])
		if err != nil {
			t.Fatalf("ADD on host %d: %v %s", i, err, out)
		}
		got[i] = cniAddress(t, out)
		check := strings.TrimSuffix(confs[i], "}") + `,"prevResult":` + out + "}"
		if out, err := h.plugin("CHECK", cs[i], nsPath(cs[i]), check); err != nil {
			t.Fatalf("CHECK on host %d: %v %s", i, err, out)
		}
	}
	eventually(t, 20*time.Second, "CNI containers on two chassis reaching each other", func() bool { return pings(cs[0], got[1]) })
	if got := seenFrom(t, cs[1], hs[0].sb.Netns, underlayAddr(0)+":7020"); got != underlayAddr(1) {
		t.Fatalf("egress from a CNI container on host 1 arrived from %s", got)
	}
	if br, _ := hs[0].sb.Vsctl("list-br"); strings.Contains(br, "lab") {
		t.Fatalf("a bridge named after the OVN network: %s", br)
	}
	for i, h := range hs {
		for range 2 {
			if out, err := h.plugin("DEL", cs[i], nsPath(cs[i]), confs[i]); err != nil {
				t.Fatalf("DEL on host %d: %v %s", i, err, out)
			}
		}
		if rows, _ := h.sb.Vsctl("--bare", "--columns=name", "find", "interface", "external_ids:container_id="+cs[i]); strings.TrimSpace(rows) != "" {
			t.Fatalf("host %d: DEL left %s", i, rows)
		}
	}
	if lsps := run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=name", "find", "logical_switch_port", `type=""`); strings.TrimSpace(lsps) != "" {
		t.Fatalf("DEL left logical ports: %s", lsps)
	}
}

// An OVN network with an IPv6 subnet beside its IPv4 one: containers on
// two chassis get an address of each, reach each other over both, reach
// their host's gateway over IPv6, and isolation and links hold for IPv6
// as for IPv4 (a spoofed IPv6 source goes nowhere).
func TestOVNIPv6(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 2)
	joinOVN(t, c, hs, 0)
	joinOVN(t, c, hs, 1)
	hs[0].must("network", "create", "six", "--subnet", "10.67.0.0/24", "--subnet6", "fd00:67::/64", "--icc=false")
	if out := hs[1].must("network", "ls"); !strings.Contains(out, "six 10.67.0.0/24 fd00:67::/64") {
		t.Fatalf("network ls: %q", out)
	}
	hs[0].fails("not an IPv6 subnet", "network", "create", "bad", "--subnet", "10.68.0.0/24", "--subnet6", "10.69.0.0/24")
	c0, c1 := hs[0].container(), hs[1].container()
	p0 := hs[0].addPortJSON("add-port", "six", "eth1", c0, "--ip")
	p1 := hs[1].addPortJSON("add-port", "six", "eth1", c1, "--ip", "--type", "veth")
	if strings.Join(p0.Addresses, " ") != "10.67.0.2/24 fd00:67::2/64" || strings.Join(p1.Addresses, " ") != "10.67.0.3/24 fd00:67::3/64" ||
		strings.Join(p0.Gateways, " ") != "10.67.0.1 fd00:67::1" {
		t.Fatalf("addresses: %+v %+v", p0, p1)
	}
	ping6 := func(from, to string) bool {
		return exec.Command("ip", "netns", "exec", from, "ping", "-6", "-c", "1", "-W", "1", to).Run() == nil
	}
	eventually(t, 15*time.Second, "c0 reaching its host's IPv6 gateway", func() bool { return ping6(c0, "fd00:67::1") })
	if ping6(c0, "fd00:67::3") || pings(c0, "10.67.0.3") {
		t.Fatal("isolated containers reach each other")
	}
	hs[1].must("link", "six", c0, c1)
	eventually(t, 15*time.Second, "the link c0 -> c1 over IPv6", func() bool { return ping6(c0, "fd00:67::3") })
	ping(t, c0, "10.67.0.3")
	if ping6(c1, "fd00:67::2") {
		t.Fatal("the link c0 -> c1 lets c1 reach c0 over IPv6")
	}
	run(t, "ip", "-n", c0, "addr", "add", "fd00:67::99/128", "dev", "eth1", "nodad")
	if out, err := exec.Command("ip", "netns", "exec", c0, "ping", "-6", "-c", "2", "-W", "1", "-I", "fd00:67::99", "fd00:67::3").CombinedOutput(); err == nil {
		t.Fatalf("a spoofed IPv6 source crossed: %s", out)
	}
	hs[0].must("del-port", "six", "eth1", c0)
	hs[1].must("del-port", "six", "eth1", c1)
	hs[0].must("network", "rm", "six")
}

// Docker's network driver on an OVN network (-o ovsnet.ovn=NAME, Docker's
// IPAM null: the addresses are OVN's): a Docker container reaches a
// container on another chassis and back; removing it takes its logical
// port; removing the Docker network forgets the mapping. Docker's own
// IPAM, and a network that does not exist, are refused.
func TestOVNDocker(t *testing.T) {
	dockerImage(t)
	c := newCentral(t)
	hs := newHosts(t, 2)
	joinOVN(t, c, hs, 0)
	joinOVN(t, c, hs, 1)
	hs[0].must("network", "create", "lab", "--subnet", "10.68.0.0/24")
	driver := uniq("ovsnet-t")
	hs[0].servePlugin(driver)
	for args, want := range map[string]string{
		"--subnet 10.68.0.0/24 -o ovsnet.ovn=lab": "--ipam-driver null",
		"--ipam-driver null -o ovsnet.ovn=nolab":  "no OVN network nolab",
	} {
		cmd := append(append([]string{"network", "create", "-d", driver}, strings.Fields(args)...), uniq("ovt-net"))
		if out, err := exec.Command("docker", cmd...).CombinedOutput(); err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("docker %v: %v %s", cmd, err, out)
		}
	}
	net := dockerNet(t, driver, "--ipam-driver", "null", "-o", "ovsnet.ovn=lab")
	d := dockerOn(t, net)
	f := strings.Fields(run(t, "docker", "exec", d, "ip", "-o", "-4", "addr", "show", "eth0"))
	if len(f) < 4 || !strings.HasPrefix(f[3], "10.68.0.") {
		t.Fatalf("the Docker container's address: %v", f)
	}
	da := strings.Split(f[3], "/")[0]
	c1 := hs[1].container()
	a1 := strings.Split(hs[1].addPortJSON("add-port", "lab", "eth1", c1, "--ip").Addresses[0], "/")[0]
	eventually(t, 20*time.Second, "the Docker container reaching host 1's", func() bool {
		return exec.Command("docker", "exec", d, "ping", "-c", "1", "-W", "1", a1).Run() == nil
	})
	ping(t, c1, da)
	if out := hs[1].must("show", "lab"); !strings.Contains(out, da) {
		t.Fatalf("host 1's show lacks the Docker container:\n%s", out)
	}
	run(t, "docker", "rm", "-f", d)
	eventually(t, 15*time.Second, "the Docker container's logical port gone", func() bool {
		return !strings.Contains(run(t, "ovn-nbctl", "--db="+c.NB(), "--bare", "--columns=addresses", "list", "logical_switch_port"), da+"\"")
	})
	run(t, "docker", "network", "rm", net)
	if ext := hs[0].vsctlList("get", "open_vswitch", ".", "external_ids"); strings.Contains(ext, "ovsnet-docker-ovn") {
		t.Fatalf("the mapping outlived the Docker network: %s", ext)
	}
}
