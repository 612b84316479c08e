package ovsdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Tx is one transaction being built from typed rows through libovsdb's
// model API (Create, Where(...).Mutate, Update, Wait): the verbs below add
// its operations, Commit runs them as one checked transaction, and the
// rows it creates are found by the names the verbs return, not by their
// position among the operations.
type Tx struct {
	c   *Client
	ops []ovsdb.Operation
	n   int // rows named so far
	err error
}

// Tx starts a transaction.
func (c *Client) Tx() *Tx { return &Tx{c: c} }

// Empty says whether the transaction has no operations.
func (t *Tx) Empty() bool { return len(t.ops) == 0 && t.err == nil }

func (t *Tx) add(ops []ovsdb.Operation, err error) {
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("build OVSDB transaction: %w", err)
	}
	t.ops = append(t.ops, ops...)
}

// name is a fresh named UUID (identifier syntax: OVSDB refuses dashes).
func (t *Tx) name(what string) string {
	t.n++
	return "ovsnet_" + what + strconv.Itoa(t.n)
}

// Created are the UUIDs of the rows a committed transaction created, by
// the names its verbs returned.
type Created map[string]string

// UUID is the row named name's UUID ("" if it was not created).
func (c Created) UUID(name string) string { return c[name] }

// Commit runs the transaction and checks every operation's result (libovsdb
// reports per-operation failures only in the results). A guard that no
// longer holds is ErrConflict.
func (t *Tx) Commit(ctx context.Context) (Created, error) {
	if t.err != nil {
		return nil, t.err
	}
	if len(t.ops) == 0 {
		return Created{}, nil
	}
	res, err := t.c.transact(ctx, t.ops)
	if err != nil {
		return nil, err
	}
	created := Created{}
	for i, op := range t.ops {
		if op.UUIDName != "" && i < len(res) {
			created[op.UUIDName] = res[i].UUID.GoUUID
		}
	}
	return created, nil
}

// Run runs operations built with libovsdb's model API on a database
// other than Open_vSwitch (OVN's), as Commit does: one transaction, every
// result checked, a wait that did not hold ErrConflict.
func (c *Client) Run(ctx context.Context, ops []ovsdb.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	_, err := c.transact(ctx, ops)
	return err
}

// transact runs ops as one transaction and checks every operation's result.
func (c *Client) transact(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("OVSDB transaction: %w", err)
	}
	if opErrs, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		for _, oe := range opErrs {
			var we *ovsdb.TimedOut
			if errors.As(oe, &we) {
				return nil, ErrConflict
			}
		}
		if len(opErrs) > 0 {
			return nil, fmt.Errorf("OVSDB transaction: %w", opErrs[0])
		}
		return nil, fmt.Errorf("OVSDB transaction: %w", err)
	}
	return res, nil
}

// ErrConflict means a wait operation in the transaction failed: another writer
// took what this one meant to reserve. Re-read and retry.
var ErrConflict = errors.New("OVSDB transaction lost a race (a reservation was taken)")

// Bridges ovsnet makes run in fail_mode=secure (no learning-switch fallback
// while flows are missing, e.g. right after ovs-vswitchd restarts) and speak
// OpenFlow 1.4 for bundles (1.0 too, for ovs-ofctl's default).
var (
	FailMode  = vswitchd.BridgeFailModeSecure
	Protocols = []string{vswitchd.BridgeProtocolsOpenflow10, vswitchd.BridgeProtocolsOpenflow13, vswitchd.BridgeProtocolsOpenflow14}
)

// BridgeSpec is what CreateBridge makes.
type BridgeSpec struct {
	Name        string
	MAC         string // other_config:hwaddr: a fixed gateway MAC (OVS would otherwise follow its ports')
	Datapath    string // "system" or "netdev"
	ExternalIDs map[string]string
	MTU         int    // of the bridge's internal port; 0 leaves the default
	FailMode    string // "" : FailMode (secure)
}

// root is the condition on the one Open_vSwitch row.
func (t *Tx) root() (*vswitchd.OpenvSwitch, model.Condition) {
	o := &vswitchd.OpenvSwitch{}
	return o, model.Condition{Field: &o.UUID, Function: ovsdb.ConditionNotEqual, Value: "00000000-0000-0000-0000-000000000000"}
}

// CreateBridge inserts a bridge with its LOCAL internal port of the same
// name (as ovs-vsctl add-br does) and links it from the root row.
func (t *Tx) CreateBridge(s BridgeSpec) {
	iface := &vswitchd.Interface{UUID: t.name("if"), Name: s.Name, Type: "internal", MTURequest: optInt(s.MTU)}
	port := &vswitchd.Port{UUID: t.name("port"), Name: s.Name, Interfaces: []string{iface.UUID}}
	fm := cmp.Or(s.FailMode, FailMode)
	br := &vswitchd.Bridge{UUID: t.name("br"), Name: s.Name, Ports: []string{port.UUID}, DatapathType: s.Datapath,
		ExternalIDs: s.ExternalIDs, FailMode: &fm, Protocols: Protocols, OtherConfig: map[string]string{"hwaddr": s.MAC}}
	t.add(t.c.Create(iface, port, br))
	o, all := t.root()
	t.add(t.c.WhereAll(o, all).Mutate(o, model.Mutation{Field: &o.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}}))
}

// SetBridgeOpenFlow puts an existing bridge in ovsnet's fail mode and
// protocols.
func (t *Tx) SetBridgeOpenFlow(bridge string) {
	fm := FailMode
	br := &vswitchd.Bridge{Name: bridge, FailMode: &fm, Protocols: Protocols}
	t.add(t.c.Where(br).Update(br, &br.FailMode, &br.Protocols))
}

// DeleteBridge unlinks the bridge from the root row; OVSDB garbage-collects
// the bridge, its ports and their interfaces.
func (t *Tx) DeleteBridge(uuid string) {
	o, all := t.root()
	t.add(t.c.WhereAll(o, all).Mutate(o, model.Mutation{Field: &o.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{uuid}}))
}

// GuardBridge makes the transaction fail with ErrConflict unless the
// bridge's external_ids are still exactly ext (as read), then bumps the
// generation key, deletes the keys in del and sets the keys in set. Every
// change of a bridge's ports carries it, so two writers that read the same
// allocation state (free addresses, OpenFlow port numbers, hints) cannot
// both commit.
func (t *Tx) GuardBridge(bridge string, ext, set map[string]string, del ...string) {
	br := &vswitchd.Bridge{Name: bridge, ExternalIDs: ext}
	zero := 0
	t.add(t.c.Where(br).Wait(ovsdb.WaitConditionEqual, &zero, br, &br.ExternalIDs))
	t.setMap(br, &br.ExternalIDs, withGen(ext, set), del)
}

// SetRootExternalIDs sets and deletes keys of the Open_vSwitch row.
func (t *Tx) SetRootExternalIDs(set map[string]string, del ...string) {
	o, all := t.root()
	t.setMap(o, &o.ExternalIDs, set, del, all)
}

// GuardRootOtherConfig serializes host-wide reservations (published host
// ports): it fails with ErrConflict unless the root row's other_config is
// still oc, and bumps ovsnet's generation there. other_config is a small
// map; the reservations themselves live on the interfaces and are probed.
func (t *Tx) GuardRootOtherConfig(oc map[string]string) {
	o, all := t.root()
	o.OtherConfig = oc
	zero := 0
	t.add(t.c.WhereAll(o, all).Wait(ovsdb.WaitConditionEqual, &zero, o, &o.OtherConfig))
	t.setMap(o, &o.OtherConfig, withGen(oc, nil), nil, all)
}

// withGen is set plus the generation after the one in ext.
func withGen(ext, set map[string]string) map[string]string {
	n, _ := strconv.Atoi(ext[KeyGen])
	kv := map[string]string{KeyGen: strconv.Itoa(n + 1)}
	for k, v := range set {
		kv[k] = v
	}
	return kv
}

// setMap deletes the keys in del and in set from a map column of row m
// (selected by its index, or by where) and inserts set: a map insert never
// overwrites a key.
func (t *Tx) setMap(m model.Model, field *map[string]string, set map[string]string, del []string, where ...model.Condition) {
	keys := append([]string{}, del...)
	for k := range set {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return
	}
	ms := []model.Mutation{{Field: field, Mutator: ovsdb.MutateOperationDelete, Value: keys}}
	if len(set) > 0 {
		ms = append(ms, model.Mutation{Field: field, Mutator: ovsdb.MutateOperationInsert, Value: set})
	}
	if len(where) > 0 {
		t.add(t.c.WhereAll(m, where...).Mutate(m, ms...))
		return
	}
	t.add(t.c.Where(m).Mutate(m, ms...))
}

// SetInterfaceExternalIDs sets and deletes keys of one interface.
func (t *Tx) SetInterfaceExternalIDs(uuid string, set map[string]string, del ...string) {
	i := &vswitchd.Interface{UUID: uuid}
	t.setMap(i, &i.ExternalIDs, set, del)
}

// ClaimInterface replaces an interface's external_ids, was, by now, and
// makes the transaction fail with ErrConflict unless they are still was:
// of several writers that read the same row, one takes it.
func (t *Tx) ClaimInterface(uuid string, was, now map[string]string) {
	i := &vswitchd.Interface{UUID: uuid, ExternalIDs: was}
	zero := 0
	t.add(t.c.Where(i).Wait(ovsdb.WaitConditionEqual, &zero, i, &i.ExternalIDs))
	n := &vswitchd.Interface{UUID: uuid, ExternalIDs: now}
	t.add(t.c.Where(n).Update(n, &n.ExternalIDs))
}

// SetBridgeExternalIDs sets and deletes keys of a bridge, unguarded (for
// keys no allocation depends on).
func (t *Tx) SetBridgeExternalIDs(bridge string, set map[string]string, del ...string) {
	br := &vswitchd.Bridge{Name: bridge}
	t.setMap(br, &br.ExternalIDs, set, del)
}

// PortSpec is one port with one interface, as ovsnet attaches containers.
type PortSpec struct {
	Name          string // port and interface name (host side)
	Type          string // "" (system device, e.g. a veth end) or "internal"
	OfportRequest int
	VLAN          int               // 0: untagged
	MTU           int               // mtu_request; 0 leaves it alone
	ExternalIDs   map[string]string // the Interface row's
	PortIDs       map[string]string // the Port row's
	Options       map[string]string // tunnels: remote_ip, key, ...
}

// NewPort names the rows AddPorts creates for one PortSpec: their UUIDs
// once committed are Created.UUID(Interface) and Created.UUID(Port).
type NewPort struct{ Interface, Port string }

// AddPorts inserts ports and mutate-inserts them into Bridge.ports (never
// rewriting the set, so concurrent writers do not undo each other).
func (t *Tx) AddPorts(bridge string, ports ...PortSpec) []NewPort {
	var names []NewPort
	var ids []string
	for _, p := range ports {
		i := &vswitchd.Interface{UUID: t.name("if"), Name: p.Name, Type: p.Type, ExternalIDs: p.ExternalIDs, Options: p.Options,
			OfportRequest: optInt(p.OfportRequest), MTURequest: optInt(p.MTU)}
		pr := &vswitchd.Port{UUID: t.name("port"), Name: p.Name, Interfaces: []string{i.UUID}, ExternalIDs: p.PortIDs, Tag: optInt(p.VLAN)}
		t.add(t.c.Create(i, pr))
		names, ids = append(names, NewPort{Interface: i.UUID, Port: pr.UUID}), append(ids, pr.UUID)
	}
	br := &vswitchd.Bridge{Name: bridge}
	t.add(t.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: ids}))
	return names
}

// DeletePorts removes ports (by UUID) from Bridge.ports; OVSDB then
// garbage-collects the Port and Interface rows.
func (t *Tx) DeletePorts(bridge string, portUUIDs ...string) {
	if len(portUUIDs) == 0 {
		return
	}
	br := &vswitchd.Bridge{Name: bridge}
	t.add(t.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: portUUIDs}))
}

// SetVLAN sets (or, with vlan 0, clears) a port's access VLAN tag.
func (t *Tx) SetVLAN(portUUID string, vlan int) {
	p := &vswitchd.Port{UUID: portUUID, Tag: optInt(vlan)}
	t.add(t.c.Where(p).Update(p, &p.Tag))
}

// optInt is an optional integer column: nil for 0 (unset).
func optInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

// Do builds a transaction with build and commits it.
func (c *Client) Do(ctx context.Context, build func(*Tx)) (Created, error) {
	t := c.Tx()
	build(t)
	return t.Commit(ctx)
}

// MirrorSpec is one Mirror row: what it selects (ports by UUID: packets
// they receive, and packets sent to them) and the port it copies them to.
type MirrorSpec struct {
	Name        string
	Select      []string // port UUIDs (or names the transaction returned)
	All         bool     // every port instead
	Output      string   // port UUID (or name)
	ExternalIDs map[string]string
}

func (m MirrorSpec) row(uuid string) *vswitchd.Mirror {
	out := m.Output
	return &vswitchd.Mirror{UUID: uuid, Name: m.Name, SelectSrcPort: m.Select, SelectDstPort: m.Select, SelectAll: m.All,
		OutputPort: &out, ExternalIDs: m.ExternalIDs}
}

// AddMirror inserts a mirror and mutate-inserts it into Bridge.mirrors; it
// returns the mirror's name in the transaction.
func (t *Tx) AddMirror(bridge string, m MirrorSpec) string {
	row := m.row(t.name("mirror"))
	t.add(t.c.Create(row))
	br := &vswitchd.Bridge{Name: bridge}
	t.add(t.c.Where(br).Mutate(br, model.Mutation{Field: &br.Mirrors, Mutator: ovsdb.MutateOperationInsert, Value: []string{row.UUID}}))
	return row.UUID
}

// UpdateMirror sets mirror uuid's selection and output to m's.
func (t *Tx) UpdateMirror(uuid string, m MirrorSpec) {
	row := m.row(uuid)
	t.add(t.c.Where(row).Update(row, &row.SelectSrcPort, &row.SelectDstPort, &row.SelectAll, &row.OutputPort))
}

// DeleteMirrors removes mirrors (by UUID) from Bridge.mirrors; OVSDB then
// garbage-collects their rows.
func (t *Tx) DeleteMirrors(bridge string, uuids ...string) {
	if len(uuids) == 0 {
		return
	}
	br := &vswitchd.Bridge{Name: bridge}
	t.add(t.c.Where(br).Mutate(br, model.Mutation{Field: &br.Mirrors, Mutator: ovsdb.MutateOperationDelete, Value: uuids}))
}

// BumpNextCfg asks ovs-vswitchd to report when it has applied the
// transaction: it sets cur_cfg to next_cfg once it has (WaitApplied).
func (t *Tx) BumpNextCfg() {
	o, all := t.root()
	t.add(t.c.WhereAll(o, all).Mutate(o, model.Mutation{Field: &o.NextCfg, Mutator: ovsdb.MutateOperationAdd, Value: 1}))
}

// WaitApplied returns once ovs-vswitchd has applied every transaction that
// bumped next_cfg (BumpNextCfg) before it: cur_cfg has caught up with
// next_cfg, as ovs-vsctl waits.
func (c *Client) WaitApplied(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		rs, err := Select[vswitchd.OpenvSwitch](ctx, c, nil, "cur_cfg", "next_cfg")
		if err == nil && len(rs) > 0 && rs[0].CurCfg >= rs[0].NextCfg {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovs-vswitchd did not apply the change within %s (is it running?): %w", timeout, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// SetInterfaceKey sets key in interface uuid's external_ids to value, or
// removes it when value is "" (a setting cleared).
func (c *Client) SetInterfaceKey(ctx context.Context, uuid, key, value string) error {
	_, err := c.Do(ctx, func(tx *Tx) {
		if value == "" {
			tx.SetInterfaceExternalIDs(uuid, nil, key)
		} else {
			tx.SetInterfaceExternalIDs(uuid, map[string]string{key: value})
		}
	})
	return err
}
