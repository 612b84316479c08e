package network

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/flows/flowstest"
)

// TestVLANFlows: set-vlan replaces the port's flows with ones that carry
// the VLAN (in a register) and, as it takes access away, waits for
// revalidation; a bad VLAN changes nothing.
func TestVLANFlows(t *testing.T) {
	ctx := context.Background()
	h, _ := allocHost(t, "10.1.0.0/24", nil, "10.1.0.2", "10.1.0.3")
	rec := &flowstest.Recorder{}
	h.Flows = rec
	inVLAN := func(f string) bool { return strings.Contains(f, "load:0xa->NXM_NX_REG2[]") } // the VLAN, 10, in reg2
	calls := len(rec.Calls())
	if err := h.SetVLAN(ctx, "br0", "eth1", "c10.1.0.2", 4095); err == nil || len(rec.Calls()) != calls {
		t.Fatalf("VLAN 4095: %v, calls %v", err, rec.Calls())
	}
	if err := h.SetVLAN(ctx, "br0", "eth1", "c10.1.0.2", 10); err != nil {
		t.Fatal(err)
	}
	tagged := slices.ContainsFunc(portFlows(rec, "on10.1.0.2"), inVLAN)
	if !tagged || !slices.Contains(rec.Calls(), "WaitRevalidated -") {
		t.Fatalf("after set-vlan: flows %q, calls %v", portFlows(rec, "on10.1.0.2"), rec.Calls())
	}
}
