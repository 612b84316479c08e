package mesh

import (
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
)

func TestUnderlayBridgeNames(t *testing.T) {
	if n := UnderlayBridge("eth0"); n != "ovs-eth0" {
		t.Fatalf("short device: %q", n)
	}
	a, b := UnderlayBridge("enp0s31f6abcd1"), UnderlayBridge("enp0s31f6abcd2")
	if a == b || len(a) > 15 || len(b) > 15 {
		t.Fatalf("long devices with a common prefix: %q, %q", a, b)
	}
}

// A bridge spanning hosts takes the smallest MTU its tunnels' underlays
// leave; an MTU the user gave stays.
func TestAutoMTU(t *testing.T) {
	ts := []intent.Tunnel{{Type: VXLAN, UnderlayMTU: 1500}, {Type: GRE, UnderlayMTU: 1400}, {Type: VXLAN}}
	auto := intent.DecodeBridge("br0", intent.MTUSetting(1450))
	if got := AutoMTU(auto, ts); got[intent.KeyMTU] != "1358" || got[intent.KeyMTUAuto] != "true" {
		t.Errorf("auto MTU over a 1400 GRE underlay: %v", got)
	}
	if got := AutoMTU(intent.DecodeBridge("br0", map[string]string{intent.KeyMTU: "9000"}), ts); got != nil {
		t.Errorf("the user's MTU was replaced: %v", got)
	}
	if got := AutoMTU(auto, nil); got != nil {
		t.Errorf("no tunnel, no underlay: %v", got)
	}
}
