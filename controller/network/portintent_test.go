package network

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
)

func samplePort() intent.Port {
	mac, _ := net.ParseMAC("0a:58:0a:01:00:02")
	return intent.Port{Container: "web", Iface: "eth1", Bridge: "br1", Netns: "/proc/42/ns/net", Type: "internal", State: intent.StateReady,
		MAC: mac, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}, MTU: 1400, NoTxOffload: true}
}

func TestPortModels(t *testing.T) {
	p := samplePort()
	fp := flowmodel.PortOf(p, "on1", 7, 3)
	if fp.Name != "on1" || fp.Ofport != 7 || fp.VLAN != 3 || len(fp.Addrs) != 2 || fp.MAC.String() != p.MAC.String() {
		t.Fatalf("flow port: %+v", fp)
	}
	v := portView(p, "on1", 7, 3)
	if v.Container != "web" || v.Addresses[1] != "fd00::2/64" || v.Gateways[0] != "10.1.0.1" || v.MTU != 1400 || v.VLAN != 3 {
		t.Fatalf("view: %+v", v)
	}
}
