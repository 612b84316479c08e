package reconcile

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach/attachtest"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/networktest"
	"github.com/ovsnet/ovsnet/flows/flowstest"
	"github.com/ovsnet/ovsnet/nat/nattest"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// bridgeRows reads br0 and its interfaces.
func bridgeRows(t *testing.T, h *network.Host) (*vswitchd.Bridge, []vswitchd.Interface) {
	t.Helper()
	topo, err := h.DB.ReadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	br := topo.Bridge("br0")
	ifs, _ := topo.BridgeInterfaces(br)
	return br, ifs
}

// A hint above a free address (its port deleted behind ovsnet's back) is
// lowered to that address, once: a second run finds nothing to do.
func TestConvergeAllocLowersHints(t *testing.T) {
	ctx := context.Background()
	hint := intent.Alloc{Hints: []netip.Addr{netip.MustParseAddr("10.1.0.9")}}.Encode()
	h := networktest.Host(t, "10.1.0.0/24", hint, "10.1.0.2", "10.1.0.4")
	br, ifs := bridgeRows(t, h)
	did, err := convergeAlloc(ctx, h.DB, br, ifs)
	if err != nil || len(did) != 1 || !strings.Contains(did[0], "free address 10.1.0.3") {
		t.Fatalf("first run: %q, %v", did, err)
	}
	br, ifs = bridgeRows(t, h)
	if got := intent.DecodeBridge("br0", br.ExternalIDs).Hints[true]; got != netip.MustParseAddr("10.1.0.3") {
		t.Fatalf("IPv4 hint %v, want 10.1.0.3", got)
	}
	if did, err := convergeAlloc(ctx, h.DB, br, ifs); err != nil || len(did) != 0 {
		t.Fatalf("second run: %q, %v", did, err)
	}
}

// An attach whose container is gone cannot be finished: its half-made
// port is detached (row, flows) instead.
func TestCompleteAttachOfGoneContainer(t *testing.T) {
	ctx := context.Background()
	h := networktest.Host(t, "10.1.0.0/24", nil, "10.1.0.2", "10.1.0.3")
	rec := &flowstest.Recorder{}
	h.Flows, h.Firewall, h.Devices = rec, &nattest.Recorder{}, attachtest.New()
	_, ifs := bridgeRows(t, h)
	var gone vswitchd.Interface
	for _, i := range ifs {
		if i.Name == "on10.1.0.3" {
			gone = i
		}
	}
	did, err := completeAttach(ctx, h, gone)
	if err != nil || !strings.Contains(did, "removed half-made port on10.1.0.3") {
		t.Fatalf("complete: %q, %v", did, err)
	}
	_, ifs = bridgeRows(t, h)
	if len(ifs) != 2 { // br0's own and 10.1.0.2's
		t.Fatalf("interfaces left: %d, want the bridge's and the other container's", len(ifs))
	}
}

// An internal port with no tap in the host (in its container), or whose
// container's namespace is gone, is left alone.
func TestPutBackInternalLeavesAlone(t *testing.T) {
	ifc := vswitchd.Interface{Name: "on10.1.0.2", Type: "internal",
		ExternalIDs: intent.Port{Container: "c", Iface: "eth1", Bridge: "br0", Netns: "/nonexistent/ns", State: intent.StateReady}.Encode()}
	for _, c := range []struct {
		what string
		l    netlink.Link
	}{
		{"in its container", nil},
		{"its container gone", &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: ifc.Name, Promisc: 1}}},
	} {
		if did, err := putBackInternal(ifc, c.l); did != "" || err != nil {
			t.Errorf("%s: %q, %v; want nothing done", c.what, did, err)
		}
	}
}
