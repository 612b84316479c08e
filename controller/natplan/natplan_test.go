package natplan

import (
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// natTopology holds bridges named by their settings, each with one
// container interface publishing 8080 -> 80 from address 10.N.0.2.
func natTopology(bridges map[string]map[string]string) *ovsdb.Topology {
	topo := &ovsdb.Topology{Ports: map[string]vswitchd.Port{}, Interfaces: map[string]vswitchd.Interface{}}
	n := 0
	for name, set := range bridges {
		n++
		ext := intent.NewBridge()
		for k, v := range set {
			ext[k] = v
		}
		ms, _ := nat.ParseList("0.0.0.0:" + string(rune('0'+n)) + "080:80/tcp")
		ifc := vswitchd.Interface{UUID: "i" + name, Name: "on" + name, ExternalIDs: intent.Publish(ms)}
		ifc.ExternalIDs[intent.KeyOwner], ifc.ExternalIDs[intent.KeyContainerID], ifc.ExternalIDs[intent.KeyIPv4] = intent.OwnerOvsnet, "c"+name, "10.0.0.2/24"
		p := vswitchd.Port{UUID: "p" + name, Name: ifc.Name, Interfaces: []string{ifc.UUID}}
		topo.Ports[p.UUID], topo.Interfaces[ifc.UUID] = p, ifc
		topo.Bridges = append(topo.Bridges, vswitchd.Bridge{UUID: "b" + name, Name: name, Ports: []string{p.UUID}, ExternalIDs: ext})
	}
	return topo
}

func TestOf(t *testing.T) {
	topo := natTopology(map[string]map[string]string{
		"natted":  {intent.KeySubnet: "10.1.0.0/24"},
		"routed":  {intent.KeySubnet: "10.2.0.0/24", intent.KeyNAT: "false"},
		"v6":      {intent.KeySubnet: "fd00:3::/64"},
		"badnet":  {intent.KeySubnet: "10.4.0.0/33"},
		"deleted": {intent.KeySubnet: "10.5.0.0/24", intent.KeyState: intent.StateDeleting},
	})
	p := Of(topo)
	var names []string
	for _, b := range p.Bridges {
		names = append(names, b.Name)
	}
	if got := strings.Join(names, ","); got != "natted,routed" {
		t.Errorf("bridges with IPv4 NAT rules: %s", got)
	}
	if strings.Join(p.IPv6, ",") != "v6" {
		t.Errorf("bridges routing IPv6: %v", p.IPv6)
	}
	// Isolation: every IPv4 bridge's jump comes before any bridge's
	// accept, whatever their names' order; the IPv6 bridges get their own.
	firstAccept, lastJump := len(p.Rules), -1
	for i, r := range p.Rules {
		s := r.String()
		if r.Chain == nat.ChainForward && strings.HasSuffix(strings.Join(r.Spec, " "), "-j "+nat.ChainIsolate) {
			lastJump = i
		}
		if strings.Contains(s, "-j ACCEPT") && i < firstAccept {
			firstAccept = i
		}
	}
	if lastJump < 0 || lastJump > firstAccept {
		t.Errorf("isolation jumps must precede every accept: last jump %d, first accept %d\n%v", lastJump, firstAccept, p.Rules)
	}
	if len(p.Rules6) != 2 || !strings.Contains(p.Rules6[0].String(), "-i v6 ! -o v6") || p.Rules6[1].String() != "filter OVSNET-ISOLATE -o v6 -m comment --comment ovsnet: bridge v6 -j DROP" {
		t.Errorf("IPv6 isolation rules: %v", p.Rules6)
	}
	if len(p.Keep) != 1 || p.Keep[0] != "badnet" {
		t.Errorf("a bridge whose subnet does not decode keeps its rules as they are: keep %v", p.Keep)
	}
	var dnat []string
	for _, r := range p.Rules {
		if s := r.String(); strings.Contains(s, "--dport") {
			dnat = append(dnat, s)
		}
	}
	// Published ports: the NAT bridge's, and the bad bridge's (kept
	// published, as they were); not the routed one's, not the deleted one's.
	if len(dnat) != 2 || !strings.Contains(dnat[0], "cbadnet/") || !strings.Contains(dnat[1], "cnatted/") {
		t.Errorf("DNAT rules: %v", dnat)
	}
	if p.Key() != Of(topo).Key() {
		t.Error("the same intent gives another key")
	}
}
