package e2e

import (
	"net"
	"strings"
	"testing"
)

// Bridges are isolated from each other in both families, whichever was
// made first and with or without --icc=false: nothing unpublished crosses
// from one bridge to another, while published ports (from another bridge
// too), egress and links keep working, and del-br leaves no rule in either
// iptables.
func TestBridgesIsolated(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	a, a2, b := e.container(), e.container(), e.container()
	e.must("add-br", "bra", "--subnet", "10.72.0.0/24", "--subnet", "fd00:72::/64", "--icc=false")
	e.must("add-br", "brb", "--subnet", "10.73.0.0/24", "--subnet", "fd00:73::/64")
	pa := e.addPortJSON("add-port", "bra", "eth1", a, "--ip")
	pa2 := e.addPortJSON("add-port", "bra", "eth1", a2, "--ip")
	pb := e.addPortJSON("add-port", "brb", "eth1", b, "--ip", "-p", "8080:80")
	addr := func(p portJSON, v6 bool) string {
		for _, s := range p.Addresses {
			ip := strings.Split(s, "/")[0]
			if strings.Contains(ip, ":") == v6 {
				return ip
			}
		}
		t.Fatalf("%s has no address of that family: %v", p.Container, p.Addresses)
		return ""
	}
	for _, v6 := range []bool{false, true} {
		for _, c := range []struct {
			src, dst string
			to       portJSON
		}{{a, b, pb}, {b, a, pa}} {
			hp := net.JoinHostPort(addr(c.to, v6), "7200")
			if err := tcpVia(t, c.src, hp, c.dst, hp); err == nil {
				t.Fatalf("TCP from %s to %s on another bridge got through", c.src, hp)
			}
		}
	}
	// Published ports answer other bridges' containers, as they answer
	// the outside; egress and links work.
	if err := tcpVia(t, a, "192.0.2.1:8080", b, addr(pb, false)+":80"); err != nil {
		t.Fatalf("a published port from another bridge: %v", err)
	}
	if err := tcpVia(t, out, "192.0.2.1:8080", b, addr(pb, false)+":80"); err != nil {
		t.Fatalf("a published port from outside: %v", err)
	}
	ping(t, a, "192.0.2.2")
	ping(t, b, "192.0.2.2")
	e.must("link", "bra", a, a2, "--port", "7300/tcp")
	if err := tcpOpen(t, a, a2, addr(pa2, false), 7300); err != nil {
		t.Fatalf("a link on an isolated bridge: %v", err)
	}
	hp6 := net.JoinHostPort(addr(pa2, true), "7300")
	if err := tcpVia(t, a, hp6, a2, hp6); err != nil {
		t.Fatalf("a link over IPv6: %v", err)
	}
	for _, s := range []string{"ip6tables-save", "iptables-save"} {
		if save, _ := e.sb.Run(s); !strings.Contains(save, "-A OVSNET-ISOLATE -o brb") {
			t.Fatalf("%s lacks the isolation rules:\n%s", s, save)
		}
	}
	e.must("del-br", "bra")
	e.must("del-br", "brb")
	for _, s := range []string{"ip6tables-save", "iptables-save"} {
		if save, _ := e.sb.Run(s); len(ovsnetRules(save)) > 0 {
			t.Fatalf("%s after the last del-br: %v", s, ovsnetRules(save))
		}
	}
}
