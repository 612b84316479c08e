package network

import (
	"context"
	"errors"
	"fmt"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// probeAllocator allocates for one interface by probes: O(1) rows read
// whatever the bridge's size.
type probeAllocator struct{ bridgeNet }

// Check reads, in one transaction, the bridge, an existing attach of this
// container interface, a port already holding the name ovsnet would use
// and, with --macaddress, a port holding that MAC; and checks the request
// against the bridge's settings.
func (probeAllocator) Check(ctx context.Context, r *AttachRun) error {
	it := r.items[0]
	o := it.o
	qs := []ovsdb.Query{
		{Table: vswitchd.BridgeTable, Where: []ovsdbops.Condition{ovsdb.NameIs(o.Bridge)},
			Columns: []string{"_uuid", "name", "datapath_type", "external_ids", "other_config"}},
		{Table: vswitchd.InterfaceTable, Columns: []string{"name"},
			Where: []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.OfContainer(o.Container, o.Iface))}},
		{Table: vswitchd.InterfaceTable, Where: []ovsdbops.Condition{ovsdb.NameIs(it.host)}, Columns: []string{"name", "external_ids"}},
	}
	if it.rq.mac != nil {
		qs = append(qs, alloc.MACProbe(o.Bridge, it.rq.mac))
	}
	rs, err := r.h.DB.Read(ctx, qs...)
	if err != nil {
		return err
	}
	r.tr.Step("read bridge")
	brs, err := ovsdb.Decode[vswitchd.Bridge](r.h.DB, rs[0])
	if err != nil {
		return err
	}
	if len(brs) == 0 {
		return NoBridge(o.Bridge) // deleted since the network was resolved
	}
	if err := r.setBridge(&brs[0]); err != nil {
		return err
	}
	if r.subnets, r.nb, err = it.rq.checkOn(r.bi); err != nil {
		return err
	}
	if len(rs[1]) > 0 {
		return fmt.Errorf("port already attached for CONTAINER=%s and INTERFACE=%s (OVS port %v): remove it with `ovsnet del-port BRIDGE %s %s`", o.Container, o.Iface, rs[1][0]["name"], o.Iface, o.Container)
	}
	if len(rs[2]) > 0 && isPoolRow(rs[2][0]) {
		it.host = poolPortName(o.Bridge) // a port back in the pool holds it
	} else if len(rs[2]) > 0 {
		return fmt.Errorf("OVS port %s already exists but is not %s:%s's: remove it (ovs-vsctl del-port %s) or choose another INTERFACE", it.host, o.Container, o.Iface, it.host)
	}
	if it.rq.mac != nil {
		return macFree(r.br, it.rq.mac, alloc.Owner(rs[3]))
	}
	return nil
}

// isPoolRow says whether an Interface row is a warm pool's port's.
func isPoolRow(row ovsdbops.Row) bool {
	return intent.RefOf(ovsdb.ExternalIDsOf(row)).IsPool()
}

// Allocate probes for the interface's addresses and port number, from a
// fresh read of the bridge after a lost write conflict.
func (probeAllocator) Allocate(ctx context.Context, r *AttachRun, again bool) (map[string]string, error) {
	it := r.items[0]
	if again {
		br, err := r.h.DB.GetBridge(ctx, r.bridge)
		if err == nil && br == nil {
			err = NoBridge(r.bridge)
		}
		if err != nil {
			return nil, err
		}
		if err := r.setBridge(br); err != nil {
			return nil, err
		}
	}
	cl, err := alloc.Probe(ctx, r.h.DB, r.bi, r.subnets, it.rq.requested, it.rq.auto)
	if errors.Is(err, alloc.ErrBridgeGone) {
		return nil, NoBridge(r.bridge)
	}
	if err != nil {
		return nil, err
	}
	it.addrs, it.ofport = cl.Addrs, cl.Ofport
	r.fill(it, r.subnets, it.rq.mac, func() bool { return r.h.Devices.BridgeTSO(r.bridge) })
	return cl.Alloc().Encode(), nil
}
