package e2e

import (
	"strings"
	"testing"
	"time"
)

// txCsum reports "on" or "off": ethtool's tx-checksumming of dev, run in
// netns (with ip netns exec, so that ethtool sees that netns's devices).
func txCsum(t *testing.T, netns, dev string) string {
	t.Helper()
	out := run(t, "ip", "netns", "exec", netns, "ethtool", "-k", dev)
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "tx-checksumming: "); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no tx-checksumming in ethtool -k %s (netns %s): %q", dev, netns, out)
	return ""
}

// A veth on the userspace datapath keeps its TX offloads while the running
// ovs-vswitchd has userspace TSO on (it then takes partial-checksum and
// segmented packets), and has them off while TSO is off (TCP would stall).
// ovs-vswitchd reads the setting at its start only: after a restart with
// the other setting, reconcile changes the veths already attached, both ways,
// and TCP gets through every time.
func TestVethOffloadFollowsTSO(t *testing.T) {
	onlyUserspace(t, "offloads follow userspace TSO, which only the userspace datapath has")
	e := newEnv(t) // userspace TSO on
	c1, c2, c3 := e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.79.0.0/24")
	p1 := e.addPortJSON("add-port", "br0", "eth1", c1, "--ip", "--type", "veth")
	p2 := e.addPortJSON("add-port", "br0", "eth1", c2, "--ip", "--type", "veth")
	check := func(when, want string, ps ...portJSON) {
		t.Helper()
		for _, p := range ps {
			if got := txCsum(t, p.Container, "eth1"); got != want {
				t.Fatalf("%s: TX checksum offload of %s/eth1 is %s, want %s", when, p.Container, got, want)
			}
			if got := txCsum(t, e.sb.Netns, p.OVSPort); got != want {
				t.Fatalf("%s: TX checksum offload of host end %s is %s, want %s", when, p.OVSPort, got, want)
			}
			key, _ := e.sb.Vsctl("--if-exists", "get", "interface", p.OVSPort, "external_ids:ovsnet-tx-offload")
			if rec := strings.Trim(strings.TrimSpace(key), `"`); (rec == "off") != (want == "off") {
				t.Fatalf("%s: %s records ovsnet-tx-offload=%q with offload %s", when, p.OVSPort, rec, want)
			}
		}
		tcpTransfer(t, nsPath(ps[0].Container), nsPath(ps[1].Container), strings.Split(ps[1].Addresses[0], "/")[0], 16<<20)
		tcpTransfer(t, nsPath(ps[1].Container), nsPath(ps[0].Container), strings.Split(ps[0].Addresses[0], "/")[0], 16<<20)
	}
	check("TSO on", "on", p1, p2)
	if out := e.must("reconcile"); strings.Contains(out, "TX offload") {
		t.Fatalf("reconcile changed offloads with nothing to change: %q", out)
	}

	restart := func(tso, want string, n int) {
		t.Helper()
		if _, err := e.sb.Vsctl("set", "Open_vSwitch", ".", "other_config:userspace-tso-enable="+tso); err != nil {
			t.Fatal(err)
		}
		if err := e.sb.StopVswitchd(); err != nil {
			t.Fatal(err)
		}
		if err := e.sb.StartVswitchd(); err != nil {
			t.Fatal(err)
		}
		// The new ovs-vswitchd opens the bridge's own port when it has read
		// the database: until then reconcile leaves offloads alone.
		var changed []string
		eventually(t, 30*time.Second, "reconcile turns veth offloads "+want, func() bool {
			// It may fail while ovs-vswitchd starts: its output still says
			// what it changed.
			for _, l := range strings.Split(e.ovsnet("reconcile").out, "\n") {
				if strings.Contains(l, "turned TX offload "+want) {
					changed = append(changed, l)
				}
			}
			return len(changed) >= n
		})
		if len(changed) != n {
			t.Fatalf("reconcile changed offloads of %d veths, want %d: %q", len(changed), n, changed)
		}
	}
	restart("false", "off", 2)
	check("after a restart with TSO off", "off", p1, p2)
	// A new veth on this host gets them off from the start.
	p3 := e.addPortJSON("add-port", "br0", "eth1", c3, "--ip", "--type", "veth")
	check("attached with TSO off", "off", p3, p1)

	restart("true", "on", 3)
	check("after a restart with TSO on", "on", p1, p2)
	check("after a restart with TSO on", "on", p3, p2)
}
