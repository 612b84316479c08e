package ovsdb

import (
	"cmp"
	"fmt"

	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Verbs below return operations; callers put the ones they need into one
// transaction and run it with Client.Commit.

func row(kv map[string]interface{}) ovsdb.Row { return ovsdb.Row(kv) }

func ovsMap(kv map[string]string) ovsdb.OvsMap {
	m, _ := ovsdb.NewOvsMap(kv)
	return m
}

func uuidSet(named bool, ids ...string) ovsdb.OvsSet {
	us := make([]ovsdb.UUID, len(ids))
	for i, id := range ids {
		us[i] = ovsdb.UUID{GoUUID: id}
	}
	s, _ := ovsdb.NewOvsSet(us)
	return s
}

// BridgeSpec is what CreateBridge makes.
type BridgeSpec struct {
	Name        string
	MAC         string // other_config:hwaddr: a fixed gateway MAC (OVS would otherwise follow its ports')
	Datapath    string // "system" or "netdev"
	ExternalIDs map[string]string
	MTU         int    // of the bridge's internal port; 0 leaves the default
	FailMode    string // "" : FailMode (secure)
}

// CreateBridge inserts a bridge with its LOCAL internal port of the same name
// (as ovs-vsctl add-br does) and links it from the root row.
func CreateBridge(s BridgeSpec) []ovsdb.Operation {
	const ifID, portID, brID = "ovsnet_br_iface", "ovsnet_br_port", "ovsnet_br"
	iface := map[string]interface{}{"name": s.Name, "type": "internal"}
	if s.MTU > 0 {
		iface["mtu_request"] = ovsSetInt(s.MTU)
	}
	return []ovsdb.Operation{
		{Op: ovsdb.OperationInsert, Table: vswitchd.InterfaceTable, UUIDName: ifID, Row: row(iface)},
		{Op: ovsdb.OperationInsert, Table: vswitchd.PortTable, UUIDName: portID, Row: row(map[string]interface{}{
			"name": s.Name, "interfaces": uuidSet(true, ifID)})},
		{Op: ovsdb.OperationInsert, Table: vswitchd.BridgeTable, UUIDName: brID, Row: row(map[string]interface{}{
			"name": s.Name, "ports": uuidSet(true, portID), "datapath_type": s.Datapath,
			"external_ids": ovsMap(s.ExternalIDs), "fail_mode": cmp.Or(s.FailMode, FailMode), "protocols": protocolSet(),
			"other_config": ovsMap(map[string]string{"hwaddr": s.MAC})})},
		{Op: ovsdb.OperationMutate, Table: vswitchd.OpenvSwitchTable, Where: []ovsdb.Condition{allRows()},
			Mutations: []ovsdb.Mutation{{Column: "bridges", Mutator: ovsdb.MutateOperationInsert, Value: uuidSet(true, brID)}}},
	}
}

// Bridges ovsnet makes run in fail_mode=secure (no learning-switch fallback
// while flows are missing, e.g. right after ovs-vswitchd restarts) and speak
// OpenFlow 1.4 for bundles (1.0 too, for ovs-ofctl's default).
var (
	FailMode  = vswitchd.BridgeFailModeSecure
	Protocols = []string{vswitchd.BridgeProtocolsOpenflow10, vswitchd.BridgeProtocolsOpenflow13, vswitchd.BridgeProtocolsOpenflow14}
)

func protocolSet() ovsdb.OvsSet {
	s, _ := ovsdb.NewOvsSet(Protocols)
	return s
}

// SetBridgeOpenFlow puts an existing bridge in ovsnet's fail mode and
// protocols.
func SetBridgeOpenFlow(bridge string) []ovsdb.Operation {
	return []ovsdb.Operation{{Op: ovsdb.OperationUpdate, Table: vswitchd.BridgeTable, Where: []ovsdb.Condition{NameIs(bridge)},
		Row: row(map[string]interface{}{"fail_mode": FailMode, "protocols": protocolSet()})}}
}

// DeleteBridge unlinks the bridge from the root row; OVSDB garbage-collects
// the bridge, its ports and their interfaces.
func DeleteBridge(uuid string) []ovsdb.Operation {
	return []ovsdb.Operation{{Op: ovsdb.OperationMutate, Table: vswitchd.OpenvSwitchTable, Where: []ovsdb.Condition{allRows()},
		Mutations: []ovsdb.Mutation{{Column: "bridges", Mutator: ovsdb.MutateOperationDelete, Value: uuidSet(false, uuid)}}}}
}

// GuardBridge makes the transaction fail with ErrConflict unless the
// bridge's external_ids are still exactly ext (as read), then bumps the
// generation key, deletes the keys in del and sets the keys in set. Every
// change of a bridge's ports carries it, so two writers that read the same
// allocation state (free addresses, OpenFlow port numbers, hints) cannot
// both commit.
func GuardBridge(bridge string, ext, set map[string]string, del ...string) []ovsdb.Operation {
	return guardRow(vswitchd.BridgeTable, []ovsdb.Condition{NameIs(bridge)}, ext, set, del)
}

// GuardRootOtherConfig serializes host-wide reservations (published host
// ports): it fails with ErrConflict unless the root row's other_config is
// still oc, and bumps ovsnet's generation there. other_config is a small
// map; the reservations themselves live on the interfaces and are probed.
func GuardRootOtherConfig(oc map[string]string) []ovsdb.Operation {
	zero := 0
	var n int
	fmt.Sscan(oc[KeyGen], &n)
	ks, _ := ovsdb.NewOvsSet([]string{KeyGen})
	return []ovsdb.Operation{
		{Op: ovsdb.OperationWait, Table: vswitchd.OpenvSwitchTable, Where: []ovsdb.Condition{allRows()}, Timeout: &zero,
			Columns: []string{"other_config"}, Until: string(ovsdb.WaitConditionEqual), Rows: []ovsdb.Row{row(map[string]interface{}{"other_config": ovsMap(oc)})}},
		{Op: ovsdb.OperationMutate, Table: vswitchd.OpenvSwitchTable, Where: []ovsdb.Condition{allRows()}, Mutations: []ovsdb.Mutation{
			{Column: "other_config", Mutator: ovsdb.MutateOperationDelete, Value: ks},
			{Column: "other_config", Mutator: ovsdb.MutateOperationInsert, Value: ovsMap(map[string]string{KeyGen: fmt.Sprint(n + 1)})},
		}},
	}
}

func guardRow(table string, where []ovsdb.Condition, ext, set map[string]string, del []string) []ovsdb.Operation {
	zero := 0
	var n int
	fmt.Sscan(ext[KeyGen], &n)
	kv := map[string]string{KeyGen: fmt.Sprint(n + 1)}
	for k, v := range set {
		kv[k] = v
	}
	keys := append([]string{}, del...)
	for k := range kv {
		keys = append(keys, k)
	}
	ks, _ := ovsdb.NewOvsSet(keys)
	return []ovsdb.Operation{
		{Op: ovsdb.OperationWait, Table: table, Where: where, Timeout: &zero,
			Columns: []string{"external_ids"}, Until: string(ovsdb.WaitConditionEqual), Rows: []ovsdb.Row{row(map[string]interface{}{"external_ids": ovsMap(ext)})}},
		// A map insert never overwrites: delete the keys, then insert them.
		{Op: ovsdb.OperationMutate, Table: table, Where: where, Mutations: []ovsdb.Mutation{
			{Column: "external_ids", Mutator: ovsdb.MutateOperationDelete, Value: ks},
			{Column: "external_ids", Mutator: ovsdb.MutateOperationInsert, Value: ovsMap(kv)},
		}},
	}
}

// SetInterfaceExternalIDs sets and deletes keys of one interface.
func SetInterfaceExternalIDs(uuid string, set map[string]string, del ...string) []ovsdb.Operation {
	return setExternalIDs(vswitchd.InterfaceTable, UUIDIs(uuid), set, del)
}

// SetBridgeExternalIDs sets and deletes keys of a bridge, unguarded (for
// keys no allocation depends on).
func SetBridgeExternalIDs(bridge string, set map[string]string, del ...string) []ovsdb.Operation {
	return setExternalIDs(vswitchd.BridgeTable, NameIs(bridge), set, del)
}

func setExternalIDs(table string, where ovsdb.Condition, set map[string]string, del []string) []ovsdb.Operation {
	keys := append([]string{}, del...)
	for k := range set {
		keys = append(keys, k)
	}
	ks, _ := ovsdb.NewOvsSet(keys)
	return []ovsdb.Operation{{Op: ovsdb.OperationMutate, Table: table, Where: []ovsdb.Condition{where},
		Mutations: []ovsdb.Mutation{
			{Column: "external_ids", Mutator: ovsdb.MutateOperationDelete, Value: ks},
			{Column: "external_ids", Mutator: ovsdb.MutateOperationInsert, Value: ovsMap(set)},
		}}}
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

// AddPorts inserts ports and mutate-inserts them into Bridge.ports (never
// rewriting the set, so concurrent writers do not undo each other).
func AddPorts(bridge string, ports ...PortSpec) []ovsdb.Operation {
	var ops []ovsdb.Operation
	var portIDs []string
	for i, p := range ports {
		ifID, portID := fmt.Sprintf("ovsnet_if%d", i), fmt.Sprintf("ovsnet_port%d", i)
		iface := map[string]interface{}{"name": p.Name, "external_ids": ovsMap(p.ExternalIDs)}
		if p.Type != "" {
			iface["type"] = p.Type
		}
		if p.OfportRequest > 0 {
			iface["ofport_request"] = ovsSetInt(p.OfportRequest)
		}
		if p.MTU > 0 {
			iface["mtu_request"] = ovsSetInt(p.MTU)
		}
		if len(p.Options) > 0 {
			iface["options"] = ovsMap(p.Options)
		}
		port := map[string]interface{}{"name": p.Name, "interfaces": uuidSet(true, ifID),
			"external_ids": ovsMap(p.PortIDs)}
		if p.VLAN > 0 {
			port["tag"] = ovsSetInt(p.VLAN)
		}
		ops = append(ops,
			ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vswitchd.InterfaceTable, UUIDName: ifID, Row: row(iface)},
			ovsdb.Operation{Op: ovsdb.OperationInsert, Table: vswitchd.PortTable, UUIDName: portID, Row: row(port)})
		portIDs = append(portIDs, portID)
	}
	ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationMutate, Table: vswitchd.BridgeTable, Where: []ovsdb.Condition{NameIs(bridge)},
		Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: uuidSet(true, portIDs...)}}})
	return ops
}

// DeletePorts removes ports (by UUID) from Bridge.ports; OVSDB then
// garbage-collects the Port and Interface rows.
func DeletePorts(bridge string, portUUIDs ...string) []ovsdb.Operation {
	if len(portUUIDs) == 0 {
		return nil
	}
	return []ovsdb.Operation{{Op: ovsdb.OperationMutate, Table: vswitchd.BridgeTable, Where: []ovsdb.Condition{NameIs(bridge)},
		Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationDelete, Value: uuidSet(false, portUUIDs...)}}}}
}

// SetVLAN sets (or, with vlan 0, clears) a port's access VLAN tag.
func SetVLAN(portUUID string, vlan int) []ovsdb.Operation {
	var tag interface{} = ovsSetInt(vlan)
	if vlan == 0 {
		tag, _ = ovsdb.NewOvsSet([]int{})
	}
	return []ovsdb.Operation{{Op: ovsdb.OperationUpdate, Table: vswitchd.PortTable, Where: []ovsdb.Condition{UUIDIs(portUUID)},
		Row: row(map[string]interface{}{"tag": tag})}}
}

func ovsSetInt(v int) ovsdb.OvsSet {
	s, _ := ovsdb.NewOvsSet([]int{v})
	return s
}
