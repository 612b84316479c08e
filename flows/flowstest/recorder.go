// Package flowstest is a stand-in for the bridges' OpenFlow connections
// (flows.Switch) in unit tests: a Recorder keeps each bridge's flow table
// and meters as the calls made them, and every call, so that a test reads
// what an operation programmed without Open vSwitch.
package flowstest

import (
	"context"
	"slices"
	"sync"

	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/openflow"
)

// Recorder records OpenFlow calls and keeps the tables they make. Its zero
// value is ready; Err, when set, fails every call that talks to a bridge.
type Recorder struct {
	mu     sync.Mutex
	tables map[string]*table
	calls  []string
	// Err is what every call to a bridge returns (nil: success).
	Err error
}

// table is one bridge's flows (by their ovs-ofctl text) and meters.
type table struct {
	flows  map[string]*openflow.Flow
	meters map[uint32]openflow.Meter
	epoch  uint64
}

func (r *Recorder) table(bridge string) *table {
	if r.tables == nil {
		r.tables = map[string]*table{}
	}
	t := r.tables[bridge]
	if t == nil {
		t = &table{flows: map[string]*openflow.Flow{}, meters: map[uint32]openflow.Meter{}, epoch: 1}
		r.tables[bridge] = t
	}
	return t
}

// do records call and, unless Err is set, runs f on bridge's table.
func (r *Recorder) do(call, bridge string, f func(t *table)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call+" "+bridge)
	if r.Err != nil {
		return r.Err
	}
	if f != nil {
		f(r.table(bridge))
	}
	return nil
}

// Calls are the calls made so far, as "Method bridge", in order.
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Flows are bridge's flows, as ovs-ofctl writes them, sorted.
func (r *Recorder) Flows(bridge string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for s := range r.table(bridge).flows {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Meters are bridge's meters.
func (r *Recorder) Meters(bridge string) map[uint32]openflow.Meter {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[uint32]openflow.Meter{}
	for id, m := range r.table(bridge).meters {
		out[id] = m
	}
	return out
}

// Restart is ovs-vswitchd restarting: every bridge's flows and meters
// gone, its connections new.
func (r *Recorder) Restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tables {
		t.flows, t.meters = map[string]*openflow.Flow{}, map[uint32]openflow.Meter{}
		t.epoch++
	}
}

func (r *Recorder) Prepare(bridge string) { r.do("Prepare", bridge, nil) }

func (r *Recorder) Epoch(bridge string) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.table(bridge).epoch, r.Err == nil
}

func (r *Recorder) Forget(bridge string) { r.do("Forget", bridge, nil) }
func (r *Recorder) Close()               {}

// Apply replaces, per change, the flows under its cookie and mask with
// its flows, and sets its meters.
func (r *Recorder) Apply(bridge string, changes ...flows.Change) error {
	return r.do("Apply", bridge, func(t *table) {
		for _, c := range changes {
			for s, f := range t.flows {
				if f.Cookie&c.Mask == c.Cookie&c.Mask {
					delete(t.flows, s)
				}
			}
			for _, f := range c.Flows {
				t.flows[f.String()] = f
			}
			for _, m := range c.Meters {
				t.meters[m.ID] = m
			}
		}
	})
}

func (r *Recorder) ApplySpread(bridge string, changes ...flows.Change) error {
	return r.Apply(bridge, changes...)
}

func (r *Recorder) ReplaceAll(bridge string, fs []*openflow.Flow, ms []openflow.Meter) error {
	return r.do("ReplaceAll", bridge, func(t *table) {
		t.flows, t.meters = map[string]*openflow.Flow{}, map[uint32]openflow.Meter{}
		for _, f := range fs {
			t.flows[f.String()] = f
		}
		for _, m := range ms {
			t.meters[m.ID] = m
		}
	})
}

func (r *Recorder) DeleteMeters(bridge string, ids []uint32) error {
	return r.do("DeleteMeters", bridge, func(t *table) {
		for _, id := range ids {
			delete(t.meters, id)
		}
	})
}

func (r *Recorder) Diff(bridge string, fs []*openflow.Flow) (added, removed int, err error) {
	err = r.do("Diff", bridge, func(t *table) {
		want := map[string]bool{}
		for _, f := range fs {
			want[f.String()] = true
			if t.flows[f.String()] == nil {
				added++
			}
		}
		for s := range t.flows {
			if !want[s] {
				removed++
			}
		}
	})
	return added, removed, err
}

func (r *Recorder) MeterDrift(bridge string, ms []openflow.Meter) (wrong, extra int, err error) {
	err = r.do("MeterDrift", bridge, func(t *table) {
		keep := map[uint32]bool{}
		for _, m := range ms {
			keep[m.ID] = true
			if t.meters[m.ID] != m {
				wrong++
			}
		}
		for id := range t.meters {
			if !keep[id] {
				extra++
			}
		}
	})
	return wrong, extra, err
}

func (r *Recorder) CookieCount(bridge string, cookie, mask uint64) (n int, err error) {
	err = r.do("CookieCount", bridge, func(t *table) {
		for _, f := range t.flows {
			if f.Cookie&mask == cookie&mask {
				n++
			}
		}
	})
	return n, err
}

func (r *Recorder) FlowCounts(bridge string, tables []uint8) (counts map[uint8]int, err error) {
	err = r.do("FlowCounts", bridge, func(t *table) {
		counts = map[uint8]int{}
		for _, f := range t.flows {
			if slices.Contains(tables, f.Table) {
				counts[f.Table]++
			}
		}
	})
	return counts, err
}

// WaitRevalidated is recorded (a change that takes access away waits on
// it), as "WaitRevalidated -".
func (r *Recorder) WaitRevalidated(context.Context) error {
	return r.do("WaitRevalidated", "-", nil)
}
