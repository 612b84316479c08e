package intent

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
)

func samplePort() Port {
	mac, _ := net.ParseMAC("0a:58:0a:01:00:02")
	return Port{Container: "web", Iface: "eth1", Bridge: "br1", Netns: "/proc/42/ns/net", Type: "internal", State: StateReady,
		MAC: mac, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}, MTU: 1400, NoTxOffload: true}
}

func TestPortRoundTrip(t *testing.T) {
	p := samplePort()
	got, err := DecodePort("row", p.Encode())
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("decode(encode(p)) = %+v, %v; want %+v", got, err, p)
	}
	if r := RefOf(p.Encode()); !r.IsContainer() || r.String() != "web/eth1" || r.State != StateReady {
		t.Fatalf("ref: %+v", r)
	}
	p.CNINetwork = "net1"
	if got, err := DecodePort("row", p.Encode()); err != nil || got.CNINetwork != "net1" || RefOf(p.Encode()).CNINetwork != "net1" {
		t.Fatalf("CNI network: %+v, %v", got, err)
	}
	p.CNINetwork, p.Network, p.IfaceID = "", "lab", "on0123456789ab"
	if got, err := DecodePort("row", p.Encode()); err != nil || !reflect.DeepEqual(got, p) || p.Encode()["iface-id"] != "on0123456789ab" {
		t.Fatalf("OVN port: %+v, %v", got, err)
	}
}

// Every value of a port's intent that does not parse is an *Error naming
// the key.
func TestPortFailsClosed(t *testing.T) {
	for key, bad := range map[string]string{
		KeyMAC:            "garbage",
		KeyIPv4:           "garbage",
		KeyIPv6:           "10.1.0.9/24", // the wrong family
		KeyPortGW:         "10.1.0.1,nope",
		KeyMTU:            "12",
		KeyFloodPPS:       "-1",
		KeyContainerID:    "",
		KeyContainerIface: "",
	} {
		ext := samplePort().Encode()
		ext[key] = bad
		var ie *Error
		if _, err := DecodePort("row", ext); !errors.As(err, &ie) || ie.Key != key || !errors.Is(err, ErrBad) {
			t.Errorf("%s=%q: %v", key, bad, err)
		}
	}
	ext := samplePort().Encode()
	ext[KeyMAC] = "01:00:5e:00:00:01" // multicast: not the port's to send from
	if _, err := DecodePort("row", ext); err == nil {
		t.Error("multicast MAC accepted")
	}
	// A port made before flood bounds gets the default one.
	ext = samplePort().Encode()
	delete(ext, KeyFloodPPS)
	if p, err := DecodePort("row", ext); err != nil || p.FloodPPS != DefaultFloodPPS {
		t.Errorf("no flood bound: %d, %v", p.FloodPPS, err)
	}
}

func TestHeldAddrsLenient(t *testing.T) {
	ext := samplePort().Encode()
	ext[KeyIPv6] = "garbage"
	if got := HeldAddrs(ext); len(got) != 1 || got[0].String() != "10.1.0.2/24" {
		t.Fatalf("held: %v", got)
	}
}

func TestPublished(t *testing.T) {
	ms, _ := nat.ParseList("0.0.0.0:8080:80/tcp")
	set := Publish(ms)
	if len(set) != 3 || set[KeyHostPortPrefix+"tcp/*/8080"] != "1" {
		t.Fatalf("publish keys: %v", set)
	}
	got, err := Published("row", set)
	if err != nil || !reflect.DeepEqual(got, ms) {
		t.Fatalf("published: %v %v", got, err)
	}
	if got, err := Published("row", map[string]string{KeyPublish: "nonsense"}); err == nil || got != nil {
		t.Fatalf("bad publish: %v %v", got, err)
	}
}

func TestBridgeDecode(t *testing.T) {
	subs, _ := ipam.ParseSubnets([]string{"10.1.0.0/24", "fd00::/64"}, nil)
	f := false
	ext := NewBridge()
	for k, v := range (Settings{Subnets: subs, MTU: 1400, ICC: &f}).Encode() {
		ext[k] = v
	}
	for k, v := range (Link{Src: "a", Dst: "b", Ports: "80/tcp"}).Encode() {
		ext[k] = v
	}
	for k, v := range (Tunnel{Bridge: "br1", Remote: "192.0.2.2", Type: "vxlan", Key: 5, Local: "192.0.2.1", Port: "tv1", Ofport: 65200, UnderlayMTU: 1500}).Encode() {
		ext[k] = v
	}
	for k, v := range (Alloc{NextOfport: 9, Hints: []netip.Addr{netip.MustParseAddr("10.1.0.9")}}).Encode() {
		ext[k] = v
	}
	for k, v := range (DockerNet{ID: "net9", Made: true, VLAN: 12, Internal: true, Name: "web.tier-1"}).Encode() {
		ext[k] = v
	}
	b := DecodeBridge("br1", ext)
	if b.Docker != (DockerNet{ID: "net9", Made: true, VLAN: 12, Internal: true, Name: "web.tier-1"}) {
		t.Fatalf("Docker network: %+v", b.Docker)
	}
	if !b.Owned || b.ICC || !b.NAT || b.MTU != 1400 || len(b.Subnets) != 2 || len(b.Errs) != 0 || b.NextOfport != 9 ||
		b.Hints[true].String() != "10.1.0.9" || len(b.Links) != 1 || b.Links[0].Ports != "80/tcp" ||
		len(b.GoodTunnels()) != 1 || b.GoodTunnels()[0].Key != 5 {
		t.Fatalf("bridge: %+v", b)
	}
}

// Each bridge key that does not decode is reported, read strictly.
func TestBridgeFailsClosed(t *testing.T) {
	for key, bad := range map[string]string{KeyICC: "maybe", KeyNAT: "yes", KeySubnet: "10.1.0.0/33", KeyMTU: "9", KeyDockerVLAN: "0", KeyND: "sometimes", KeyFloodPPS: "lots", KeyDockerName: "-net1"} {
		ext := NewBridge()
		ext[KeySubnet] = "10.1.0.0/24"
		ext[key] = bad
		b := DecodeBridge("br1", ext)
		if len(b.Errs) != 1 || !strings.Contains(b.Errs[0].Error(), key) {
			t.Errorf("%s=%q: %v", key, bad, b.Errs)
		}
		if key == KeyICC && b.ICC || key == KeySubnet && (b.Subnets != nil || b.SubnetsErr == nil) || key == KeyNAT && b.NATErr == nil ||
			key == KeyDockerVLAN && b.Docker.Err == nil || key == KeyND && (b.AnswerND || b.NDProbed) ||
			key == KeyFloodPPS && b.FloodPPS != DefaultFloodPPS || key == KeyDockerName && (b.Docker.Name != "" || b.Docker.Err != nil) {
			t.Errorf("%s=%q: not strict: %+v", key, bad, b)
		}
	}
	if b := DecodeBridge("br1", map[string]string{KeyHintIPv4: "fd00::1", KeyNextOfport: "x"}); b.NextOfport != 0 || b.Hints[true].IsValid() {
		t.Errorf("allocation state from garbage: %+v", b)
	}
}

func TestTunnelFailsClosed(t *testing.T) {
	good := "type=vxlan,key=5,local=192.0.2.1,port=tv1,ofport=65200,mtu=1500"
	for _, v := range []string{"garbage", "type=ipip,key=5,local=192.0.2.1,port=tv1,ofport=65200,mtu=1500",
		"type=vxlan,key=x,local=192.0.2.1,port=tv1,ofport=65200,mtu=1500", "type=vxlan,local=192.0.2.1,port=tv1,mtu=1500",
		good + ",dev=tap"} {
		b := DecodeBridge("br1", map[string]string{TunnelKey("192.0.2.2"): v, TunnelKey("192.0.2.3"): good})
		if len(b.Tunnels) != 2 || len(b.GoodTunnels()) != 1 || b.GoodTunnels()[0].Remote != "192.0.2.3" {
			t.Errorf("%q: %+v", v, b.Tunnels)
		}
	}
	k := Tunnel{Bridge: "br1", Remote: "192.0.2.2", Type: "vxlan", Key: 5, Local: "192.0.2.1", Port: "tx1", Ofport: 65200, UnderlayMTU: 1500, Kernel: true}
	if got := DecodeBridge("br1", k.Encode()).GoodTunnels(); len(got) != 1 || got[0] != k {
		t.Errorf("kernel device tunnel: %+v", got)
	}
}

func TestSettingsDifferences(t *testing.T) {
	f, tr := false, true
	ext := NewBridge()
	if d := (Settings{ICC: &tr, NAT: &tr}).Differences(map[string]string{}); len(d) != 0 {
		t.Errorf("defaults differ: %v", d)
	}
	if d := (Settings{ICC: &f, MTU: 1400}).Differences(ext); len(d) != 2 || !strings.HasPrefix(d[0], "icc is") {
		t.Errorf("differences: %v", d)
	}
	def, other := DefaultFloodPPS, 500
	if d := (Settings{FloodPPS: &def}).Differences(ext); len(d) != 0 {
		t.Errorf("the default flood bound differs from none: %v", d)
	}
	if d := (Settings{FloodPPS: &other}).Differences(ext); len(d) != 1 || !strings.HasPrefix(d[0], "flood-pps is") {
		t.Errorf("flood bound: %v", d)
	}
	if d := (Settings{AutoMTU: 1450}).Differences(ext); len(d) != 0 {
		t.Errorf("an MTU ovsnet chose is not given: %v", d)
	}
}

func TestUnderlay(t *testing.T) {
	u := Underlay{Dev: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}, Routes: []string{"default via 192.0.2.254"}, MTU: 1500}
	b := DecodeBridge("ovs-eth0", u.Encode())
	if b.Owned || b.Underlay == nil || b.Underlay.Err != nil || !reflect.DeepEqual(*b.Underlay, u) {
		t.Fatalf("underlay: %+v", b.Underlay)
	}
	ext := u.Encode()
	ext[KeyUnderlayAddrs] = "nope"
	if b := DecodeBridge("ovs-eth0", ext); b.Underlay == nil || b.Underlay.Err == nil {
		t.Fatalf("bad underlay: %+v", b.Underlay)
	}
}

// A pool's port has no container until taken; a row that says it is a
// pool's and names a container does not decode.
func TestPooledPort(t *testing.T) {
	p := samplePort()
	p.Container, p.Iface, p.Netns, p.Pooled = "", "", "", true
	ext := p.Encode()
	if ext[KeyPool] != "true" || ext[KeyContainerID] != "" || ext[KeyNetns] != "" {
		t.Fatalf("pooled encoding: %v", ext)
	}
	got, err := DecodePort("row", ext)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("decode(encode(pooled)) = %+v, %v; want %+v", got, err, p)
	}
	if r := RefOf(ext); !r.Pooled || r.IsContainer() {
		t.Fatalf("pooled ref: %+v", r)
	}
	ext[KeyContainerID] = "web"
	var ie *Error
	if _, err := DecodePort("row", ext); !errors.As(err, &ie) || ie.Key != KeyPool {
		t.Fatalf("pooled row with a container: %v", err)
	}
}

// A runtime's name for a container is kept with the port, and only names
// that can be a link's end and a command's argument are taken.
// The runtime's name of the container's end is read only when it can be
// an interface's name.
func TestRuntimeIface(t *testing.T) {
	for v, want := range map[string]string{"eth0": "eth0", "eth1": "eth1", "": "", "a/b": "", "sixteen-chars-xx": "", "eth 0": ""} {
		if got := RefOf(map[string]string{KeyRuntimeIface: v}).RuntimeIface; got != want {
			t.Errorf("%q read as %q, want %q", v, got, want)
		}
	}
}

func TestRuntimeName(t *testing.T) {
	p := Port{Container: "3f2a", Iface: "eth0", Bridge: "br0", State: StateReady, RuntimeName: "ns1/web"}
	p.MAC, _ = net.ParseMAC("02:00:00:00:00:01")
	got, err := DecodePort("on1", p.Encode())
	if err != nil || got.RuntimeName != "ns1/web" || RefOf(p.Encode()).RuntimeName != "ns1/web" {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	for name, ok := range map[string]bool{"ns1/web": true, "web-1.a_b": true, "": false, "-x": false, "a b": false, "a>b": false, strings.Repeat("a", 254): false} {
		if err := CheckRuntimeName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func TestCaptureRoundTrip(t *testing.T) {
	c := Capture{PID: 4242, Start: 987654, PIDNS: "pid:[4026531836]", Of: "on0123456789ab", Bridge: "br0"}
	got, ok, err := DecodeCapture("interface ovcapx", c.Encode())
	if !ok || err != nil || got != c {
		t.Fatalf("round trip: %+v, %v, %v; want %+v", got, ok, err, c)
	}
	if _, ok, _ := DecodeCapture("interface x", map[string]string{KeyOwner: OwnerOvsnet}); ok {
		t.Fatal("a row without the capture key decoded as a capture")
	}
	for _, bad := range []string{"", "pid=0,start=1,pidns=x", "pid=1,start=x,pidns=x", "pid=1,start=1", "pid=1,start=1,pidns=",
		"pid=1,pid=2,start=1", "pid=1,start=1,pidns=x,extra=1", "pid=-3,start=1,pidns=x"} {
		_, ok, err := DecodeCapture("interface ovcapx", map[string]string{KeyCapture: bad})
		if !ok || !errors.Is(err, ErrBad) || !strings.Contains(err.Error(), "reconcile removes the capture port") {
			t.Errorf("%q: ok %v, err %v; want a bad capture that reconcile removes", bad, ok, err)
		}
	}
}

func TestImpairmentRoundTrip(t *testing.T) {
	for _, im := range []Impairment{
		{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond},
		{Loss: 1.5},
		{Rate: 10_000_000},
		{Delay: time.Second, Loss: 100, Rate: 8},
	} {
		got, ok, err := DecodeImpairment("interface x", map[string]string{KeyImpair: im.Encode()})
		if !ok || err != nil || got != im {
			t.Errorf("%+v: %+v, %v, %v", im, got, ok, err)
		}
	}
	if _, ok, _ := DecodeImpairment("interface x", map[string]string{}); ok {
		t.Fatal("no key decoded as an impairment")
	}
	for _, bad := range []string{"", "delay=5", "loss=101", "jitter=1ms", "rate=x", "speed=1", "delay=-1ms", "rate=4"} {
		_, ok, err := DecodeImpairment("interface x", map[string]string{KeyImpair: bad})
		if !ok || !errors.Is(err, ErrBad) {
			t.Errorf("%q: ok %v, err %v; want bad intent", bad, ok, err)
		}
	}
	if s := (Impairment{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 1, Rate: 20_000_000}).String(); s != "delay 50ms ± 5ms, loss 1%, rate 20mbit" {
		t.Fatalf("in words: %q", s)
	}
}

func TestRateLimitRoundTrip(t *testing.T) {
	for _, r := range []RateLimit{
		{IngressRate: 20_000_000, IngressBurst: 2_000_000},
		{EgressRate: 8000, EgressBurst: 12000},
		{IngressRate: 1_000_000_000, IngressBurst: 100_000_000, EgressRate: 10_000_000, EgressBurst: 1_000_000},
	} {
		got, ok, err := DecodeRateLimit("interface x", map[string]string{KeyRate: r.Encode()})
		if !ok || err != nil || got != r {
			t.Errorf("%+v: %+v, %v, %v", r, got, ok, err)
		}
	}
	for _, bad := range []string{"", "ingress=20", "ingress=0/100000", "egress=x/1", "sideways=1/1", "ingress=100/100000", "egress=20000000/10"} {
		_, ok, err := DecodeRateLimit("interface x", map[string]string{KeyRate: bad})
		if !ok || !errors.Is(err, ErrBad) {
			t.Errorf("%q: ok %v, err %v; want bad intent", bad, ok, err)
		}
	}
	if d := (RateLimit{IngressRate: 20_000_000, EgressRate: 1_000_000, EgressBurst: 50_000}).WithBursts(); d.IngressBurst != 2_000_000 || d.EgressBurst != 50_000 {
		t.Fatalf("default bursts: %+v", d)
	}
	if d := (RateLimit{EgressRate: 1_000_000}).WithBursts(); d.EgressBurst != 512_000 || d.IngressBurst != 0 {
		t.Fatalf("default burst floor: %+v", d)
	}
	if err := (RateLimit{IngressBurst: 1}).Check(); err == nil {
		t.Fatal("a burst without a rate passed")
	}
}

func TestMirrorKeys(t *testing.T) {
	for _, m := range []Mirror{{To: "ids", From: []string{"web", "db"}}, {To: "shop/tap", All: true}} {
		b := DecodeBridge("br0", m.Encode())
		if len(b.Mirrors) != 1 || b.Mirrors[0].Err != nil || !reflect.DeepEqual(b.Mirrors[0], m) || len(b.Errs) != 0 {
			t.Errorf("%+v: decoded %+v, errs %v", m, b.Mirrors, b.Errs)
		}
	}
	for _, bad := range []map[string]string{{MirrorKey("ids"): ""}, {MirrorKey(""): "all"}, {MirrorKey("bad name!"): "web"}} {
		b := DecodeBridge("br0", bad)
		if len(b.Mirrors) != 1 || !errors.Is(b.Mirrors[0].Err, ErrBad) || len(b.Errs) != 1 {
			t.Errorf("%v: %+v, errs %v; want one bad mirror", bad, b.Mirrors, b.Errs)
		}
	}
}

// A chassis' uplink sets ovsnet's mapping with it, and reads back; one
// without an uplink leaves the mappings alone.
func TestChassisUplink(t *testing.T) {
	c := Chassis{Remote: "unix:/sb", EncapType: "geneve", SystemID: "x", EncapIP: netip.MustParseAddr("192.0.2.1"), Uplink: "eth1"}
	m := c.Encode()
	if m[KeyOVNMappings] != "ovsnet-uplink:ovn-uplink" || m[KeyOVNUplink] != "eth1" {
		t.Fatalf("encoded %v", m)
	}
	if !HasUplink(m[KeyOVNMappings]) || !HasUplink("physnet:br-x,"+UplinkMapping) || HasUplink("physnet:br-x") || HasUplink("") {
		t.Fatal("HasUplink")
	}
	if got, err := DecodeChassis(m); err != nil || got.Uplink != "eth1" || got.Mappings != UplinkMapping {
		t.Fatalf("decoded %+v %v", got, err)
	}
	c.Uplink = ""
	if m := c.Encode(); m[KeyOVNMappings] != "" || m[KeyOVNUplink] != "" {
		t.Fatalf("without an uplink: %v", m)
	}
}
