package openflow_test

import (
	"encoding/hex"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/openflow"
)

// pipeline returns every kind of flow ovsnet's pipeline makes.
func pipeline() []*openflow.Flow {
	mac, _ := net.ParseMAC("0a:58:0a:01:00:02")
	v4, v6 := netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("fd00::2")
	fs := flows.BridgeFlows(flows.BridgeModel{Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}, GatewayMAC: mac})
	fs = append(fs, flows.BridgeFlows(flows.BridgeModel{AnswerND: true, Gateways: []netip.Addr{netip.MustParseAddr("fd00::1")}, GatewayMAC: mac})...)
	fs = append(fs, flows.BridgeFlows(flows.BridgeModel{ICC: true, Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}})...)
	// A network spanning hosts, isolated: the tunnel flows.
	fs = append(fs, flows.BridgeFlows(flows.BridgeModel{Gateways: []netip.Addr{netip.MustParseAddr("10.97.1.1")}, GatewayMAC: mac,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.97.0.0/16"), netip.MustParsePrefix("fd00:97::/64")},
		Ranges:  []netip.Prefix{netip.MustParsePrefix("10.97.1.0/24"), netip.MustParsePrefix("fd00:97::100/120")},
		Tunnels: []int{65200, 65201}})...)
	p := flows.PortModel{Name: "p", Ofport: 5, MAC: mac, Addrs: []netip.Addr{v4, v6}, VLAN: 3}
	fs = append(fs, flows.PortFlows(p)...)
	fs = append(fs, flows.PortFlows(flows.PortModel{Name: "q", Ofport: 65000, MAC: mac})...)
	fs = append(fs, flows.PortFlows(flows.PortModel{Name: "r", Ofport: 7, MAC: mac, Addrs: []netip.Addr{v4}, FloodPPS: 1000})...)
	fs = append(fs, flows.LinkFlows(flows.LinkModel{Src: "10.97.2.5", Dst: "b", SrcPort: flows.PortModel{Addrs: []netip.Addr{netip.MustParseAddr("10.97.2.5")}}, DstPort: p})...)

	fs = append(fs, flows.LinkFlows(flows.LinkModel{Src: "a", Dst: "b", SrcPort: p, DstPort: p})...)
	fs = append(fs, flows.LinkFlows(flows.LinkModel{Src: "a", Dst: "b", SrcPort: p, DstPort: p,
		Rules: []flows.Rule{{Proto: "tcp", Port: 80}, {Proto: "udp", Port: 53}}})...)
	return fs
}

func ofctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ovs-ofctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// lastLine is the decoded flow mod, as ovs-ofctl prints it.
func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(ls[len(ls)-1])
}

// TestFlowModMatchesOvsOfctl decodes each encoding with ovs-ofctl and
// compares it with ovs-ofctl's own reading of the same flow's text: the
// two forms every typed match and action carries say the same.
func TestFlowModMatchesOvsOfctl(t *testing.T) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	for _, f := range pipeline() {
		text := f.String()
		b := openflow.FlowMod(f, 1)
		want := lastLine(ofctl(t, "-O", "OpenFlow14", "parse-flow", text))
		got := lastLine(ofctl(t, "ofp-print", hex.EncodeToString(b)))
		if got != want {
			t.Errorf("flow %s\nencoded: %s\nwant:    %s", text, got, want)
		}
	}
}

func TestDeleteByCookie(t *testing.T) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	got := lastLine(ofctl(t, "ofp-print", hex.EncodeToString(openflow.DeleteByCookie(0x0200000000000001, ^uint64(0), 7))))
	want := "OFPT_FLOW_MOD (OF1.4) (xid=0x7): DEL table:255 priority=0 cookie:0x200000000000001/0xffffffffffffffff actions=drop"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestMeterMod(t *testing.T) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	got := strings.TrimSpace(ofctl(t, "ofp-print", hex.EncodeToString(openflow.MeterMod(openflow.Meter{ID: 8, PPS: 1000, Burst: 200}, 3))))
	want := "OFPT_METER_MOD (OF1.4) (xid=0x3): ADD meter=8 pktps burst stats bands=\ntype=drop rate=1000 burst_size=200"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
