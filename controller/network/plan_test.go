package network

import (
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/datapath"
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
	for k, v := range (BridgeOptions{Name: "br1"}).Settings(subs).Encode() {
		ext[k] = v
	}
	br := &vswitchd.Bridge{Name: "br1", ExternalIDs: ext, DatapathType: datapath.Netdev}
	same := BridgeOptions{Name: "br1", Subnets: []string{"10.1.0.0/24"}}
	if err := same.sameAs(br, same.Settings(subs)); err != nil {
		t.Errorf("the same settings refused: %v", err)
	}
	other := BridgeOptions{Name: "br1", ICC: &f, Datapath: datapath.System}
	err = other.sameAs(br, other.Settings(subs))
	if err == nil || !strings.Contains(err.Error(), `icc is "true", asked "false"`) || !strings.Contains(err.Error(), "datapath is netdev, asked system") {
		t.Errorf("other settings: %v", err)
	}
}
