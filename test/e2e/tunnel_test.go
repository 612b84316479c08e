package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// newHosts starts n sandbox hosts joined by an underlay: a Linux bridge in
// a netns of its own (the switch) and, on host i, a veth "ul0" with
// 192.0.2.(i+1)/24.
func newHosts(t *testing.T, n int) []*env {
	t.Helper()
	sw := uniq("ovt-sw")
	if err := sandbox.AddNetns(sw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sandbox.DelNetns(sw) })
	run(t, "ip", "-n", sw, "link", "add", "sw", "type", "bridge")
	run(t, "ip", "-n", sw, "link", "set", "sw", "up")
	var hs []*env
	for i := 0; i < n; i++ {
		e := newEnv(t)
		port := fmt.Sprintf("p%d", i)
		run(t, "ip", "-n", e.sb.Netns, "link", "add", "ul0", "type", "veth", "peer", "name", port, "netns", sw)
		run(t, "ip", "-n", e.sb.Netns, "addr", "add", underlayAddr(i)+"/24", "dev", "ul0")
		run(t, "ip", "-n", e.sb.Netns, "link", "set", "ul0", "up")
		run(t, "ip", "-n", sw, "link", "set", port, "master", "sw", "up")
		hs = append(hs, e)
	}
	return hs
}

func underlayAddr(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }

// mesh creates br0 on every host (10.97.0.0/16, host i has 10.97.(i+1).0/24)
// and a tunnel from every host to every other.
func mesh(t *testing.T, hs []*env, typ string, brArgs ...string) {
	t.Helper()
	for i, h := range hs {
		h.must(append([]string{"add-br", "br0", "--subnet", "10.97.0.0/16", "--ip-range", fmt.Sprintf("10.97.%d.0/24", i+1)}, brArgs...)...)
	}
	for i, h := range hs {
		for j := range hs {
			if i != j {
				h.must("tunnel", "add", "br0", underlayAddr(j), "--type", typ, "--key", "5")
			}
		}
	}
}

func mtuOf(t *testing.T, netns, dev string) string {
	t.Helper()
	out := run(t, "ip", "-n", netns, "-o", "link", "show", dev)
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "mtu" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// Two hosts, each tunnel type: containers reach each other with addresses
// from their hosts' ranges, MTU leaves room for the encapsulation and
// full-size segments pass, tunnel del cuts the path.
func TestTunnelTwoHosts(t *testing.T) {
	for _, typ := range []string{"vxlan", "gre"} {
		t.Run(typ, func(t *testing.T) {
			hs := newHosts(t, 2)
			a, b := hs[0], hs[1]
			mesh(t, hs, typ)
			ca, cb := a.container(), b.container()
			a.must("add-port", "br0", "eth1", ca, "--ip")
			b.must("add-port", "br0", "eth1", cb, "--ip")
			if got := addrs(t, ca); !strings.Contains(strings.Join(got, " "), "10.97.1.2/16") {
				t.Fatalf("host A's container has %v, want 10.97.1.2/16 from A's range", got)
			}
			if got := addrs(t, cb); !strings.Contains(strings.Join(got, " "), "10.97.2.2/16") {
				t.Fatalf("host B's container has %v, want 10.97.2.2/16 from B's range", got)
			}
			want := map[string]string{"vxlan": "1450", "gre": "1458"}[typ]
			if got := mtuOf(t, ca, "eth1"); got != want {
				t.Fatalf("container MTU %s over %s, want %s (underlay 1500)", got, typ, want)
			}
			ping(t, ca, "10.97.2.2")
			ping(t, cb, "10.97.1.2")
			tcpTransfer(t, nsPath(ca), nsPath(cb), "10.97.2.2", 4<<20)
			tcpTransfer(t, nsPath(cb), nsPath(ca), "10.97.1.2", 4<<20)

			list := a.must("tunnel", "list", "br0")
			if !strings.Contains(list, "192.0.2.2") || !strings.Contains(list, typ) || !strings.Contains(list, " up") {
				t.Fatalf("tunnel list:\n%s", list)
			}
			// Again: nothing changes.
			if out := a.must("tunnel", "add", "br0", "192.0.2.2", "--type", typ, "--key", "5"); !strings.Contains(out, "unchanged") {
				t.Fatalf("second tunnel add: %s", out)
			}
			a.fails("already has a", "tunnel", "add", "br0", "192.0.2.2", "--type", typ, "--key", "6")

			a.must("tunnel", "del", "br0", "192.0.2.2")
			noPing(t, ca, "10.97.2.2")
			// The underlay address is back on its device.
			if out := run(t, "ip", "-n", a.sb.Netns, "-o", "addr", "show", "dev", "ul0"); !strings.Contains(out, "192.0.2.1/24") {
				t.Fatalf("underlay address not given back to ul0:\n%s", out)
			}
			a.fails("no tunnel to", "tunnel", "del", "br0", "192.0.2.2")
		})
	}
}


