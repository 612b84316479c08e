package flood

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/networktest"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/flowstest"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// set-flood-limit on a bridge records the bound on the bridge (for its
// new ports) and on every container port in one guarded transaction.
func TestSetBridgeFloodLimitRecords(t *testing.T) {
	h := networktest.Host(t, "10.9.0.0/24", nil, "10.9.0.2", "10.9.0.3")
	ctx := context.Background()
	ifs, ports, err := setBridge(ctx, h, Limit{Bridge: "br0", PPS: 300})
	if err != nil || len(ifs) != 2 || len(ports) != 2 {
		t.Fatalf("changed %d interfaces, %d ports: %v; want the 2 container ports", len(ifs), len(ports), err)
	}
	br, err := h.DB.GetBridge(ctx, "br0")
	if err != nil || br.ExternalIDs[intent.KeyFloodPPS] != "300" || br.ExternalIDs[ovsdb.KeyGen] != "1" {
		t.Fatalf("bridge: %v, %v", br.ExternalIDs, err)
	}
	stored, err := h.DB.FindInterfaces(ctx, map[string]string{intent.KeyFloodPPS: "300"})
	if err != nil || len(stored) != 2 {
		t.Fatalf("interfaces with the bound in OVSDB: %d, %v", len(stored), err)
	}
	for _, i := range stored {
		if p, err := intent.DecodePort(i.Name, i.ExternalIDs); err != nil || p.FloodPPS != 300 {
			t.Fatalf("%s decodes as %d, %v", i.Name, p.FloodPPS, err)
		}
	}
	if _, _, err := setBridge(ctx, h, Limit{Bridge: "nope", PPS: 300}); !errors.Is(err, network.ErrNoBridge) {
		t.Fatalf("a bridge that is not there: %v", err)
	}
}

// TestSetPortLimit: set-flood-limit on one port puts its meter at the new
// rate with its flows, and changes only that port.
func TestSetPortLimit(t *testing.T) {
	ctx := context.Background()
	h := networktest.Host(t, "10.1.0.0/24", nil, "10.1.0.2", "10.1.0.3")
	rec := &flowstest.Recorder{}
	h.Flows = rec
	names, err := Set(ctx, h, Limit{Bridge: "br0", Iface: "eth1", Container: "c10.1.0.2", PPS: 500})
	if err != nil || len(names) != 1 || names[0] != "on10.1.0.2" {
		t.Fatalf("set-flood-limit: %v, %v", names, err)
	}
	if m, ok := rec.Meters("br0")[10]; !ok || m.PPS != 500 {
		t.Fatalf("meters: %+v", rec.Meters("br0"))
	}
	cookie := fmt.Sprintf("cookie=%#016x", flows.PortCookie("on10.1.0.2"))
	if !slices.ContainsFunc(rec.Flows("br0"), func(f string) bool { return strings.Contains(f, cookie) && strings.Contains(f, "meter:10") }) {
		t.Fatalf("no flow of the port through its meter: %q", rec.Flows("br0"))
	}
	if _, err := Set(ctx, h, Limit{Bridge: "br0", Iface: "eth1", PPS: 500}); err == nil {
		t.Fatal("an interface without its container was taken")
	}
}
