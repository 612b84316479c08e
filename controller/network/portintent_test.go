package network

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

func samplePort() intent.Port {
	mac, _ := net.ParseMAC("0a:58:0a:01:00:02")
	return intent.Port{Container: "web", Iface: "eth1", Bridge: "br1", Netns: "/proc/42/ns/net", Type: "internal", State: intent.StateReady,
		MAC: mac, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}, MTU: 1400, NoTxOffload: true}
}

func TestPortModels(t *testing.T) {
	p := samplePort()
	fp := flowPort(p, "on1", 7, 3)
	if fp.Name != "on1" || fp.Ofport != 7 || fp.VLAN != 3 || len(fp.Addrs) != 2 || fp.MAC.String() != p.MAC.String() {
		t.Fatalf("flow port: %+v", fp)
	}
	v := portView(p, "on1", 7, 3)
	if v.Container != "web" || v.Addresses[1] != "fd00::2/64" || v.Gateways[0] != "10.1.0.1" || v.MTU != 1400 || v.VLAN != 3 {
		t.Fatalf("view: %+v", v)
	}
}

// A port whose intent does not decode has no flows: the classifier drops
// everything it sends.
func TestBadPortHasNoFlows(t *testing.T) {
	for key, bad := range map[string]string{intent.KeyMAC: "garbage", intent.KeyIPv4: "garbage", intent.KeyMTU: "12"} {
		ext := samplePort().Encode()
		ext[key] = bad
		one := 1
		i := vswitchd.Interface{Name: "on1", Ofport: &one, ExternalIDs: ext}
		if _, ok, err := decodePort(i, 0); ok || err == nil {
			t.Errorf("%s=%q: the port still gets flows", key, bad)
		}
	}
	one := 1
	good := vswitchd.Interface{Name: "on1", Ofport: &one, ExternalIDs: samplePort().Encode()}
	if p, ok, err := decodePort(good, 2); !ok || err != nil || p.Ofport != 1 || p.VLAN != 2 {
		t.Errorf("good port: %+v %v %v", p, ok, err)
	}
}

// A tunnel's port is ovsnet's but no container's: no flows of its own,
// and nothing to report.
func TestTunnelPortIsNoContainer(t *testing.T) {
	one := 65200
	tun := Tunnel{Bridge: "br0", Remote: "192.0.2.2"}
	i := vswitchd.Interface{Name: "tv1", Type: "vxlan", Ofport: &one, ExternalIDs: tun.PortIDs()}
	if _, ok, err := decodePort(i, 0); ok || err != nil {
		t.Fatalf("tunnel port decoded as a container's: %v %v", ok, err)
	}
}

// Two ports claiming one MAC both get no flows.
func TestSharedMACsHaveNoFlows(t *testing.T) {
	one, two := 1, 2
	a, b := samplePort(), samplePort()
	b.Container = "db"
	ifs := []vswitchd.Interface{{Name: "on1", Ofport: &one, ExternalIDs: a.Encode()}, {Name: "on2", Ofport: &two, ExternalIDs: b.Encode()}}
	d := DecodePorts(ifs, make([]vswitchd.Port, 2))
	if len(d.Flow) != 0 || len(d.Bad) != 2 {
		t.Fatalf("shared MAC: flows %v, bad %v", d.Flow, d.Bad)
	}
}
