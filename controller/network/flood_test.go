package network

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/flowstest"
)

// TestFloodLimitAndVLANFlows: set-flood-limit on one port puts its meter
// at the new rate with its flows; set-vlan replaces the port's flows with
// ones that carry the VLAN (in a register) and, as it takes access away, waits for
// revalidation; a bad VLAN changes nothing.
func TestFloodLimitAndVLANFlows(t *testing.T) {
	ctx := context.Background()
	h, _ := allocHost(t, "10.1.0.0/24", nil, "10.1.0.2", "10.1.0.3")
	rec := &flowstest.Recorder{}
	h.Flows = rec
	names, err := h.SetFloodLimit(ctx, FloodLimit{Bridge: "br0", Iface: "eth1", Container: "c10.1.0.2", PPS: 500})
	if err != nil || len(names) != 1 || names[0] != "on10.1.0.2" {
		t.Fatalf("set-flood-limit: %v, %v", names, err)
	}
	if m, ok := rec.Meters("br0")[10]; !ok || m.PPS != 500 {
		t.Fatalf("meters: %+v", rec.Meters("br0"))
	}
	portFlows := func(name string) []string {
		return slices.DeleteFunc(rec.Flows("br0"), func(f string) bool {
			return !strings.Contains(f, fmt.Sprintf("cookie=%#016x", flows.PortCookie(name)))
		})
	}
	inVLAN := func(f string) bool { return strings.Contains(f, "load:0xa->NXM_NX_REG2[]") } // the VLAN, 10, in reg2
	if fs := portFlows("on10.1.0.2"); len(fs) == 0 || slices.ContainsFunc(fs, inVLAN) {
		t.Fatalf("the port's flows with its meter, in no VLAN: %q", fs)
	}
	calls := len(rec.Calls())
	if err := h.SetVLAN(ctx, "br0", "eth1", "c10.1.0.2", 4095); err == nil || len(rec.Calls()) != calls {
		t.Fatalf("VLAN 4095: %v, calls %v", err, rec.Calls())
	}
	if err := h.SetVLAN(ctx, "br0", "eth1", "c10.1.0.2", 10); err != nil {
		t.Fatal(err)
	}
	tagged := slices.ContainsFunc(portFlows("on10.1.0.2"), inVLAN)
	if !tagged || !slices.Contains(rec.Calls(), "WaitRevalidated -") {
		t.Fatalf("after set-vlan: flows %q, calls %v", portFlows("on10.1.0.2"), rec.Calls())
	}
}
