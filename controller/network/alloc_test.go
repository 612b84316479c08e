package network

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// allocHost is a Host on an in-memory OVSDB holding bridge "br0" with
// subnet and the bridge keys in set, and a container interface holding
// each of held (an address, or "mac:ADDR" for the MAC derived from ADDR
// alone, as a port whose address no longer decodes holds it), asking for
// OpenFlow ports 10, 11...
func allocHost(t *testing.T, subnet string, set map[string]string, held ...string) (*Host, intent.Bridge) {
	t.Helper()
	h, err := Open(context.Background(), ovsdbtest.Serve(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, intenttest.Bridge(t, h.DB, subnet, set, held...)
}

func allocated(t *testing.T, h *Host, br intent.Bridge, requested ...string) (*claim, error) {
	t.Helper()
	var rq []netip.Prefix
	for _, r := range requested {
		rq = append(rq, netip.MustParsePrefix(r))
	}
	subs := make([]ipam.Subnet, len(br.Subnets))
	copy(subs, br.Subnets)
	return h.allocate(context.Background(), br, subs, rq, len(rq) == 0)
}

// The lowest free address above the hint, skipping those held by address
// or by MAC; the next OpenFlow port number nothing holds or asks for.
func TestAllocateProbes(t *testing.T) {
	h, br := allocHost(t, "10.9.0.0/24", map[string]string{intent.KeyNextOfport: "10"}, "10.9.0.2", "mac:10.9.0.3")
	c, err := allocated(t, h, br)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.addrs) != 1 || c.addrs[0] != netip.MustParsePrefix("10.9.0.4/24") {
		t.Errorf("allocated %v, want 10.9.0.4/24 (.2 held by its address, .3 by its MAC)", c.addrs)
	}
	if c.ofport != 12 { // 10 and 11 are asked for by the two ports
		t.Errorf("ofport %d, want 12", c.ofport)
	}
	if len(c.hints) != 1 || c.hints[0] != netip.MustParseAddr("10.9.0.5") {
		t.Errorf("hints %v, want 10.9.0.5", c.hints)
	}
}

// An address given explicitly is checked, not taken from another.
func TestAllocateExplicit(t *testing.T) {
	h, br := allocHost(t, "10.9.0.0/24", nil, "10.9.0.2")
	if _, err := allocated(t, h, br, "10.9.0.2/24"); err == nil || !strings.Contains(err.Error(), "10.9.0.2 is already taken by c10.9.0.2/eth1") {
		t.Errorf("a held address given: %v", err)
	}
	c, err := allocated(t, h, br, "10.9.0.7/24")
	if err != nil || len(c.addrs) != 1 || c.addrs[0] != netip.MustParsePrefix("10.9.0.7/24") {
		t.Errorf("a free address given: %v, %v", c, err)
	}
	if _, err := allocated(t, h, br, "10.8.0.7/24"); err == nil {
		t.Error("an address outside the subnet was taken")
	}
}

// A hint past every free address starts again from the subnet's start;
// a full subnet is ErrExhausted.
func TestAllocateRestartAndExhaustion(t *testing.T) {
	h, br := allocHost(t, "10.9.2.0/29", map[string]string{intent.KeyHintIPv4: "10.9.2.6"}, "10.9.2.6")
	c, err := allocated(t, h, br)
	if err != nil || c.addrs[0] != netip.MustParsePrefix("10.9.2.2/29") {
		t.Errorf("past the hint: %v, %v; want 10.9.2.2/29", c, err)
	}
	h, br = allocHost(t, "10.9.1.0/30", nil, "10.9.1.2")
	if _, err := allocated(t, h, br); !errors.Is(err, ipam.ErrExhausted) {
		t.Errorf("a full /30: %v, want ErrExhausted", err)
	}
}

// Two writers that read the same bridge state: the second commit loses.
func TestGuardBridgeConflict(t *testing.T) {
	h, _ := allocHost(t, "10.9.0.0/24", nil)
	ctx := context.Background()
	br, err := h.DB.GetBridge(ctx, "br0")
	if err != nil {
		t.Fatal(err)
	}
	guard := func() error {
		_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
			tx.GuardBridge("br0", br.ExternalIDs, map[string]string{intent.KeyNextOfport: "2"})
		})
		return err
	}
	if err := guard(); err != nil {
		t.Fatalf("the first writer: %v", err)
	}
	if err := guard(); !errors.Is(err, ovsdb.ErrConflict) {
		t.Fatalf("the second writer, on the same read: %v, want ErrConflict", err)
	}
}

// set-flood-limit on a bridge records the bound on the bridge (for its
// new ports) and on every container port in one guarded transaction.
func TestSetBridgeFloodLimitRecords(t *testing.T) {
	h, _ := allocHost(t, "10.9.0.0/24", nil, "10.9.0.2", "10.9.0.3")
	ctx := context.Background()
	ifs, ports, err := h.setBridgeFloodLimit(ctx, FloodLimit{Bridge: "br0", PPS: 300})
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
	if _, _, err := h.setBridgeFloodLimit(ctx, FloodLimit{Bridge: "nope", PPS: 300}); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("a bridge that is not there: %v", err)
	}
}
