package network

import (
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// add-br on an existing bridge: what the user gave must match; what ovsnet
// derived or chose need not.
func TestBridgeSettingsCompared(t *testing.T) {
	subs, err := ipam.ParseSubnets([]string{"10.1.0.0/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := false
	ext := intent.NewBridge()
	for k, v := range (BridgeOptions{Name: "br1"}).settings(subs).Encode() {
		ext[k] = v
	}
	br := &vswitchd.Bridge{Name: "br1", ExternalIDs: ext, DatapathType: DatapathNetdev}
	same := BridgeOptions{Name: "br1", Subnets: []string{"10.1.0.0/24"}}
	if err := same.sameAs(br, same.settings(subs)); err != nil {
		t.Errorf("the same settings refused: %v", err)
	}
	other := BridgeOptions{Name: "br1", ICC: &f, Datapath: DatapathSystem}
	err = other.sameAs(br, other.settings(subs))
	if err == nil || !strings.Contains(err.Error(), `icc is "true", asked "false"`) || !strings.Contains(err.Error(), "datapath is netdev, asked system") {
		t.Errorf("other settings: %v", err)
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
