package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/openflow"
)

// The persistent OpenFlow connection: a bundle lands whole; a bundle with
// a flow ovs-vswitchd refuses lands not at all and the error names the
// flow; after ovs-vswitchd restarts, the next change redials by itself;
// many changes spread over parallel connections land and go; a bridge
// without OpenFlow 1.4 is refused by name.
func TestOpenFlowBundles(t *testing.T) {
	e := newEnv(t)
	t.Setenv("OVS_RUNDIR", e.sb.Dir)
	if _, err := e.sb.Vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev", "protocols=OpenFlow14", "fail_mode=secure"); err != nil {
		t.Fatal(err)
	}
	sw := flows.NewSwitch()
	defer sw.Close()
	dump := func() string {
		out, err := e.sb.Run("ovs-ofctl", "-O", "OpenFlow14", "dump-flows", "br0", "--no-stats")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if err := sw.Apply("br0", flows.Change{Cookie: 0x11, Mask: ^uint64(0), Flows: []*openflow.Flow{
		ofFlow(0, 5, 0x11, openflow.Resubmit(7)), ofFlow(7, 5, 0x11, openflow.Drop())}}); err != nil {
		t.Fatal(err)
	}
	before := dump()
	if !strings.Contains(before, "cookie=0x11, priority=5 actions=resubmit(,7)") || !strings.Contains(before, "cookie=0x11, table=7, priority=5 actions=drop") {
		t.Fatalf("bundle did not land:\n%s", before)
	}
	// Flow counts per table (0xff: all tables) in one exchange.
	counts, err := sw.FlowCounts("br0", []uint8{0, 7, 9, 0xff})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uint8]int{0: 1, 7: 1, 9: 0, 0xff: 2}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("flow counts %v, want %v", counts, want)
	}
	// The second flow sets an ICMPv6 field without an ICMPv6 match: refused
	// by ovs-vswitchd, so the deletion of cookie 0x11 in the same bundle
	// must not happen either.
	bad := ofFlow(3, 1, 0x22, openflow.SetICMPv6Type(136))
	err = sw.Apply("br0", flows.Change{Cookie: 0x11, Mask: ^uint64(0), Flows: []*openflow.Flow{ofFlow(2, 1, 0x11, openflow.Drop()), bad}})
	if err == nil || !strings.Contains(err.Error(), "set_field:136->icmpv6_type") {
		t.Fatalf("want an error naming the refused flow, got %v", err)
	}
	if after := dump(); after != before {
		t.Fatalf("a refused bundle changed the table:\nbefore %s\nafter  %s", before, after)
	}
	// The connection survives a refused bundle...
	if err := sw.Apply("br0", flows.Change{Cookie: 0x11, Mask: ^uint64(0)}); err != nil {
		t.Fatal(err)
	}
	// ...and ovs-vswitchd restarting under it.
	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	if err := sw.Apply("br0", flows.Change{Cookie: 0x33, Mask: ^uint64(0), Flows: []*openflow.Flow{ofFlow(0, 9, 0x33, openflow.Drop())}}); err != nil {
		t.Fatalf("apply after ovs-vswitchd restart: %v", err)
	}
	if out := dump(); !strings.Contains(out, "cookie=0x33, priority=9 actions=drop") || strings.Contains(out, "cookie=0x11") {
		t.Fatalf("after restart:\n%s", out)
	}

	spreadLandsAndGoes(t, sw)

	// A bridge without OpenFlow 1.4 is named, with what to do.
	if _, err := e.sb.Vsctl("add-br", "br10", "--", "set", "bridge", "br10", "datapath_type=netdev", "protocols=OpenFlow10"); err != nil {
		t.Fatal(err)
	}
	err = sw.Apply("br10", flows.Change{Cookie: 1, Mask: ^uint64(0)})
	if err == nil || !strings.Contains(err.Error(), "bridge br10 refused OpenFlow 1.4") || !strings.Contains(err.Error(), "add OpenFlow14 to its protocols") {
		t.Fatalf("want bridge br10's refusal of OpenFlow 1.4, got %v", err)
	}
}

// spreadLandsAndGoes: many changes spread over parallel connections all
// land on br0, and go (leaving its one flow of cookie 0x33).
func spreadLandsAndGoes(t *testing.T, sw *flows.Switch) {
	var many []flows.Change
	for i := 0; i < 500; i++ {
		c := uint64(0x1000 + i)
		var fs []*openflow.Flow
		for j := 0; j < 4; j++ {
			fs = append(fs, ofFlow(uint8(20+j), uint16(100+i), c, openflow.Drop()))
		}
		many = append(many, flows.Change{Cookie: c, Mask: ^uint64(0), Flows: fs})
	}
	if err := sw.ApplySpread("br0", many...); err != nil {
		t.Fatal(err)
	}
	counts, err := sw.FlowCounts("br0", []uint8{20, 21, 22, 23})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uint8]int{20: 500, 21: 500, 22: 500, 23: 500}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("after a spread apply of 2,000 flows: counts %v, want %v", counts, want)
	}
	for i := range many {
		many[i].Flows = nil
	}
	if err := sw.ApplySpread("br0", many...); err != nil {
		t.Fatal(err)
	}
	if counts, err = sw.FlowCounts("br0", []uint8{0xff}); err != nil || counts[0xff] != 1 {
		t.Fatalf("after deleting them: %v flows in all (want 1, cookie 0x33), err %v", counts, err)
	}
}

// ofFlow is a flow of table, priority and cookie doing a.
func ofFlow(table uint8, prio uint16, cookie uint64, a ...openflow.Action) *openflow.Flow {
	return &openflow.Flow{Table: table, Priority: prio, Cookie: cookie, Actions: a}
}
