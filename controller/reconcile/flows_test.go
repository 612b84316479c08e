package reconcile

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/flowstest"
	"github.com/ovsnet/ovsnet/flows/openflow"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat/nattest"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// seeded is a Converger on an in-memory OVSDB holding an isolated bridge
// br0 in NAT mode with containers a and b attached (ready) and a link
// a -> b, whose flows go to a Recorder and NAT to a nattest.Recorder.
func seeded(t *testing.T) (*Converger, *flowstest.Recorder) {
	t.Helper()
	ctx := context.Background()
	h, err := network.Open(ctx, ovsdbtest.Serve(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	rec := &flowstest.Recorder{}
	h.Flows, h.Firewall = rec, &nattest.Recorder{}
	subs, err := ipam.ParseSubnets([]string{"10.9.0.0/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	icc, nat := false, true
	ext := intent.NewBridge()
	for k, v := range (intent.Settings{Subnets: subs, ICC: &icc, NAT: &nat}).Encode() {
		ext[k] = v
	}
	for k, v := range (intent.Link{Src: "a", Dst: "b", Ports: "all"}).Encode() {
		ext[k] = v
	}
	var specs []ovsdb.PortSpec
	for i, c := range []string{"a", "b"} {
		p := netip.MustParsePrefix("10.9.0." + string(rune('2'+i)) + "/24")
		pi := intent.Port{Container: c, Iface: "eth1", Bridge: "br0", State: intent.StateReady, Type: "veth",
			MAC: ipam.MACFor([]netip.Prefix{p}), Addrs: []netip.Prefix{p}, FloodPPS: intent.DefaultFloodPPS}
		specs = append(specs, ovsdb.PortSpec{Name: "on-" + c, OfportRequest: 10 + i, ExternalIDs: pi.Encode()})
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "br0", ExternalIDs: ext})
		tx.AddPorts("br0", specs...)
	}); err != nil {
		t.Fatal(err)
	}
	return New(h), rec
}

// converge runs the flow step of a run on br0 as the topology is now.
func converge(t *testing.T, c *Converger, o Options) (string, bool) {
	t.Helper()
	ctx := context.Background()
	topo, err := c.host.DB.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := topo.Bridge("br0")
	ifs, ports := topo.BridgeInterfaces(b)
	did, asked, err := c.convergeFlows(ctx, topo, b, flowmodel.DecodePorts(ifs, ports), o)
	if err != nil {
		t.Fatal(err)
	}
	return did, asked
}

// TestConvergeFlows: a run installs a bridge's whole intent; a run set off
// by an OVSDB change trusts what the last one left and asks the bridge
// nothing; a restarted ovs-vswitchd (a new connection), a flow added by
// hand, a meter gone are each found and put right; a check with nothing
// to do changes nothing.
func TestConvergeFlows(t *testing.T) {
	c, rec := seeded(t)
	seen := Memory{}
	did, asked := converge(t, c, Options{Seen: seen})
	if !asked || !strings.HasPrefix(did, "resynced flows on br0: ") || !strings.HasSuffix(did, " added, 0 removed") {
		t.Fatalf("first run: %q (asked %v)", did, asked)
	}
	installed := rec.Flows("br0")
	if n, _ := rec.CookieCount("br0", flows.LinkCookie("a", "b"), flows.ObjectMask); n == 0 || len(rec.Meters("br0")) != 2 || seen.Total("br0") != len(installed) {
		t.Fatalf("installed %d flows (%d of the link), %d meters; remembered %d", len(installed), n, len(rec.Meters("br0")), seen.Total("br0"))
	}
	calls := len(rec.Calls())
	if did, asked := converge(t, c, Options{Seen: seen, Trust: true}); did != "" || asked || len(rec.Calls()) != calls {
		t.Fatalf("a trusted run with nothing changed: %q, asked %v, calls %v", did, asked, rec.Calls()[calls:])
	}
	if did, _ := converge(t, c, Options{Seen: seen, Quick: true}); did != "" {
		t.Fatalf("a check with nothing drifted: %q", did)
	}
	// An intent change: a trusted run sends that port's flows and meter
	// alone, without a comparison.
	if _, err := c.host.DB.Do(context.Background(), func(tx *ovsdb.Tx) {
		ifs, _ := c.host.DB.FindInterfaces(context.Background(), intent.OfContainer("a", "eth1"))
		tx.SetInterfaceExternalIDs(ifs[0].UUID, map[string]string{intent.KeyFloodPPS: "700"})
	}); err != nil {
		t.Fatal(err)
	}
	calls = len(rec.Calls())
	if did, asked := converge(t, c, Options{Seen: seen, Trust: true}); did != "" || !asked || rec.Meters("br0")[10].PPS != 700 {
		t.Fatalf("a trusted run after a port's change: %q, asked %v, meter %+v", did, asked, rec.Meters("br0")[10])
	}
	if got := rec.Calls()[calls:]; len(got) != 1 || got[0] != "Apply br0" {
		t.Fatalf("a port's change sent as %v, want one bundle", got)
	}
	// Counts asked for ahead (while the monitor's first reply loads) are
	// what a quick check compares, once.
	c.Prefetch([]string{"br0"})
	if did, _ := converge(t, c, Options{Quick: true}); did != "" {
		t.Fatalf("a quick check on prefetched counts: %q", did)
	}
	c.Prefetch([]string{"br0"})
	c.DropPrefetched()
	if seen.Broken(rec) {
		t.Fatal("flows taken for broken with the same connection")
	}
	rec.Restart()
	if !seen.Broken(rec) {
		t.Fatal("a new connection (ovs-vswitchd restarted) not taken for broken flows")
	}
	if did, _ := converge(t, c, Options{Seen: seen, Trust: true}); !strings.HasPrefix(did, "resynced flows on br0: ") || len(rec.Flows("br0")) != len(installed) {
		t.Fatalf("after a restart: %q, %d flows (want %d)", did, len(rec.Flows("br0")), len(installed))
	}
	stray := &openflow.Flow{Table: 0, Priority: 9, Cookie: 0xdead}
	if err := rec.Apply("br0", flows.Change{Cookie: 0xdead, Mask: ^uint64(0), Flows: []*openflow.Flow{stray}}); err != nil {
		t.Fatal(err)
	}
	if did, _ := converge(t, c, Options{}); did != "resynced flows on br0: 0 added, 1 removed" {
		t.Fatalf("a flow added by hand: %q", did)
	}
	if err := rec.DeleteMeters("br0", []uint32{10}); err != nil {
		t.Fatal(err)
	}
	if did, _ := converge(t, c, Options{}); did != "resynced flows on br0: 1 added, 0 removed" || len(rec.Meters("br0")) != 2 {
		t.Fatalf("a meter gone: %q, %d meters", did, len(rec.Meters("br0")))
	}
}
