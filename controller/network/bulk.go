package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/ipam"
)

// bulkWorkers bounds the goroutines doing per-container kernel work (netns
// handles, veth creation, addresses) in a bulk attach. The kernel
// serializes most of it under its RTNL lock: 1 to 16 workers measured within
// noise of each other on 2 cores (OVSNET_BULK_WORKERS overrides, for such
// measurements).
var bulkWorkers = envInt("OVSNET_BULK_WORKERS", 8)

// AddPorts attaches many containers to one bridge in one go: the checks and
// allocations from one read of the bridge, one OVSDB transaction for every
// port, one wait on ovs-vswitchd, one flow bundle, and the per-container
// kernel work spread over a few goroutines. It is all or nothing: on any
// failure every port, link and address it made is removed again.
// Publishing (-p) is not part of a bulk attach: publish afterwards.
func (h *Host) AddPorts(ctx context.Context, bridge string, specs []PortOptions) ([]*PortView, error) {
	for i, o := range specs {
		if len(o.Publish) > 0 {
			return nil, fmt.Errorf("line %d: -p is not supported by add-ports: publish afterwards with `ovsnet publish`", i+1)
		}
	}
	n, err := h.Network(ctx, bridge)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	return h.attachPorts(ctx, n, specs, true)
}

// dbNumberer waits on the host's OVSDB (WaitNumbered) for the numbers
// ovs-vswitchd gives new ports.
type dbNumberer struct{ h *Host }

func (d dbNumberer) WaitOfports(ctx context.Context, names []string) ([]int, error) {
	return d.h.DB.WaitNumbered(ctx, names, LinkTimeout)
}

// scanAllocator allocates for many interfaces from one read of the bridge
// and its ports: checks and allocations all at once.
type scanAllocator struct{ bridgeNet }

// Check has nothing to do before the containers are resolved: allocate
// reads the bridge once for the checks and the allocations.
func (scanAllocator) Check(context.Context, *AttachRun) error { return nil }

// Allocate reads the bridge and its ports once and works out every item's
// addresses, port number, type, MTU and MAC, returning the bridge
// external_ids the guarded commit must write.
func (scanAllocator) Allocate(ctx context.Context, r *AttachRun, _ bool) (map[string]string, error) {
	h, bridge, items := r.h, r.bridge, r.items
	snap, err := h.DB.ReadBridge(ctx, bridge, intent.OfBridge(bridge))
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, NoBridge(bridge)
	}
	br := &snap.Bridge
	if err := r.setBridge(br); err != nil {
		return nil, err
	}
	in, err := alloc.Scan(ctx, h.DB, snap)
	if err != nil {
		return nil, err
	}
	taken, attached, names, used, macs := in.Ofports, in.Attached, in.Names, in.Addrs, in.MACs
	next := r.bi.NextOfport
	if next <= 0 {
		next = 1
	}
	hints := map[bool]netip.Addr{} // by Is4: the next address to probe
	tso := sync.OnceValue(func() bool { return r.h.Devices.BridgeTSO(bridge) })
	for n, it := range items {
		subs, _, err := it.rq.checkOn(r.bi)
		if err != nil {
			return nil, r.itemErr(n, it.o, err)
		}
		if name, ok := attached[it.o.Container+"\x00"+it.o.Iface]; ok {
			return nil, fmt.Errorf("port already attached for CONTAINER=%s and INTERFACE=%s (OVS port %s): remove it with `ovsnet del-port %s %s %s`", it.o.Container, it.o.Iface, name, bridge, it.o.Iface, it.o.Container)
		}
		if pooled, inUse := names[it.host]; pooled {
			it.host = poolPortName(bridge) // a port back in the pool holds it
		} else if inUse {
			return nil, fmt.Errorf("OVS port %s already exists but is not %s:%s's: remove it (ovs-vsctl del-port %s) or choose another INTERFACE", it.host, it.o.Container, it.o.Iface, it.host)
		}
		it.addrs = nil
		for _, r := range it.rq.requested {
			p, err := ipam.Validate(r, subs, nil)
			if err != nil {
				return nil, err
			}
			if used[p.Addr()] {
				return nil, fmt.Errorf("%s (line %d) is already taken", p.Addr(), n+1)
			}
			used[p.Addr()] = true
			it.addrs = append(it.addrs, p)
		}
		if it.rq.auto {
			more, err := alloc.Auto(it.addrs, subs, alloc.AutoFrom{Used: used, Hints: hints, Bridge: r.bi.Hints})
			if err != nil {
				return nil, err
			}
			it.addrs = append(it.addrs, more...)
		}
		for taken[next] {
			next++
		}
		if next >= mesh.OfportBase {
			return nil, fmt.Errorf("bridge %s: no OpenFlow port numbers left", bridge)
		}
		it.ofport = next
		taken[next] = true
		if mac := it.rq.mac; mac != nil {
			if err := macFree(br, mac, macs[mac.String()]); err != nil {
				return nil, r.itemErr(n, it.o, err)
			}
		}
		r.fill(it, subs, it.rq.mac, tso)
		macs[it.port.MAC.String()] = it.o.Container + "/" + it.o.Iface
	}
	a := intent.Alloc{NextOfport: next + 1}
	for _, h := range hints {
		a.Hints = append(a.Hints, h)
	}
	return a.Encode(), nil
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return def
}
