package nb

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

func TestPortGroupName(t *testing.T) {
	a, b := PortGroupName("lab-1"), PortGroupName("lab_1")
	if a == b || !strings.HasPrefix(a, "ovsnet_lab_1_") {
		t.Fatalf("%q %q", a, b)
	}
	for _, r := range PortGroupName("a.b-c") {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			t.Fatalf("%q is not an identifier", PortGroupName("a.b-c"))
		}
	}
}

func TestWantACLs(t *testing.T) {
	ports := []ovnnb.LogicalSwitchPort{
		{Name: "pa", Addresses: []string{"0a:58:0a:00:00:02 10.0.0.2"}, ExternalIDs: map[string]string{intent.KeyContainerID: "a"}},
		{Name: "pb", Addresses: []string{"0a:58:0a:00:00:03 10.0.0.3 fd00::3"}, ExternalIDs: map[string]string{intent.KeyContainerID: "b"}},
	}
	ext := map[string]string{intent.KeyOwner: intent.OwnerOvsnet, intent.KeyICC: "true", intent.LinkKey("a", "b"): "all"}
	if acls, errs := WantACLs(intent.DecodeBridge("n", ext), ports, Peers{}, nil, "pg"); len(acls)+len(errs) != 0 {
		t.Fatalf("an open network has ACLs: %+v %v", acls, errs)
	}
	ext[intent.KeyICC] = "false"
	ext[intent.LinkKey("b", "a")] = "80/tcp,53/udp"
	ext[intent.LinkKey("a", "c")] = "all" // c not attached: nothing
	acls, errs := WantACLs(intent.DecodeBridge("n", ext), ports, Peers{}, nil, "pg")
	var got []string
	for _, a := range acls {
		got = append(got, string(a.Action)+" "+a.Match)
	}
	want := []string{
		"drop outport == @pg && (ip4.src == $pg_ip4 || ip6.src == $pg_ip6)",
		`allow-related outport == {"pb"} && ip4.src == {10.0.0.2}`,
		`allow-related outport == {"pa"} && (ip4.src == {10.0.0.3} || ip6.src == {fd00::3}) && (tcp.dst == 80 || udp.dst == 53)`,
	}
	if len(errs) != 0 || len(got) != 3 || got[0] != want[0] || !slices.Contains(got, want[1]) || !slices.Contains(got, want[2]) {
		t.Fatalf("got %q, %v", got, errs)
	}
	// A link whose ports do not decode grants nothing, and says so; an
	// isolation value that does not decode isolates.
	ext[intent.LinkKey("b", "a")] = "80/sctp"
	ext[intent.KeyICC] = "maybe"
	acls, errs = WantACLs(intent.DecodeBridge("n", ext), ports, Peers{}, nil, "pg")
	if len(errs) != 1 || len(acls) != 2 || acls[0].Action != ovnnb.ACLActionDrop {
		t.Fatalf("bad link: %+v %v", acls, errs)
	}
}

// A network on a router, even an open one, drops what comes through the
// router unless a link lets it in; a link's source may be on another
// network of the router (peers), never its destination.
func TestWantACLsRouted(t *testing.T) {
	ports := []ovnnb.LogicalSwitchPort{
		{Name: "pa", Addresses: []string{"0a:58:0a:00:00:02 10.0.0.2"}, ExternalIDs: map[string]string{intent.KeyContainerID: "a"}},
		{Name: RouterSwitchPortName("n"), Type: "router", Addresses: []string{"router"}},
	}
	peers := Peers{Ports: []ovnnb.LogicalSwitchPort{
		{Name: "px", Addresses: []string{"0a:58:0a:01:00:02 10.1.0.2"}, ExternalIDs: map[string]string{intent.KeyContainerID: "x"}},
	}, Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1")}}
	ext := map[string]string{intent.KeyOwner: intent.OwnerOvsnet, intent.KeyICC: "true", intent.LinkKey("x", "a"): "all", intent.LinkKey("a", "x"): "all",
		intent.KeySubnet: "10.0.0.0/24"}
	udp := ovnnb.LoadBalancerProtocolUDP
	lbs := []ovnnb.LoadBalancer{{Protocol: &udp, Vips: map[string]string{"172.30.0.1:53": "10.0.0.3:5353,10.0.0.2:53"}, ExternalIDs: map[string]string{intent.KeyService: "dns"}}}
	acls, errs := WantACLs(intent.DecodeBridge("n", ext), ports, peers, lbs, "pg")
	var got []string
	for _, a := range acls {
		got = append(got, string(a.Action)+" "+a.Match)
	}
	want := []string{
		`drop outport == @pg && inport == "ovsnet-rtr-n" && ip && ip4.src != {10.0.0.0/24, 10.1.0.1}`,
		"allow-related outport == @pg && ip",
		"allow-related outport == @pg && ((ip4.dst == 10.0.0.2 && udp.dst == 53) || (ip4.dst == 10.0.0.3 && udp.dst == 5353))",
		`allow-related outport == {"pa"} && ip4.src == {10.1.0.2}`,
	}
	if len(errs) != 0 || !slices.Equal(got, want) {
		t.Fatalf("got %q, %v", got, errs)
	}
	if acls[0].Priority <= acls[1].Priority || acls[2].Priority <= acls[0].Priority || acls[3].Priority <= acls[0].Priority {
		t.Fatalf("priorities: drop %d, stateful %d, link %d", acls[0].Priority, acls[1].Priority, acls[2].Priority)
	}
}
