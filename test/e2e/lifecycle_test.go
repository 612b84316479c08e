package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// hostPorts lists the links ovsnet made in the sandbox host (veth host ends
// and internal ports still in the host: "on" + hash).
func (e *env) hostPorts() []string {
	var out []string
	for _, l := range links(e.t, e.sb.Netns) {
		if strings.HasPrefix(l, "on") && len(l) == 14 {
			out = append(out, l)
		}
	}
	return out
}

func (e *env) vsctlList(args ...string) string {
	e.t.Helper()
	out, err := e.sb.Vsctl(args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// del-port, del-ports and del-br leave no veth, port, row or address.
func TestDeleteLeavesNothing(t *testing.T) {
	e := newEnv(t)
	c1, c2, c3 := e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.55.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ip", "--type", "veth")
	e.must("add-port", "br0", "eth1", c2, "--ip", "--type", otherType())
	e.must("add-port", "br0", "eth1", c3, "--ip", "--type", "veth")
	e.must("add-port", "br0", "eth2", c3, "--ip", "--type", otherType())
	if n, want := len(e.hostPorts()), map[bool]int{false: 2, true: 4}[kernelDatapath]; n != want {
		t.Fatalf("want %d veth host ends in the host, got %v", want, e.hostPorts())
	}

	e.must("del-port", "br0", "eth1", c1)
	if l := links(t, c1); strings.Join(l, " ") != "lo" {
		t.Fatalf("%s still has %v", c1, l)
	}
	e.fails("failed to find any attached port", "del-port", "br0", "eth1", c1)

	out := e.must("del-ports", "br0", c3)
	if !strings.Contains(out, "detached 2 interface(s)") {
		t.Fatalf("del-ports: %q", out)
	}
	if l := links(t, c3); strings.Join(l, " ") != "lo" {
		t.Fatalf("%s still has %v", c3, l)
	}
	// c2's is a veth too on the kernel datapath (otherType).
	if hp, want := e.hostPorts(), map[bool]int{false: 0, true: 1}[kernelDatapath]; len(hp) != want {
		t.Fatalf("veths left in the host: %v, want %d", hp, want)
	}
	// The freed address is the lowest free one again.
	var p portJSON
	json.Unmarshal([]byte(e.must("add-port", "br0", "eth1", c1, "--ip", "-o", "json")), &p)
	if strings.Join(p.Addresses, "") != "10.55.0.2/24" {
		t.Fatalf("freed address not reused: %v", p.Addresses)
	}

	e.must("del-br", "br0")
	for _, c := range []string{c1, c2, c3} {
		if l := links(t, c); strings.Join(l, " ") != "lo" {
			t.Fatalf("after del-br %s still has %v", c, l)
		}
	}
	if hp := e.hostPorts(); len(hp) != 0 {
		t.Fatalf("veths left in the host after del-br: %v", hp)
	}
	for _, tbl := range []string{"Bridge", "Port", "Interface"} {
		if rows := e.vsctlList("--columns=name", "--format=csv", "--no-headings", "list", tbl); rows != "" {
			t.Fatalf("%s rows left: %q", tbl, rows)
		}
	}
	for _, l := range links(t, e.sb.Netns) {
		if l == "br0" {
			t.Fatal("bridge device left")
		}
	}
	if out := e.must("show"); !strings.Contains(out, "no bridges") {
		t.Fatalf("show after del-br: %q", out)
	}
}

// A re-attached address announces its new MAC: the host's neighbour entry
// for it changes without any traffic from the host.
func TestGratuitousARP(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.44.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ipaddress=10.44.0.2/24", "--macaddress=02:00:00:00:44:01")
	ping(t, e.sb.Netns, "10.44.0.2")
	if n := run(t, "ip", "-n", e.sb.Netns, "neigh", "show", "10.44.0.2"); !strings.Contains(n, "02:00:00:00:44:01") {
		t.Fatalf("neighbour entry: %q", n)
	}
	e.must("del-port", "br0", "eth1", c1)
	e.must("add-port", "br0", "eth1", c2, "--ipaddress=10.44.0.2/24", "--macaddress=02:00:00:00:44:02")
	if n := run(t, "ip", "-n", e.sb.Netns, "neigh", "show", "10.44.0.2"); !strings.Contains(n, "02:00:00:00:44:02") {
		t.Fatalf("neighbour entry not updated by gratuitous ARP: %q", n)
	}
}

// reconcile restores gateway addresses and links, and a second run changes nothing.
func TestReconcile(t *testing.T) {
	e := newEnv(t)
	c1 := e.container()
	e.must("add-br", "br0", "--subnet", "10.33.0.0/24", "--subnet", "fd33::/64", "--mtu", "1400")
	e.must("add-port", "br0", "eth1", c1, "--ip", "--type", "veth")
	if out := e.must("reconcile"); strings.TrimSpace(out) != "nothing to change" {
		t.Fatalf("fresh state needs changes: %q", out)
	}
	var p portJSON
	json.Unmarshal([]byte(e.must("show", "-o", "json")), &[]struct {
		Containers []*portJSON `json:"containers"`
	}{{Containers: []*portJSON{&p}}})
	run(t, "ip", "-n", e.sb.Netns, "addr", "flush", "dev", "br0")
	run(t, "ip", "-n", e.sb.Netns, "link", "set", "br0", "down")
	run(t, "ip", "-n", e.sb.Netns, "link", "set", p.OVSPort, "down")
	noPing(t, c1, "10.33.0.1")
	out := e.must("reconcile")
	for _, want := range []string{"added gateway 10.33.0.1/24 to br0", "added gateway fd33::1/64 to br0", "set br0 up", "set " + p.OVSPort + " up"} {
		if !strings.Contains(out, want) {
			t.Fatalf("reconcile output lacks %q: %q", want, out)
		}
	}
	ping(t, c1, "10.33.0.1")
	if out := e.must("reconcile"); strings.TrimSpace(out) != "nothing to change" {
		t.Fatalf("second reconcile changed: %q", out)
	}
	if l := run(t, "ip", "-n", e.sb.Netns, "-o", "link", "show", "br0"); !strings.Contains(l, "mtu 1400") {
		t.Fatalf("bridge MTU: %s", l)
	}

	// A port removed behind ovsnet's back leaves its address below the
	// bridge's allocation hint; reconcile lowers the hint so that --ip
	// again gives the lowest free address.
	c2, c3 := e.container(), e.container()
	e.must("add-port", "br0", "eth1", c2, "--ip")
	if _, err := e.sb.Vsctl("del-port", "br0", p.OVSPort); err != nil {
		t.Fatal(err)
	}
	out = e.must("reconcile")
	if !strings.Contains(out, "lowered br0's IPv4 hint to free address 10.33.0.2") || !strings.Contains(out, "lowered br0's IPv6 hint to free address fd33::2") {
		t.Fatalf("reconcile did not repair the hints: %q", out)
	}
	var p3 portJSON
	json.Unmarshal([]byte(e.must("add-port", "br0", "eth1", c3, "--ip", "-o", "json")), &p3)
	if strings.Join(p3.Addresses, " ") != "10.33.0.2/24 fd33::2/64" {
		t.Fatalf("after repair --ip got %v", p3.Addresses)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("reconcile after repair: %q", out)
	}
}

// An attach whose process died after committing its row is finished by the
// next convergence (addresses, route, state), for both attach types; one
// whose container side vanished is taken away.
func TestInterruptedAttachFinished(t *testing.T) {
	e := newEnv(t)
	c1, c2, c3 := e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.67.0.0/24")
	var p1, p2, p3 portJSON
	json.Unmarshal([]byte(e.must("add-port", "br0", "eth1", c1, "--ip", "--type", "veth", "-o", "json")), &p1)
	json.Unmarshal([]byte(e.must("add-port", "br0", "eth1", c2, "--ip", "--type", otherType(), "-o", "json")), &p2)
	json.Unmarshal([]byte(e.must("add-port", "br0", "eth1", c3, "--ip", "--type", "veth", "-o", "json")), &p3)
	if st, _ := e.sb.Vsctl("get", "interface", p1.OVSPort, "external_ids:ovsnet-state"); strings.Trim(strings.TrimSpace(st), `"`) != "ready" {
		t.Fatalf("state after a finished attach: %q", st)
	}
	// What a death between commit and configuration leaves: the state still
	// "attaching", no address in the container (c3: its veth gone too).
	for _, p := range []portJSON{p1, p2, p3} {
		if _, err := e.sb.Vsctl("set", "interface", p.OVSPort, "external_ids:ovsnet-state=attaching"); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "ip", "-n", c1, "addr", "flush", "dev", "eth1")
	run(t, "ip", "-n", c2, "addr", "flush", "dev", "eth1")
	run(t, "ip", "-n", c3, "link", "del", "eth1")
	noPing(t, c1, "10.67.0.1")
	out := e.must("reconcile")
	for _, want := range []string{"finished interrupted attach of " + p1.OVSPort, "finished interrupted attach of " + p2.OVSPort, "removed half-made port " + p3.OVSPort} {
		if !strings.Contains(out, want) {
			t.Fatalf("reconcile: %q lacks %q", out, want)
		}
	}
	ping(t, c1, "10.67.0.1")
	ping(t, c2, "10.67.0.2")
	if rows, _ := e.sb.Vsctl("--columns=name", "find", "interface", "name="+p3.OVSPort); strings.TrimSpace(rows) != "" {
		t.Fatalf("half-made port left: %q", rows)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("second reconcile: %q", out)
	}
}

// del-br of many veths deletes their host ends in one request (a link
// group): all go, the containers' ends with them, and no other link of
// the host is touched.
func TestBulkDetachLeavesNothing(t *testing.T) {
	e := newEnv(t)
	run(t, "ip", "-n", e.sb.Netns, "link", "add", "bystander", "type", "veth", "peer", "name", "bystander2")
	e.must("add-br", "br0", "--subnet", "10.56.0.0/24")
	var lines []string
	var cs []string
	for i := 0; i < 60; i++ {
		c := e.container()
		cs = append(cs, c)
		lines = append(lines, "eth1 "+nsPath(c))
	}
	c := e.sb.Command(ovsnetBin, "add-ports", "br0", "-", "--ip", "--type", "veth")
	c.Stdin = strings.NewReader(strings.Join(lines, "\n"))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("add-ports: %v\n%s", err, out)
	}
	if n := len(e.hostPorts()); n != 60 {
		t.Fatalf("%d veth host ends, want 60", n)
	}
	// del-ports of ten containers in one call.
	args := []string{"del-ports", "br0"}
	for _, c := range cs[:10] {
		args = append(args, nsPath(c)) // as attached
	}
	if out := e.must(args...); !strings.Contains(out, "detached 10 interface(s) of 10 containers") {
		t.Fatalf("del-ports of ten: %s", out)
	}
	if n := len(e.hostPorts()); n != 50 {
		t.Fatalf("%d veth host ends after del-ports of ten, want 50", n)
	}
	// Ten containers gone at once: the controller's first run collects
	// their ports.
	for _, c := range cs[10:20] {
		sandbox.DelNetns(c)
	}
	e.startController("127.0.0.1:19485", "--resync", "1h")
	eventually(t, 30*time.Second, "the ports of ten gone containers collected", func() bool { return len(e.hostPorts()) == 40 })
	ping(t, cs[20], "10.56.0.1")
	e.must("del-br", "br0")
	if hp := e.hostPorts(); len(hp) != 0 {
		t.Fatalf("veths left in the host after del-br: %v", hp)
	}
	for _, c := range append(cs[:10:10], cs[20:]...) {
		if l := links(t, c); strings.Join(l, " ") != "lo" {
			t.Fatalf("after del-br %s still has %v", c, l)
		}
	}
	if !slices.Contains(links(t, e.sb.Netns), "bystander") {
		t.Fatal("del-br took a link that was not its own")
	}
}

// del-br of a few hundred veths killed mid-way: reconcile finishes it and
// leaves nothing, while another bridge's containers keep pinging.
func TestBulkDetachKilled(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "other", "--subnet", "10.58.0.0/24")
	p1, p2 := e.container(), e.container()
	e.must("add-port", "other", "eth1", p1, "--ip")
	e.must("add-port", "other", "eth1", p2, "--ip") // 10.58.0.3
	e.must("add-br", "br0", "--subnet", "10.57.0.0/23")
	var lines []string
	for i := 0; i < 300; i++ {
		lines = append(lines, "eth1 "+nsPath(e.container()))
	}
	c := e.sb.Command(ovsnetBin, "add-ports", "br0", "-", "--ip", "--type", "veth")
	c.Stdin = strings.NewReader(strings.Join(lines, "\n"))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("add-ports: %v\n%s", err, out)
	}
	pinged := pingSteadily(t, p1, "10.58.0.3", 200)
	del := e.sb.Command(ovsnetBin, "del-br", "br0")
	if err := del.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed once it has begun (the bridge marked deleting), whatever the
	// machine's load: a fixed pause could end before it starts.
	eventually(t, 20*time.Second, "del-br marking br0 deleting", func() bool {
		out, _ := e.sb.Vsctl("--bare", "--columns=name,external_ids", "find", "bridge", "name=br0")
		return strings.TrimSpace(out) == "" || strings.Contains(out, "ovsnet-state=deleting") // done already, or under way
	})
	time.Sleep(50 * time.Millisecond)
	del.Process.Signal(syscall.SIGKILL)
	del.Wait()
	out := e.must("reconcile")
	if show := e.must("show"); strings.Contains(show, "br0") || !strings.Contains(show, "other") {
		t.Fatalf("after del-br killed and reconcile (%s):\n%s", out, show)
	}
	// other's two ports are internal, or veths on the kernel datapath.
	if hp, want := e.hostPorts(), map[bool]int{false: 0, true: 2}[kernelDatapath]; len(hp) != want {
		t.Fatalf("host ends left: %v, want %d (other's)", hp, want)
	}
	pinged("while the other bridge, br0, went")
}
