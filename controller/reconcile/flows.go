package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/openflow"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// syncBridgeFlows makes the bridge's whole flow table match fs (its
// intent, intendedFlows) in one replace-flows bundle: what did not change
// stays, drift goes.
// It returns how many flows it added and removed (0, 0: nothing drifted).
// quick first compares only the number of flows in each table (one
// exchange) and stops if they agree: a full comparison dumps every flow,
// which on the userspace datapath takes ~1 s per 15,000 flows (a socket
// buffer per iteration of ovs-vswitchd's main loop, which slows with the
// port count). Deleted or added flows change a count; a flow modified in
// place does not, and waits for the next full comparison.
//
// Meters (ms) are compared in full every time: one exchange. A meter that
// is missing or at another rate counts as one flow added, one the intent
// does not have as one removed.
func (h *Converger) syncBridgeFlows(bridge string, fs []*openflow.Flow, ms []openflow.Meter, quick bool) (added, removed int, err error) {
	if quick && h.flowCountsAgree(bridge, fs) {
		return 0, 0, nil
	}
	if added, removed, err = h.host.Flows.Diff(bridge, fs); err != nil {
		return 0, 0, err
	}
	wrong, extra, err := h.host.Flows.MeterDrift(bridge, ms)
	if err != nil {
		return 0, 0, err
	}
	if added, removed = added+wrong, removed+extra; added+removed == 0 {
		return 0, 0, nil
	}
	return added, removed, h.host.Flows.ReplaceAll(bridge, fs, ms)
}

// flowIntent is what a bridge's flows follow from: its bridge and link
// flows (few), its ports (whose flows, most of them, are made only when
// asked for: a run after an attach needs one port's), and by cookie a
// fingerprint of each object's intent, so that two runs can tell which
// objects changed between them (see unexplained).
type flowIntent struct {
	fixed  []*openflow.Flow
	ports  map[uint64]flows.PortModel
	prints map[uint64]string
	// attached are the port cookies of interfaces that add-port finished
	// (state ready) on the port number it asked for: it installed exactly
	// these flows before marking the port ready.
	attached map[uint64]bool
}

// all returns every flow of the bridge.
func (fi *flowIntent) all() []*openflow.Flow {
	fs := append([]*openflow.Flow(nil), fi.fixed...)
	for _, p := range fi.ports {
		fs = append(fs, flows.PortFlows(p)...)
	}
	return fs
}

// meters returns every meter the bridge's flows use.
func (fi *flowIntent) meters() []openflow.Meter {
	var ms []openflow.Meter
	for _, p := range fi.ports {
		ms = append(ms, flows.PortMeters(p)...)
	}
	return ms
}

// of returns the flows of the object with cookie c.
func (fi *flowIntent) of(c uint64) []*openflow.Flow { return fi.change(c).Flows }

// change puts the flows (and meters) of the object with cookie c in place.
func (fi *flowIntent) change(c uint64) flows.Change {
	if p, ok := fi.ports[c]; ok {
		return flows.PortChange(p)
	}
	ch := flows.Change{Cookie: c, Mask: flows.ObjectMask}
	for _, f := range fi.fixed {
		if f.Cookie == c {
			ch.Flows = append(ch.Flows, f)
		}
	}
	return ch
}

// countByCookie counts fs by cookie.
func countByCookie(fs []*openflow.Flow) map[uint64]int {
	n := map[uint64]int{}
	for _, f := range fs {
		n[f.Cookie]++
	}
	return n
}

// intendedFlows works out bridge b's flow intent from the topology and
// its interfaces' decoding.
func (h *Converger) intendedFlows(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge, d flowmodel.DecodedPorts) (*flowIntent, error) {
	bf, err := flowmodel.Of(topo, b, d)
	if err != nil {
		return nil, err
	}
	fi := &flowIntent{fixed: bf.Fixed, ports: bf.Ports, prints: map[uint64]string{}, attached: map[uint64]bool{}}
	ifs, _ := topo.BridgeInterfaces(b)
	for _, i := range ifs {
		p, ok := d.Flow[i.Name]
		if !ok {
			continue
		}
		cookie := flows.PortCookie(p.Name)
		fi.prints[cookie] = fmt.Sprintf("%d %s %v %d %d", p.Ofport, p.MAC, p.Addrs, p.VLAN, p.FloodPPS)
		if intent.RefOf(i.ExternalIDs).State == intent.StateReady && (i.Ofport == nil || i.OfportRequest == nil || *i.Ofport <= 0 || *i.Ofport == *i.OfportRequest) {
			fi.attached[cookie] = true
		}
	}
	// Bridge and link flows are few: they are their own fingerprint.
	var sb strings.Builder
	for _, f := range fi.fixed {
		sb.Reset()
		sb.WriteString(fi.prints[f.Cookie])
		sb.WriteString(f.String())
		sb.WriteByte('\n')
		fi.prints[f.Cookie] = sb.String()
	}
	return fi, nil
}

// unexplained returns the changes that take a bridge's flows from the
// intent was (the last run's, which they were brought to) to now, less
// those that the ovsnet process making them put in ovs-vswitchd itself: a
// port attached and marked ready, a port gone (del-port removes its
// flows). CLI changes and attach API requests hold the host lock shared
// for their whole run, so a run never sees one half made. What is left (a
// port, bridge or link whose intent changed in place, an attach not
// finished) is one replace by cookie each: what a count check would not
// even see when the number of flows stays.
func unexplained(was map[uint64]string, now *flowIntent) []flows.Change {
	var chs []flows.Change
	for c := range was {
		if _, ok := now.prints[c]; !ok && c&flows.CategoryMask != flows.CatPort {
			chs = append(chs, flows.Change{Cookie: c, Mask: flows.ObjectMask}) // its flows go
		}
	}
	for c, p := range now.prints {
		if q, ok := was[c]; (ok && q != p) || (!ok && !now.attached[c]) {
			chs = append(chs, now.change(c))
		}
	}
	return chs
}

// flowCountsAgree says whether bridge holds as many flows in each pipeline
// table, and in all, as fs (an error counts as disagreement: the full
// comparison then reports it).
func (h *Converger) flowCountsAgree(bridge string, fs []*openflow.Flow) bool {
	want := map[uint8]int{tableAll: len(fs)}
	for _, t := range flows.Tables {
		want[uint8(t)] = 0
	}
	for _, f := range fs {
		want[uint8(f.Table)]++
	}
	got, err := h.takeEarlyCounts(bridge)
	if got == nil || err != nil {
		got, err = h.host.Flows.FlowCounts(bridge, countedTables())
	}
	if err != nil {
		return false
	}
	for t, n := range want {
		if got[t] != n {
			return false
		}
	}
	return true
}

// countedTables are the tables whose flows a quick comparison counts.
func countedTables() []uint8 {
	tables := []uint8{tableAll}
	for _, t := range flows.Tables {
		tables = append(tables, uint8(t))
	}
	return tables
}

// earlyCounts is a flow count asked for ahead of its use.
type earlyCounts struct {
	counts map[uint8]int
	err    error
}

// prefetchFlowCounts asks bridges for their flow counts now, for the next
// quick comparison of each to use. A cold start asks while the monitor's
// initial reply loads (10,000 ports: ~2 s) rather than after it, which on
// the userspace datapath saves one iteration of ovs-vswitchd's main loop
// (0.3-0.8 s at that size). The counts may be a moment older than the
// intent they are compared with: a change in between makes them disagree
// (then the full comparison runs), and the change's own monitor update asks
// for another run.
func (h *Converger) Prefetch(bridges []string) {
	h.earlyMu.Lock()
	defer h.earlyMu.Unlock()
	if h.early == nil {
		h.early = map[string]chan earlyCounts{}
	}
	for _, b := range bridges {
		ch := make(chan earlyCounts, 1)
		h.early[b] = ch
		go func() {
			c, err := h.host.Flows.FlowCounts(b, countedTables())
			ch <- earlyCounts{c, err}
		}()
	}
}

// takeEarlyCounts returns (once) bridge's prefetched counts, waiting for
// them if they are still on their way; nil if none were asked for.
func (h *Converger) takeEarlyCounts(bridge string) (map[uint8]int, error) {
	h.earlyMu.Lock()
	ch := h.early[bridge]
	delete(h.early, bridge)
	h.earlyMu.Unlock()
	if ch == nil {
		return nil, nil
	}
	r := <-ch
	return r.counts, r.err
}

// dropEarlyCounts forgets prefetched counts no comparison took: they are
// only good for the run they were asked for.
func (h *Converger) DropPrefetched() {
	h.earlyMu.Lock()
	h.early = nil
	h.earlyMu.Unlock()
}

// tableAll asks for the flows of every table (OFPTT_ALL): a flow in a table
// outside the pipeline is drift too.
const tableAll = 0xff
