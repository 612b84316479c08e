package docker

import (
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
)

func TestBridgeOptions(t *testing.T) {
	req := &createNetworkRequest{NetworkID: "0123456789abcdef0123",
		IPv4Data: []ipamData{{Pool: "10.50.0.0/24", Gateway: "10.50.0.1/24"}},
		IPv6Data: []ipamData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}},
		Options: map[string]any{"com.docker.network.generic": map[string]any{
			"ovsnet.icc": "false", "com.docker.network.driver.mtu": "1400"}}}
	o, d, err := bridgeOptions(req)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != req.NetworkID || d.VLAN != 0 || d.Made {
		t.Fatalf("network: %+v", d)
	}
	if o.Name != "ovd0123456789ab" || len(o.Subnets) != 2 || o.Gateways[0] != "10.50.0.1" || o.Gateways[1] != "fd00:50::1" ||
		o.MTU != 1400 || o.ICC == nil || *o.ICC || o.NAT != nil {
		t.Fatalf("bridge options: %+v", o)
	}
	req.Options["com.docker.network.generic"] = map[string]any{"ovsnet.bridge": "br-web"}
	if o, _, err := bridgeOptions(req); err != nil || o.Name != "br-web" {
		t.Fatalf("-o ovsnet.bridge: %+v %v", o, err)
	}
	req.Options["com.docker.network.generic"] = map[string]any{"ovsnet.vlan": "12"}
	if _, d, err := bridgeOptions(req); err != nil || d.VLAN != 12 {
		t.Fatalf("-o ovsnet.vlan=12: %+v %v", d, err)
	}
	req.Options = map[string]any{"com.docker.network.internal": true}
	if o, d, err := bridgeOptions(req); err != nil || !d.Internal || o.NAT == nil || *o.NAT {
		t.Fatalf("--internal: %+v %+v %v", o, d, err)
	}
	req.Options["com.docker.network.generic"] = map[string]any{"ovsnet.nat": "true"}
	if _, _, err := bridgeOptions(req); err == nil {
		t.Fatal("--internal -o ovsnet.nat=true accepted")
	}
	for opt, want := range map[string]string{"ovsnet.bogus=1": "unknown option -o ovsnet.bogus", "ovsnet.icc=maybe": "bad -o ovsnet.icc=maybe",
		"ovsnet.vlan=4095": "bad -o ovsnet.vlan=4095", "ovsnet.vlan=ten": "bad -o ovsnet.vlan=ten",
		"ovsnet.rate=fast": "bad -o ovsnet.rate=fast", "ovsnet.egress-rate=1kbit": "want 8kbit or more"} {
		k, v, _ := strings.Cut(opt, "=")
		req.Options["com.docker.network.generic"] = map[string]any{k: v}
		if _, _, err := bridgeOptions(req); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-o %s: %v", opt, err)
		}
	}
}

func TestPortSpecs(t *testing.T) {
	specs, err := portSpecs(map[string]any{"com.docker.network.portmap": []any{
		map[string]any{"Proto": 6, "Port": 80, "HostIP": "", "HostPort": 8080},
		map[string]any{"Proto": 17, "Port": 53, "HostIP": "127.0.0.1", "HostPort": 0}}})
	if err != nil || strings.Join(specs, " ") != "0.0.0.0:8080:80/tcp 127.0.0.1::53/udp" {
		t.Fatalf("specs %v, %v", specs, err)
	}
	if _, err := portSpecs(map[string]any{"com.docker.network.portmap": []any{map[string]any{"Proto": 132, "Port": 9}}}); err == nil {
		t.Error("SCTP accepted")
	}
	if specs, err := portSpecs(map[string]any{}); specs != nil || err != nil {
		t.Errorf("no ports: %v %v", specs, err)
	}
}

func TestRequestPool(t *testing.T) {
	p := &Plugin{}
	out, err := p.requestPool(nil, &poolRequest{Pool: "10.74.0.9/24"})
	if m, ok := out.(map[string]any); err != nil || !ok || m["PoolID"] != "ovsnet:10.74.0.0/24" || m["Pool"] != "10.74.0.0/24" {
		t.Fatalf("pool: %v %v", out, err)
	}
	for _, bad := range []poolRequest{{}, {Pool: "10.74.0.0/24", SubPool: "10.74.0.0/25"}, {Pool: "10.74.0.0/24", V6: true}, {Pool: "nonsense"}} {
		if _, err := p.requestPool(nil, &bad); err == nil {
			t.Errorf("pool %+v accepted", bad)
		}
	}
}

// -o ovsnet.rate caps both ways, a way's own option that way, whatever the
// order the options come in.
func TestRateOptions(t *testing.T) {
	req := &createNetworkRequest{NetworkID: "0123456789abcdef0123", Options: map[string]any{"com.docker.network.generic": map[string]any{
		"ovsnet.rate": "20mbit", "ovsnet.egress-rate": "5mbit"}}}
	o, _, err := bridgeOptions(req)
	if err != nil || o.Rate.IngressRate != 20_000_000 || o.Rate.EgressRate != 5_000_000 {
		t.Fatalf("-o ovsnet.rate=20mbit -o ovsnet.egress-rate=5mbit: %+v, %v", o.Rate, err)
	}
	var lim intent.RateLimit
	for _, kv := range [][2]string{{optInRate, "1mbit"}, {optRate, "3mbit"}} {
		if err := rateOption(&lim, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if lim.IngressRate != 1_000_000 || lim.EgressRate != 3_000_000 {
		t.Fatalf("ingress first, then both: %+v", lim)
	}
}
