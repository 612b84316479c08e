package e2e

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// meterStats reads meter id's packets in and dropped on bridge.
func (e *env) meterStats(bridge string, id int) (in, dropped int) {
	e.t.Helper()
	in, dropped, err := e.sb.MeterStats(bridge, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in, dropped
}

// flood runs hping3 --flood from netns at addr for about two seconds and
// returns how long it ran.
func flood(t *testing.T, netns, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	out, err := exec.Command("ip", "netns", "exec", netns, "timeout", "-s", "INT", "2", "hping3", "--flood", addr).CombinedOutput()
	took := time.Since(start)
	if !strings.Contains(string(out), "packets transmitted") {
		t.Fatalf("hping3 --flood from %s: %v: %s", netns, err, out)
	}
	return took
}

// A container's flood through the switch is held to its port's bound:
// the meter drops the excess (most of the flood), what passes stays
// within rate x time + burst, TCP connections under way are not metered,
// containers on another bridge keep talking, and the meters come back
// after drift and after ovs-vswitchd restarts. The bound comes from the
// bridge (add-br --flood-limit) unless the port has its own.
func TestFloodContained(t *testing.T) {
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Fatal("hping3 is not installed (./deploy/deps.sh installs it)")
	}
	const limit = 500
	e := newEnv(t)
	att, tgt, v1, v2 := e.container(), e.container(), e.container(), e.container()
	e.fails("flood bound", "add-br", "brx", "--flood-limit", "-5")
	e.must("add-br", "br0", "--subnet", "10.71.0.0/24", "--flood-limit", strconv.Itoa(limit))
	e.must("add-br", "br0", "--subnet", "10.71.0.0/24", "--flood-limit", strconv.Itoa(limit)) // the same: unchanged
	e.fails("flood-pps is", "add-br", "br0", "--subnet", "10.71.0.0/24", "--flood-limit", "700")
	e.must("add-br", "br1", "--subnet", "10.72.0.0/24")
	pa := e.addPortJSON("add-port", "br0", "eth1", att, "--ip")
	pt := e.addPortJSON("add-port", "br0", "eth1", tgt, "--ip", "--flood-limit", "0")
	pv := e.addPortJSON("add-port", "br1", "eth1", v1, "--ip")
	e.must("add-port", "br1", "eth1", v2, "--ip")
	if pa.FloodPPS != limit || pt.FloodPPS != 0 || pv.FloodPPS != 100000 {
		t.Fatalf("flood bounds: the bridge's %d, the port's own 0, the default: got %d, %d, %d", limit, pa.FloodPPS, pt.FloodPPS, pv.FloodPPS)
	}
	table0, _ := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", "br0", "table=0")
	if !strings.Contains(table0, fmt.Sprintf("in_port=%d actions=meter:%d,", pa.Ofport, pa.Ofport)) ||
		strings.Contains(table0, fmt.Sprintf("meter:%d,", pt.Ofport)) {
		t.Fatalf("want a meter on port %d only:\n%s", pa.Ofport, table0)
	}
	ping(t, att, "10.71.0.3")

	contained := func(when string) {
		t.Helper()
		in0, drop0 := e.meterStats("br0", pa.Ofport)
		victims := make(chan error, 1)
		go func() {
			out, err := exec.Command("ip", "netns", "exec", v1, "ping", "-c", "10", "-i", "0.1", "-W", "2", "10.72.0.3").CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			}
			victims <- err
		}()
		took := flood(t, att, "10.71.0.3")
		in, drop := e.meterStats("br0", pa.Ofport)
		in, drop = in-in0, drop-drop0
		passed, most := in-drop, int(float64(limit)*(took.Seconds()+1))+limit/5+64
		t.Logf("%s: %d packets into the meter in %v, %d dropped, %d passed (bound %d)", when, in, took, drop, passed, most)
		if in < 3*most {
			t.Fatalf("%s: the flood sent only %d packets through the meter: no flood to contain", when, in)
		}
		if passed > most {
			t.Fatalf("%s: %d packets of the flood passed, want at most %d (%d pps for %v plus the burst)", when, passed, most, limit, took)
		}
		if err := <-victims; err != nil {
			t.Fatalf("%s: ping on the other bridge during the flood: %v", when, err)
		}
	}
	contained("flood")

	// TCP under way is not metered: a 64 MiB transfer (over a thousand
	// segments) puts only its first packets through the meter.
	in0, _ := e.meterStats("br0", pa.Ofport)
	tcpTransfer(t, nsPath(att), nsPath(tgt), "10.71.0.3", 64<<20)
	if in, _ := e.meterStats("br0", pa.Ofport); in-in0 > 100 {
		t.Fatalf("a TCP transfer put %d packets through the meter, want its connection's first few", in-in0)
	}

	// Drift and a restarted ovs-vswitchd (which has no meters): reconcile
	// puts the meter back.
	e.meterRestored("br0", pa.Ofport, limit)
	e.must("reconcile")
	ping(t, att, "10.71.0.3")
	contained("after a restart of ovs-vswitchd")
	e.floodLimitsChanged(att, tgt)
}

// floodLimitsChanged changes the bounds of br0 (10.71.0.0/24), whose
// ports att and tgt (bound 0) are, with set-flood-limit: one port, then
// the bridge and all its ports (and what its new ports get), then one port
// off again; each change shows in the meters and the classifier's flows.
func (e *env) floodLimitsChanged(att, tgt string) {
	t := e.t
	t.Helper()
	meters := func() string { m, _ := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-meters", "br0"); return m }
	metered := func() int {
		f, _ := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", "br0", "table=0")
		return strings.Count(f, "meter:")
	}
	e.fails("failed to find any attached port", "set-flood-limit", "br0", "eth9", tgt, "300")
	e.fails("flood bound", "set-flood-limit", "br0", "lots")
	e.must("set-flood-limit", "br0", "eth1", tgt, "300")
	if m := meters(); !strings.Contains(m, "rate=300 ") || !strings.Contains(m, "rate=500 ") || metered() != 2 {
		t.Fatalf("one port's bound set: want meters at 300 and 500 and 2 metered ports:\n%s", m)
	}
	if out := e.must("set-flood-limit", "br0", "200", "-o", "json"); !strings.Contains(out, `"ports": 2`) {
		t.Fatalf("the bridge's bound: %s", out)
	}
	if m := meters(); strings.Count(m, "rate=200 ") != 2 || metered() != 2 {
		t.Fatalf("the bridge's bound set: want both meters at 200:\n%s", m)
	}
	if p := e.addPortJSON("add-port", "br0", "eth1", e.container(), "--ip"); p.FloodPPS != 200 {
		t.Fatalf("a new port after set-flood-limit br0 200 got %d", p.FloodPPS)
	}
	e.must("set-flood-limit", "br0", "eth1", att, "0")
	if n := metered(); n != 2 { // tgt and the new port
		t.Fatalf("a port's bound removed: %d metered ports, want 2", n)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("reconcile after set-flood-limit: %q", out)
	}
	ping(t, att, "10.71.0.3")
}

// meterRestored checks that reconcile finds nothing to change, then puts
// meter id back at its rate after it is changed by hand, and that a
// restarted ovs-vswitchd starts with no meters (the caller reconciles).
func (e *env) meterRestored(bridge string, id, rate int) {
	t := e.t
	t.Helper()
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("reconcile finds drift where there is none: %q", out)
	}
	if _, err := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "mod-meter", bridge,
		fmt.Sprintf("meter=%d,pktps,burst,stats,bands=type=drop,rate=99999,burst_size=5", id)); err != nil {
		t.Fatal(err)
	}
	if out := e.must("reconcile"); !strings.Contains(out, "resynced flows on "+bridge) {
		t.Fatalf("reconcile did not see the meter's drift: %q", out)
	}
	if m, _ := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-meters", bridge); !strings.Contains(m, fmt.Sprintf("meter=%d pktps burst stats bands=\ntype=drop rate=%d ", id, rate)) {
		t.Fatalf("the meter was not put back:\n%s", m)
	}
	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-meters", bridge); strings.Contains(m, "meter=") {
		t.Fatalf("a new ovs-vswitchd has meters before reconcile:\n%s", m)
	}
}
