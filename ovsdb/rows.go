package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Query is one server-side select. Several run in one transaction read a
// consistent snapshot.
type Query struct {
	Table   string
	Where   []ovsdb.Condition
	Columns []string
}

// Op is the select operation of q.
func (q Query) Op() ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationSelect, Table: q.Table, Where: q.Where, Columns: q.Columns}
}

// Read runs queries in one transaction and returns each query's rows.
func (c *Client) Read(ctx context.Context, qs ...Query) ([][]ovsdb.Row, error) {
	ops := make([]ovsdb.Operation, len(qs))
	for i, q := range qs {
		ops[i] = q.Op()
	}
	res, err := c.transact(ctx, ops)
	if err != nil {
		return nil, err
	}
	out := make([][]ovsdb.Row, len(qs))
	for i := range qs {
		out[i] = res[i].Rows
	}
	return out, nil
}

// Decode converts select rows into typed models (T is a model struct type).
func Decode[T any](c *Client, rows []ovsdb.Row) ([]T, error) {
	out := make([]T, len(rows))
	for i := range rows {
		info, err := c.db.NewModelInfo(any(&out[i]))
		if err != nil {
			return nil, err
		}
		if err := c.db.Mapper.GetRowData(&rows[i], info); err != nil {
			return nil, fmt.Errorf("decode %s row: %w", reflect.TypeOf(out[i]).Name(), err)
		}
		// The mapper decodes schema columns only; _uuid is not one of them.
		if u, ok := rows[i]["_uuid"].(ovsdb.UUID); ok {
			if err := info.SetField("_uuid", u.GoUUID); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Select runs one query and decodes its rows.
func Select[T any](ctx context.Context, c *Client, where []ovsdb.Condition, columns ...string) ([]T, error) {
	var zero T
	table := c.db.FindTable(reflect.TypeOf(&zero))
	if table == "" {
		return nil, fmt.Errorf("%T is not a registered OVSDB model", zero)
	}
	rs, err := c.Read(ctx, Query{Table: table, Where: where, Columns: columns})
	if err != nil {
		return nil, err
	}
	return Decode[T](c, rs[0])
}

// Conditions.

// NameIs matches rows whose name column equals name (Bridge, Port, Interface).
func NameIs(name string) ovsdb.Condition {
	return ovsdb.NewCondition("name", ovsdb.ConditionEqual, name)
}

// UUIDIs matches the row with the given UUID.
func UUIDIs(uuid string) ovsdb.Condition {
	return ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: uuid})
}

// ExternalIDsInclude matches rows whose external_ids hold all of kv's pairs.
func ExternalIDsInclude(kv map[string]string) ovsdb.Condition {
	m, _ := ovsdb.NewOvsMap(kv)
	return ovsdb.NewCondition("external_ids", ovsdb.ConditionIncludes, m)
}

// Typed reads used across ovsnet.

// bridgeColumns leaves out Bridge.ports, which grows with the bridge.
var bridgeColumns = []string{"_uuid", "name", "datapath_type", "external_ids", "other_config"}

// GetBridge returns the bridge named name (without its ports column), or
// nil if there is none.
func (c *Client) GetBridge(ctx context.Context, name string) (*vswitchd.Bridge, error) {
	bs, err := Select[vswitchd.Bridge](ctx, c, []ovsdb.Condition{NameIs(name)}, bridgeColumns...)
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	return &bs[0], nil
}

// BridgeSnapshot is one bridge and the ovsnet interfaces on it, read atomically.
type BridgeSnapshot struct {
	Bridge     vswitchd.Bridge
	Interfaces []vswitchd.Interface
}

// ReadBridge reads the bridge and ovsnet's interfaces on it in one
// transaction: only this bridge's rows, and only the columns ovsnet needs.
func (c *Client) ReadBridge(ctx context.Context, name string, ifaces map[string]string) (*BridgeSnapshot, error) {
	rs, err := c.Read(ctx,
		Query{Table: vswitchd.BridgeTable, Where: []ovsdb.Condition{NameIs(name)}, Columns: bridgeColumns},
		Query{Table: vswitchd.InterfaceTable, Where: []ovsdb.Condition{ExternalIDsInclude(ifaces)},
			Columns: []string{"_uuid", "name", "type", "ofport", "ofport_request", "external_ids", "link_state", "error"}},
	)
	if err != nil {
		return nil, err
	}
	bs, err := Decode[vswitchd.Bridge](c, rs[0])
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	ifs, err := Decode[vswitchd.Interface](c, rs[1])
	if err != nil {
		return nil, err
	}
	return &BridgeSnapshot{Bridge: bs[0], Interfaces: ifs}, nil
}

// FindInterfaces returns the interfaces whose external_ids include kv.
func (c *Client) FindInterfaces(ctx context.Context, kv map[string]string) ([]vswitchd.Interface, error) {
	return Select[vswitchd.Interface](ctx, c, []ovsdb.Condition{ExternalIDsInclude(kv)})
}

// InterfaceNow reads the interface row with the given UUID from the
// database, not the monitor's cache (which may not have a later change to
// it yet); nil if it is gone.
func (c *Client) InterfaceNow(ctx context.Context, uuid string) (*vswitchd.Interface, error) {
	rows, err := Select[vswitchd.Interface](ctx, c, []ovsdb.Condition{UUIDIs(uuid)})
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// PortsOn keeps the interfaces among ifs that are on bridge, with their
// ports (what a detach takes).
func (c *Client) PortsOn(ctx context.Context, bridge string, ifs []vswitchd.Interface) ([]vswitchd.Interface, []vswitchd.Port, error) {
	var outI []vswitchd.Interface
	var outP []vswitchd.Port
	for _, i := range ifs {
		p, err := c.PortOn(ctx, bridge, i.UUID)
		if err != nil {
			return nil, nil, err
		}
		if p != nil {
			outI, outP = append(outI, i), append(outP, *p)
		}
	}
	return outI, outP, nil
}

// PortOn returns the port on bridge that holds the interface with the given
// UUID, or nil if that interface is not on bridge. Two narrow selects in one
// transaction: neither reads a set that grows with the bridge.
func (c *Client) PortOn(ctx context.Context, bridge, ifaceUUID string) (*vswitchd.Port, error) {
	iset, _ := ovsdb.NewOvsSet([]ovsdb.UUID{{GoUUID: ifaceUUID}})
	rs, err := c.Read(ctx, Query{Table: vswitchd.PortTable, Columns: []string{"_uuid", "name", "tag"},
		Where: []ovsdb.Condition{ovsdb.NewCondition("interfaces", ovsdb.ConditionIncludes, iset)}})
	if err != nil {
		return nil, err
	}
	ps, err := Decode[vswitchd.Port](c, rs[0])
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	pset, _ := ovsdb.NewOvsSet([]ovsdb.UUID{{GoUUID: ps[0].UUID}})
	rs, err = c.Read(ctx, Query{Table: vswitchd.BridgeTable, Columns: []string{"name"},
		Where: []ovsdb.Condition{NameIs(bridge), ovsdb.NewCondition("ports", ovsdb.ConditionIncludes, pset)}})
	if err != nil || len(rs[0]) == 0 {
		return nil, err
	}
	return &ps[0], nil
}

var _ model.Model = &vswitchd.Bridge{}

// Topology is every bridge, port and interface, read in one transaction.
// Listing commands (show, del-br) use it; per-port commands never do.
type Topology struct {
	Bridges    []vswitchd.Bridge
	Ports      map[string]vswitchd.Port      // by UUID
	Interfaces map[string]vswitchd.Interface // by UUID

	mu      sync.Mutex
	members map[string]members // BridgeInterfaces, by bridge UUID
}

type members struct {
	ifs   []vswitchd.Interface
	ports []vswitchd.Port
}

// ReadAll reads the whole topology: from the monitor's cache on a watched
// connection (the controller's: no round trip, no decode, at 10,000 ports
// ~2 s less per convergence), else in one transaction. Rows from the cache
// are shared with it: read them, never change them; they hold only the
// columns watchedColumns names (no Interface mtu, mac_in_use, error; no
// Port external_ids).
func (c *Client) ReadAll(ctx context.Context) (*Topology, error) {
	if c.watched {
		return c.cachedTopology(), nil
	}
	return c.ReadAllFresh(ctx)
}

// ReadAllCaughtUp is ReadAll once the monitor's cache holds at least what
// the database holds now: every bridge a narrow select finds, at or past
// the generation it reads (every attach and detach bumps its bridge's),
// and no other. Updates in flight arrive within moments; a cache that does
// not catch up within wait (after ovsdb-server restarts it can miss what
// other clients wrote meanwhile, and a convergence from it would undo
// their work) gives nil, for the caller to read the database instead.
func (c *Client) ReadAllCaughtUp(ctx context.Context, wait time.Duration) (*Topology, error) {
	bs, err := Select[vswitchd.Bridge](ctx, c, nil, "name", "external_ids")
	if err != nil {
		return nil, err
	}
	want := map[string]int{}
	for _, b := range bs {
		want[b.Name], _ = strconv.Atoi(b.ExternalIDs[KeyGen])
	}
	for end := time.Now().Add(wait); ; time.Sleep(5 * time.Millisecond) {
		topo, err := c.ReadAll(ctx)
		if err == nil && caughtUp(topo, want) {
			return topo, nil
		}
		if time.Now().After(end) {
			return nil, err
		}
	}
}

func caughtUp(topo *Topology, want map[string]int) bool {
	if len(topo.Bridges) != len(want) {
		return false
	}
	for _, b := range topo.Bridges {
		g, ok := want[b.Name]
		have, _ := strconv.Atoi(b.ExternalIDs[KeyGen])
		if !ok || have < g {
			return false
		}
	}
	return true
}

// ReadAllFresh reads the whole topology in one transaction, whatever the
// cache holds (after a commit whose update may not have arrived yet).
func (c *Client) ReadAllFresh(ctx context.Context) (*Topology, error) {
	rs, err := c.Read(ctx,
		Query{Table: vswitchd.BridgeTable, Columns: []string{"_uuid", "name", "ports", "datapath_type", "external_ids", "other_config", "fail_mode", "protocols"}},
		Query{Table: vswitchd.PortTable, Columns: []string{"_uuid", "name", "interfaces", "tag", "external_ids"}},
		Query{Table: vswitchd.InterfaceTable, Columns: []string{"_uuid", "name", "type", "ofport", "ofport_request", "external_ids", "link_state", "error", "mac_in_use", "mtu"}},
	)
	if err != nil {
		return nil, err
	}
	t := &Topology{Ports: map[string]vswitchd.Port{}, Interfaces: map[string]vswitchd.Interface{}}
	if t.Bridges, err = Decode[vswitchd.Bridge](c, rs[0]); err != nil {
		return nil, err
	}
	ps, err := Decode[vswitchd.Port](c, rs[1])
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		t.Ports[p.UUID] = p
	}
	is, err := Decode[vswitchd.Interface](c, rs[2])
	if err != nil {
		return nil, err
	}
	for _, i := range is {
		t.Interfaces[i.UUID] = i
	}
	return t, nil
}

func (c *Client) cachedTopology() *Topology {
	t := &Topology{Ports: map[string]vswitchd.Port{}, Interfaces: map[string]vswitchd.Interface{}}
	tc := c.Cache()
	for _, m := range tc.Table(vswitchd.BridgeTable).RowsShallow() {
		t.Bridges = append(t.Bridges, *m.(*vswitchd.Bridge))
	}
	// The same order (by name) from one run to the next.
	sort.Slice(t.Bridges, func(i, j int) bool { return t.Bridges[i].Name < t.Bridges[j].Name })
	for u, m := range tc.Table(vswitchd.PortTable).RowsShallow() {
		t.Ports[u] = *m.(*vswitchd.Port)
	}
	for u, m := range tc.Table(vswitchd.InterfaceTable).RowsShallow() {
		t.Interfaces[u] = *m.(*vswitchd.Interface)
	}
	return t
}

// BridgeInterfaces returns the interfaces on bridge b, each with its port.
// A convergence run asks for them five times (flows, ports, NAT, garbage
// collection, gauges): they are gathered once per topology (at 1,000 ports
// ~8 ms of every run went to gathering them again), so callers must not
// change the slices.
func (t *Topology) BridgeInterfaces(b *vswitchd.Bridge) (ifs []vswitchd.Interface, ports []vswitchd.Port) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.members[b.UUID]; ok {
		return m.ifs, m.ports
	}
	ifs, ports = make([]vswitchd.Interface, 0, len(b.Ports)), make([]vswitchd.Port, 0, len(b.Ports))
	for _, pu := range b.Ports {
		p, ok := t.Ports[pu]
		if !ok {
			continue
		}
		for _, iu := range p.Interfaces {
			if i, ok := t.Interfaces[iu]; ok {
				ifs, ports = append(ifs, i), append(ports, p)
			}
		}
	}
	if b.UUID != "" {
		if t.members == nil {
			t.members = map[string]members{}
		}
		t.members[b.UUID] = members{ifs, ports}
	}
	return ifs, ports
}

// Bridge returns the bridge named name, or nil.
func (t *Topology) Bridge(name string) *vswitchd.Bridge {
	for i := range t.Bridges {
		if t.Bridges[i].Name == name {
			return &t.Bridges[i]
		}
	}
	return nil
}

// WaitOfport blocks (server-side, no polling) until ovs-vswitchd has added
// the interface to its datapath and written its OpenFlow port number, then
// returns it. An interface ovs-vswitchd could not add gets -1 and its error.
func (c *Client) WaitOfport(ctx context.Context, name string, timeout time.Duration) (int, error) {
	ns, err := c.WaitOfports(ctx, []string{name}, timeout)
	if err != nil {
		return 0, err
	}
	return ns[0], nil
}

// WaitOfports is WaitOfport for many interfaces in one transaction: one
// round trip however many there are.
func (c *Client) WaitOfports(ctx context.Context, names []string, timeout time.Duration) ([]int, error) {
	ms := int(timeout / time.Millisecond)
	empty, _ := ovsdb.NewOvsSet([]int{})
	var ops []ovsdb.Operation
	for _, name := range names {
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationWait, Table: vswitchd.InterfaceTable, Where: []ovsdb.Condition{NameIs(name)},
			Columns: []string{"ofport"}, Until: string(ovsdb.WaitConditionNotEqual), Rows: []ovsdb.Row{{"ofport": empty}}, Timeout: &ms})
	}
	for _, name := range names {
		ops = append(ops, Query{Table: vswitchd.InterfaceTable, Where: []ovsdb.Condition{NameIs(name)}, Columns: []string{"name", "ofport", "error"}}.Op())
	}
	res, err := c.transact(ctx, ops)
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("%w: ovs-vswitchd did not add %s within %s: is ovs-vswitchd running? (ovs-appctl version)", ErrNotAdded, plural(names, "interface"), timeout)
	}
	if err != nil {
		return nil, err
	}
	ofports := make([]int, len(names))
	for k, name := range names {
		ifs, err := Decode[vswitchd.Interface](c, res[len(names)+k].Rows)
		if err != nil || len(ifs) == 0 {
			return nil, fmt.Errorf("interface %s vanished while waiting for ovs-vswitchd: %v", name, err)
		}
		i := ifs[0]
		if i.Ofport == nil || *i.Ofport <= 0 {
			msg := "unknown error"
			if i.Error != nil {
				msg = *i.Error
			}
			return nil, fmt.Errorf("ovs-vswitchd could not add interface %s: %s", name, msg)
		}
		ofports[k] = *i.Ofport
	}
	return ofports, nil
}

// ErrNotAdded is WaitOfports' timeout.
var ErrNotAdded = errors.New("interfaces not added in time")

// WaitNumbered waits for ovs-vswitchd to number the named interfaces for
// as long as it makes progress (ports numbered, or ovs-vswitchd busy on
// the CPU for a tenth of each step): it adds a batch in one pass whose
// length grows with the batch and with the ports already there (on the
// userspace datapath it reconfigures the datapath per port: 1,000 ports
// took it 6 s on an empty bridge and over a minute beside 4,000 here), so
// no fixed bound fits. It returns the numbers in order.
func (c *Client) WaitNumbered(ctx context.Context, names []string, step time.Duration) ([]int, error) {
	seen, busy := 0, VswitchdCPU()
	for {
		ofports, err := c.WaitOfports(ctx, names, step)
		if !errors.Is(err, ErrNotAdded) {
			return ofports, err
		}
		n, cerr := c.CountOfports(ctx, names)
		b := VswitchdCPU()
		if cerr != nil || (n <= seen && (busy < 0 || b-busy < step/10)) {
			return nil, err
		}
		seen, busy = n, b
	}
}

// CountOfports says how many of the named interfaces have a port number.
func (c *Client) CountOfports(ctx context.Context, names []string) (int, error) {
	var qs []Query
	for _, name := range names {
		qs = append(qs, Query{Table: vswitchd.InterfaceTable, Where: []ovsdb.Condition{NameIs(name)}, Columns: []string{"ofport"}})
	}
	rs, err := c.Read(ctx, qs...)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rs {
		ifs, err := Decode[vswitchd.Interface](c, r)
		if err != nil {
			return 0, err
		}
		for _, i := range ifs {
			if i.Ofport != nil && *i.Ofport > 0 {
				n++
			}
		}
	}
	return n, nil
}

func plural(names []string, what string) string {
	if len(names) == 1 {
		return what + " " + names[0]
	}
	return fmt.Sprintf("%d %ss", len(names), what)
}

// RootOtherConfig reads the root row's other_config.
func (c *Client) RootOtherConfig(ctx context.Context) (map[string]string, error) {
	return c.rootMap(ctx, "other_config", func(o *vswitchd.OpenvSwitch) map[string]string { return o.OtherConfig })
}

// RootExternalIDs is the Open_vSwitch row's external_ids.
func (c *Client) RootExternalIDs(ctx context.Context) (map[string]string, error) {
	return c.rootMap(ctx, "external_ids", func(o *vswitchd.OpenvSwitch) map[string]string { return o.ExternalIDs })
}

// rootMap reads map column of the root row (got picks it), never nil.
func (c *Client) rootMap(ctx context.Context, column string, got func(*vswitchd.OpenvSwitch) map[string]string) (map[string]string, error) {
	rs, err := Select[vswitchd.OpenvSwitch](ctx, c, nil, "_uuid", column)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("the OVS database has no Open_vSwitch row: run ovs-vsctl init")
	}
	if m := got(&rs[0]); m != nil {
		return m, nil
	}
	return map[string]string{}, nil
}

// ExternalIDsOf is a raw row's external_ids column (as Read returns rows).
func ExternalIDsOf(r ovsdb.Row) map[string]string {
	out := map[string]string{}
	if m, ok := r["external_ids"].(ovsdb.OvsMap); ok {
		for k, v := range m.GoMap {
			out[fmt.Sprint(k)] = fmt.Sprint(v)
		}
	}
	return out
}
