package flowmodel

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// A port whose intent does not decode has no flows: the classifier drops
// everything it sends.
func TestBadPortHasNoFlows(t *testing.T) {
	for key, bad := range map[string]string{intent.KeyMAC: "garbage", intent.KeyIPv4: "garbage", intent.KeyMTU: "12"} {
		ext := intenttest.SamplePort().Encode()
		ext[key] = bad
		one := 1
		i := vswitchd.Interface{Name: "on1", Ofport: &one, ExternalIDs: ext}
		if _, ok, err := DecodePort(i, 0); ok || err == nil {
			t.Errorf("%s=%q: the port still gets flows", key, bad)
		}
	}
	one := 1
	good := vswitchd.Interface{Name: "on1", Ofport: &one, ExternalIDs: intenttest.SamplePort().Encode()}
	if p, ok, err := DecodePort(good, 2); !ok || err != nil || p.Ofport != 1 || p.VLAN != 2 {
		t.Errorf("good port: %+v %v %v", p, ok, err)
	}
}

// A tunnel's port is ovsnet's but no container's: no flows of its own,
// and nothing to report.
func TestTunnelPortIsNoContainer(t *testing.T) {
	one := 65200
	tun := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.2"}
	i := vswitchd.Interface{Name: "tv1", Type: "vxlan", Ofport: &one, ExternalIDs: tun.PortIDs()}
	if _, ok, err := DecodePort(i, 0); ok || err != nil {
		t.Fatalf("tunnel port decoded as a container's: %v %v", ok, err)
	}
}

// Two ports claiming one MAC both get no flows.
func TestSharedMACsHaveNoFlows(t *testing.T) {
	one, two := 1, 2
	a, b := intenttest.SamplePort(), intenttest.SamplePort()
	b.Container = "db"
	ifs := []vswitchd.Interface{{Name: "on1", Ofport: &one, ExternalIDs: a.Encode()}, {Name: "on2", Ofport: &two, ExternalIDs: b.Encode()}}
	d := DecodePorts(ifs, make([]vswitchd.Port, 2))
	if len(d.Flow) != 0 || len(d.Bad) != 2 {
		t.Fatalf("shared MAC: flows %v, bad %v", d.Flow, d.Bad)
	}
}

// A bridge's own bad keys and its tunnels' come out with its ports' in one
// stable list.
func TestBadIntentOf(t *testing.T) {
	ext := intent.NewBridge()
	ext[intent.KeyICC] = "maybe"
	ext[intent.TunnelKey("192.0.2.2")] = "garbage"
	b := &vswitchd.Bridge{Name: "br1", ExternalIDs: ext}
	bad := BadIntentOf(b, DecodedPorts{Bad: []error{&intent.Error{Row: "interface on1", Key: intent.KeyMAC}}})
	if len(bad) != 3 {
		t.Fatalf("bad intent: %v", bad)
	}
	for i := 1; i < len(bad); i++ {
		if bad[i-1].Error() > bad[i].Error() {
			t.Fatalf("not in order: %v", bad)
		}
	}
}

// Of is a bridge's whole flow intent from one topology: its pipeline and
// its links' flows, fixed, and each decodable port's model by cookie; a
// link's ends are found by container or by the runtime's name; Changes
// replaces each object by its cookie.
func TestOfTopology(t *testing.T) {
	one, two := 1, 2
	a, b := intenttest.SamplePort(), intenttest.SamplePort()
	b.Container, b.MAC = "db", net.HardwareAddr{0x0a, 0x58, 10, 1, 0, 3}
	b.Addrs = []netip.Prefix{netip.MustParsePrefix("10.1.0.3/24")}
	ext := intent.NewBridge()
	for k, v := range (intent.Link{Src: "web", Dst: "db", Ports: "5432/tcp"}).Encode() {
		ext[k] = v
	}
	for k, v := range (intent.Link{Src: "192.0.2.9", Dst: "db", Ports: "all"}).Encode() {
		ext[k] = v
	}
	br := vswitchd.Bridge{UUID: "br", Name: "br1", Ports: []string{"p1", "p2"}, ExternalIDs: ext}
	topo := &ovsdb.Topology{Bridges: []vswitchd.Bridge{br},
		Ports: map[string]vswitchd.Port{"p1": {UUID: "p1", Interfaces: []string{"i1"}}, "p2": {UUID: "p2", Interfaces: []string{"i2"}}},
		Interfaces: map[string]vswitchd.Interface{"i1": {UUID: "i1", Name: "on1", Ofport: &one, ExternalIDs: a.Encode()},
			"i2": {UUID: "i2", Name: "on2", Ofport: &two, ExternalIDs: b.Encode()}}}
	ifs, ports := topo.BridgeInterfaces(&br)
	in, err := Of(topo, &br, DecodePorts(ifs, ports))
	if err != nil || len(in.Ports) != 2 {
		t.Fatalf("intent: %d ports, %v", len(in.Ports), err)
	}
	links := map[uint64]int{}
	for _, f := range in.Fixed {
		links[f.Cookie]++
	}
	if links[flows.LinkCookie("web", "db")] == 0 || links[flows.LinkCookie("192.0.2.9", "db")] == 0 || links[flows.BridgeCookie()] == 0 {
		t.Fatalf("fixed flows by cookie: %v", links)
	}
	chs := in.Changes()
	if len(chs) != 3+2 {
		t.Fatalf("changes: %d, want the pipeline, two links and two ports", len(chs))
	}
	ext[intent.LinkKey("web", "db")] = "5432/sctp"
	if _, err := Of(topo, &br, DecodePorts(ifs, ports)); err == nil || !strings.Contains(err.Error(), "bad stored link") {
		t.Fatalf("a stored link that does not parse: %v", err)
	}
	if !Involving("db")("web", "db") || Involving("cache")("web", "db") {
		t.Error("Involving")
	}
}
