package flows

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/flows/openflow"
)

func text(t *testing.T, fs []*openflow.Flow) []string {
	t.Helper()
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

func dual() PortModel {
	mac, _ := net.ParseMAC("02:00:00:00:00:02")
	return PortModel{Name: "on0123456789ab", Ofport: 7, MAC: mac, VLAN: 0,
		Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")}}
}

func TestPortFlowsBudget(t *testing.T) {
	fs := PortFlows(dual())
	if len(fs) > 12 {
		t.Fatalf("%d flows for a dual-stack port, budget is 12", len(fs))
	}
	all := strings.Join(text(t, fs), "\n")
	for _, want := range []string{
		"table=0,priority=100,cookie=0x0259fc95b5a406c4,in_port=7,actions=load:0x1->NXM_NX_REG0[],load:0x0->NXM_NX_REG2[],resubmit(,10)",
		"ip,in_port=7,dl_src=02:00:00:00:00:02,nw_src=10.0.0.2",
		"arp,in_port=7,dl_src=02:00:00:00:00:02,arp_sha=02:00:00:00:00:02,arp_spa=10.0.0.2",
		"ipv6,in_port=7,dl_src=02:00:00:00:00:02,ipv6_src=fd00::2",
		"ipv6_src=fe80::/10",
		"table=10,priority=110,cookie=0x0259fc95b5a406c4,icmp6,in_port=7,icmpv6_type=136,actions=load:0xc->NXM_NX_REG7[],resubmit(,60)",
		"table=10,priority=120,cookie=0x0259fc95b5a406c4,icmp6,in_port=7,icmpv6_type=136,icmpv6_code=0,dl_src=02:00:00:00:00:02,nd_tll=02:00:00:00:00:02,ipv6_src=fd00::2,nd_target=fd00::2,",
		"nd_tll=02:00:00:00:00:02,ipv6_src=fe80::/10,nd_target=fd00::2,actions=resubmit(,20)",
		"arp_op=1,arp_tpa=10.0.0.2,reg2=0,actions=local,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
		"load:0x20000000002->NXM_NX_ARP_SHA[],load:0xa000002->NXM_OF_ARP_SPA[],in_port",
		"icmpv6_type=135,icmpv6_code=0,nd_target=fd00::2,reg2=0,actions=load:0x7->NXM_NX_REG4[],clone(move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:02->eth_src,move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],set_field:fd00::2->ipv6_src,set_field:136->icmpv6_type,load:0x1->NXM_NX_REG6[],resubmit(,21)),resubmit(,22)",
		"icmpv6_type=136,icmpv6_code=0,dl_src=02:00:00:00:00:02,nd_tll=00:00:00:00:00:00,ipv6_src=fd00::2,nd_target=fd00::2,actions=resubmit(,20)",
		"table=30,priority=100,cookie=0x0259fc95b5a406c4,dl_dst=02:00:00:00:00:02,reg2=0,actions=load:0x7->NXM_NX_REG4[],load:0x1->NXM_NX_REG5[],resubmit(,40)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	for _, f := range fs {
		if f.Cookie != PortCookie("on0123456789ab") {
			t.Fatalf("flow with foreign cookie: %s", fmt.Sprintf("%+v", *f))
		}
	}
	// A tagged port's responder sends no copy to the (untagged) gateway.
	p := dual()
	p.VLAN = 10
	if s := strings.Join(text(t, PortFlows(p)), "\n"); strings.Contains(s, "actions=local") || !strings.Contains(s, "reg2=10") {
		t.Fatalf("VLAN 10 port:\n%s", s)
	}
	// No address: MAC-only guard, nothing answered for it.
	p.Addrs = nil
	if fs := PortFlows(p); len(fs) != 3 {
		t.Fatalf("address-less port: %d flows: %v", len(fs), text(t, fs))
	}
}

// Every flow matching an ND field matches the ICMPv6 code too: else
// ovs-vswitchd leaves ND fields out of kernel datapath flow masks, and one
// cached verdict covers every target (seen on Linux 6.1: a container's
// spoofed advertisement dropped, and its own after it dropped too).
func TestNDFieldsWithCode(t *testing.T) {
	gw, _ := net.ParseMAC("02:00:00:00:00:01")
	fs := BridgeFlows(BridgeModel{Gateways: []netip.Addr{netip.MustParseAddr("fd00::1")}, GatewayMAC: gw,
		Subnets: []netip.Prefix{netip.MustParsePrefix("fd00::/64")}, Ranges: []netip.Prefix{netip.MustParsePrefix("fd00::/120")}, Tunnels: []int{9}})
	fs = append(fs, PortFlows(dual())...)
	n := 0
	for _, f := range text(t, fs) {
		if strings.Contains(f, "nd_target=") || strings.Contains(f, "nd_tll=") {
			n++
			if !strings.Contains(f, "icmpv6_code=0") {
				t.Errorf("ND fields without the code: %s", f)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d flows match ND fields", n)
	}
}

func TestBridgeFlows(t *testing.T) {
	gw, _ := net.ParseMAC("02:00:00:00:00:01")
	open := strings.Join(text(t, BridgeFlows(BridgeModel{ICC: true, Gateways: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, GatewayMAC: gw})), "\n")
	if !strings.Contains(open, "table=30,priority=100,cookie=0x0100000000000000,dl_dst=02:00:00:00:00:01,reg2=0") || !strings.Contains(open, "table=30,priority=50,cookie=0x0100000000000000,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,reg0=1,reg2=0") {
		t.Fatalf("gateway MAC or multicast flow missing:\n%s", open)
	}
	if strings.Contains(open, "ct(") {
		t.Fatalf("icc=true bridge uses conntrack:\n%s", open)
	}
	// The gateway's ARP is answered with the bridge's MAC (no copy to LOCAL:
	// it is LOCAL's own address); without a known MAC it goes to LOCAL.
	if !strings.Contains(open, "table=20,priority=200,cookie=0x0100000000000000,arp,arp_op=1,arp_tpa=10.0.0.1,reg2=0,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:01->eth_src") || !strings.Contains(open, "actions=output:NXM_NX_REG4[]") {
		t.Fatalf("gateway ARP responder or output missing:\n%s", open)
	}
	// A datapath that writes ND options answers solicitations; one that
	// cannot (the kernel's) relays them and writes none.
	const finish = "table=21,priority=100,cookie=0x0100000000000000,icmp6,icmpv6_type=136,reg6=1,actions=move:NXM_OF_ETH_SRC[]->NXM_NX_ND_TLL[],set_field:2->nd_options_type,set_field:0x60000000->nd_reserved,in_port"
	const relay = "table=22,priority=100,cookie=0x0100000000000000,icmp6,icmpv6_type=135,actions=output:NXM_NX_REG4[]"
	if strings.Contains(open, finish) || !strings.Contains(open, relay) || strings.Contains(open, "nd_options_type") {
		t.Fatalf("relaying bridge answers ND, or does not relay:\n%s", open)
	}
	answering := strings.Join(text(t, BridgeFlows(BridgeModel{ICC: true, AnswerND: true, GatewayMAC: gw})), "\n")
	if !strings.Contains(answering, finish) || strings.Contains(answering, relay) {
		t.Fatalf("answering bridge does not finish answers, or relays:\n%s", answering)
	}
	noMAC := strings.Join(text(t, BridgeFlows(BridgeModel{ICC: true, Gateways: []netip.Addr{netip.MustParseAddr("10.0.0.1")}})), "\n")
	if !strings.Contains(noMAC, "arp_tpa=10.0.0.1,reg2=0,actions=local") {
		t.Fatalf("gateway ARP without a MAC:\n%s", noMAC)
	}
	// A gateway in a VLAN: reached from that VLAN only, its own packets in it.
	tagged := strings.Join(text(t, BridgeFlows(BridgeModel{ICC: true, Gateways: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, GatewayMAC: gw, GatewayVLAN: 12})), "\n")
	for _, want := range []string{"arp_tpa=10.0.0.1,reg2=12,", "dl_dst=02:00:00:00:00:01,reg2=12,", "reg0=1,reg2=12,actions=load:0xfffe", "in_port=LOCAL,actions=load:0x2->NXM_NX_REG0[],load:0xc->NXM_NX_REG2[]"} {
		if !strings.Contains(tagged, want) {
			t.Errorf("gateway in VLAN 12 lacks %q:\n%s", want, tagged)
		}
	}
	if strings.Contains(tagged, "reg2=0,") {
		t.Errorf("gateway in VLAN 12 reached from untagged ports:\n%s", tagged)
	}
	closed := strings.Join(text(t, BridgeFlows(BridgeModel{ICC: false})), "\n")
	for _, want := range []string{"table=40,priority=100,cookie=0x0100000000000000,ip,reg0=1,reg5=1,actions=ct(table=41,zone=1)", "ct_state=+trk+est", "table=40,priority=90,cookie=0x0100000000000000,reg0=1,reg5=1,actions=load:0xa->NXM_NX_REG7[],resubmit(,60)", "table=41,priority=0,cookie=0x0100000000000000,actions=load:0xb->NXM_NX_REG7[],resubmit(,60)", "table=60,priority=0,cookie=0x0100000000000000,actions=drop"} {
		if !strings.Contains(closed, want) {
			t.Errorf("icc=false lacks %q:\n%s", want, closed)
		}
	}
	if strings.Contains(closed, "+rel") {
		t.Errorf("icc=false passes related packets from any container (links pass their own):\n%s", closed)
	}
}

func TestLinkFlows(t *testing.T) {
	src, dst := dual(), dual()
	dst.MAC, _ = net.ParseMAC("02:00:00:00:00:03")
	dst.Addrs = []netip.Addr{netip.MustParseAddr("10.0.0.3")}
	all := LinkFlows(LinkModel{Src: "a", Dst: "b", SrcPort: src, DstPort: dst})
	if len(all) != 3 {
		t.Fatalf("one family in common: %d flows, want the link's and related both ways", len(all))
	}
	rel := strings.Join(text(t, all), "\n")
	for _, want := range []string{
		"table=41,priority=200,cookie=0x0340d7820d408076,ip,ct_state=+trk+rel,dl_src=02:00:00:00:00:03,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.3,nw_dst=10.0.0.2,actions=resubmit(,50)",
		"table=41,priority=200,cookie=0x0340d7820d408076,ip,ct_state=+trk+rel,dl_src=02:00:00:00:00:02,dl_dst=02:00:00:00:00:03,nw_src=10.0.0.2,nw_dst=10.0.0.3,actions=resubmit(,50)",
	} {
		if !strings.Contains(rel, want) {
			t.Errorf("missing %q in\n%s", want, rel)
		}
	}
	s := strings.Join(text(t, LinkFlows(LinkModel{Src: "a", Dst: "b", SrcPort: src, DstPort: dst, Rules: []Rule{{"tcp", 80}, {"udp", 53}}})), "\n")
	for _, want := range []string{"table=41,priority=100,cookie=0x0340d7820d408076,tcp,ct_state=+trk+new,dl_src=02:00:00:00:00:02,dl_dst=02:00:00:00:00:03,nw_src=10.0.0.2,nw_dst=10.0.0.3,tcp_dst=80,actions=ct(commit,zone=1),resubmit(,50)", "udp,", "udp_dst=53"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if LinkCookie("a", "b") == LinkCookie("b", "a") || LinkCookie("a", "b")&CategoryMask != CatLink {
		t.Fatal("link cookies must be directional and in the link category")
	}
}

func TestOfctlArgs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"diff-flows --subnet /tmp/f", "-O OpenFlow14 -- diff-flows --subnet /tmp/f"},
		{"--bundle replace-flows br0 -", "-O OpenFlow14 --bundle -- replace-flows br0 -"},
	} {
		if got := strings.Join(ofctlArgs(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("%s: %s, want %s", c.in, got, c.want)
		}
	}
}

// meterDiff counts meters missing or at another rate, and names those
// the bridge should not have.
func TestMeterDiff(t *testing.T) {
	have := map[uint32]openflow.Meter{1: {ID: 1, PPS: 10, Burst: 16}, 2: {ID: 2, PPS: 99, Burst: 16}, 5: {ID: 5, PPS: 1, Burst: 16}}
	want := []openflow.Meter{{ID: 1, PPS: 10, Burst: 16}, {ID: 2, PPS: 20, Burst: 16}, {ID: 3, PPS: 30, Burst: 16}}
	wrong, extra := meterDiff(have, want)
	if wrong != 2 || len(extra) != 1 || extra[0] != 5 {
		t.Fatalf("wrong %d (want 2: 2's rate, 3 missing), extra %v (want [5])", wrong, extra)
	}
}

// A port with a flood bound meters all it sends but TCP with an ACK; one
// without has one classifier flow and no meter.
func TestFloodMeteredClassifier(t *testing.T) {
	mac, _ := net.ParseMAC("0a:58:0a:01:00:02")
	p := PortModel{Name: "p", Ofport: 7, MAC: mac, FloodPPS: 1000}
	ch := PortChange(p)
	if len(ch.Meters) != 1 || ch.Meters[0] != (openflow.Meter{ID: 7, PPS: 1000, Burst: 200}) {
		t.Fatalf("meters %+v", ch.Meters)
	}
	var metered, ack int
	for _, f := range ch.Flows {
		if f.Table == uint8(TableClassifier) {
			if f.Meter == 7 {
				metered++
			}
			if strings.Contains(f.String(), "tcp_flags=+ack") && f.Meter == 0 {
				ack++
			}
		}
	}
	if metered != 1 || ack != 2 {
		t.Fatalf("classifier: %d metered, %d TCP-with-ACK flows unmetered; want 1 and 2", metered, ack)
	}
	p.FloodPPS = 0
	if ch := PortChange(p); len(ch.Meters) != 0 || len(ch.Flows) != len(PortFlows(p)) || strings.Contains(fmt.Sprint(ch.Flows), "meter:") {
		t.Fatalf("no bound: %+v", ch)
	}
}

// Every verdict to drop says why and ends in the drop table; the only
// plain drops are the drop table's own and the ends of the ND responder's
// copies (tables 21 and 22).
func TestDropsSayWhy(t *testing.T) {
	m := BridgeModel{ICC: false, Gateways: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")},
		Ranges: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}, Tunnels: []int{9}}
	fs := append(BridgeFlows(m), PortFlows(dual())...)
	reasons := map[string]bool{}
	for _, f := range fs {
		s := f.String()
		if strings.HasSuffix(s, "actions=drop") {
			if f.Table != uint8(TableDrop) && f.Table != uint8(TableNDReply) && f.Table != uint8(TableNDRelay) {
				t.Errorf("a drop that does not say why: %s", s)
			}
			continue
		}
		if i := strings.Index(s, "->NXM_NX_REG7[]"); i >= 0 {
			if !strings.HasSuffix(s, "resubmit(,60)") {
				t.Errorf("a reason that does not end in the drop table: %s", s)
			}
			reasons[s[strings.LastIndex(s[:i], "load:")+5:i]] = true
		}
	}
	if len(reasons) != 12 {
		t.Errorf("%d reasons used, want all 12: %v", len(reasons), reasons)
	}
	for r := DropUnknownPort; r <= DropForeignAdvert; r++ {
		if strings.Contains(r.String(), "unknown to this ovsnet") {
			t.Errorf("reason %d has no words", r)
		}
	}
	if got := CaptureFlows("ovcap1", 7)[0].String(); got != "table=60,priority=100,cookie="+fmt.Sprintf("%#016x", CaptureCookie("ovcap1"))+",in_port=7,actions=CONTROLLER:65535" {
		t.Errorf("capture flow: %s", got)
	}
}
