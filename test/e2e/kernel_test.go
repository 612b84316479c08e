package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The kernel datapath deleted under a running ovs-vswitchd (as ovs-dpctl
// del-dp, or reloading the openvswitch module, does): reconcile and doctor
// say what happened and how to fix it; after ovs-vswitchd restarts (a new
// datapath, no flows, the bridge's own port made again) reconcile brings
// every container back.
func TestDatapathRestart(t *testing.T) {
	onlyKernel(t, "it deletes the openvswitch module's datapath")
	e := newEnv(t)
	c1, c2 := e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.81.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ip")
	e.must("add-port", "br0", "eth1", c2, "--ip")
	ping(t, c1, "10.81.0.3")

	run(t, "ip", "netns", "exec", e.sb.Netns, "ovs-dpctl", "del-dp", "ovs-system")
	if out, _ := e.sb.Run("ovs-dpctl", "show"); strings.Contains(out, "ovs-system") {
		t.Fatalf("the datapath is still there after del-dp:\n%s", out)
	}
	if exec.Command("ip", "netns", "exec", c1, "ping", "-c", "1", "-W", "1", "10.81.0.3").Run() == nil {
		t.Fatal("ping passed with the datapath deleted")
	}
	r := e.ovsnet("reconcile")
	if r.code == 0 || !strings.Contains(r.err, "kernel datapath ovs-system is gone") || !strings.Contains(r.err, "restart ovs-vswitchd") {
		t.Fatalf("reconcile with the datapath gone: exit %d, %q", r.code, r.err)
	}
	if d := e.ovsnet("doctor"); !strings.Contains(d.out+d.err, "ovs-system is gone") {
		t.Fatalf("doctor does not see the datapath gone:\n%s%s", d.out, d.err)
	}

	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.dumpFlows("br0"), "cookie="); n != 0 {
		t.Fatalf("a new ovs-vswitchd has %d flows on br0 before reconcile", n)
	}
	if r := e.ovsnet("reconcile"); r.code != 0 {
		t.Fatalf("reconcile after the restart: exit %d: %s%s", r.code, r.out, r.err)
	}
	ping(t, c1, "10.81.0.3")
	ping(t, c2, "10.81.0.2")
	ping(t, c1, "10.81.0.1") // the bridge's own port was made again: its address is back
	if d := e.ovsnet("doctor"); !strings.Contains(d.out, "ND extension no") || !strings.Contains(d.out, "relayed to their owners") {
		t.Fatalf("doctor does not report the kernel datapath's features:\n%s%s", d.out, d.err)
	}
}

// On the kernel datapath the warm pool holds veths only, whatever types
// it is asked for (an internal port cannot be renamed in its container
// there), and an attach takes one as on the userspace datapath.
func TestWarmPoolKernel(t *testing.T) {
	onlyKernel(t, "the userspace datapath's pool, with internal ports, is TestWarmPool's")
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.86.0.0/24")
	e.occupy("br0", "10.86.0.200")
	e.startController("127.0.0.1:19486", "--pool", "2", "--pool-types", "veth,internal")
	before := e.poolReady("br0", 2, "veth")
	c1, c2 := e.container(), e.container()
	p1 := e.addPortJSON("add-port", "br0", "eth1", c1, "--ip")
	p2 := e.addPortJSON("add-port", "br0", "eth1", c2, "--ip")
	for _, p := range []portJSON{p1, p2} {
		if p.Type != "veth" || !slices.ContainsFunc(before, func(q portJSON) bool { return q.OVSPort == p.OVSPort }) {
			t.Fatalf("%s was not taken from the pool %+v: %+v", p.Container, before, p)
		}
	}
	ping(t, c1, addrOf(p2))
	ping(t, c2, "10.86.0.1")
	e.poolReady("br0", 2, "veth")
	e.must("del-br", "br0")
	if out := run(t, "ip", "-n", e.sb.Netns, "-o", "link", "show"); strings.Contains(out, " on") || strings.Contains(out, " op") {
		t.Fatalf("del-br left pool devices:\n%s", out)
	}
}
