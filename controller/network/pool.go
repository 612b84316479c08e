package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// The warm pool: ports made ahead of the attaches that take them, so that
// an attach does not wait on ovs-vswitchd (whose main loop slows with
// every port it polls). A pool's port is attached like any other by the
// engine (FillPool: its row, its address and MAC, its port number, its
// flows), with no container: an internal port's tap, or a veth's
// container end (attach.PoolPeer), waits down in the host, so nothing
// sent to it reaches a stack. An attach with nothing but automatic
// addressing takes one (takeFromPool): one guarded OVSDB transaction
// gives the row its container (marked attaching, as any attach), the
// link moves into the container and is configured there, the row is
// marked ready. The controller refills (package pool).

// poolPortName is a fresh name for a pool's port: ovsnet's host-side
// form ("on" + 12 hex digits) of a random token.
func poolPortName(bridge string) string {
	var b [8]byte
	rand.Read(b[:])
	return attach.HostName(bridge, "\x00pool", hex.EncodeToString(b[:]))
}

// poolable says whether the run's one interface may come from the pool:
// a pool runs, and the request asks nothing a pool's port was not made
// with (a MAC, gateway, MTU or VLAN of its own; addresses either all
// automatic or all given, and then a pool's port must hold just those)
// and names a container with no links on the bridge (their flows would
// have to go in with it).
func (r *AttachRun) poolable() bool {
	if r.h.Pool == nil || r.h.Pool.Size == 0 || len(r.items) != 1 || r.lines {
		return false
	}
	it := r.items[0]
	o, rq := it.o, it.rq
	if o.Pooled || rq.auto == (len(rq.requested) > 0) || rq.mac != nil || rq.gateway.IsValid() || o.MTU != 0 || o.VLAN != 0 || o.FloodPPS != nil || !it.rate.IsZero() {
		return false
	}
	for _, l := range r.bi.Links {
		if l.Src == o.Container || l.Dst == o.Container {
			return false
		}
	}
	return slices.Contains(r.h.Pool.TypesFor(datapath.Of(r.br), r.bi.Docker.ID != ""), r.itemType(it))
}

// itemType is the port type an item asks for, or its bridge's default.
func (r *AttachRun) itemType(it *AttachItem) string {
	if it.o.Type != "" {
		return it.o.Type
	}
	return datapath.DefaultType(datapath.Of(r.br))
}

// takeFromPool attaches the run's one interface with a pool's port, if
// the pool has one ready: nil, nil when it has none (the engine then
// attaches as usual). A failure once a port was claimed removes that port.
func (r *AttachRun) takeFromPool(ctx context.Context) (*PortView, error) {
	it := r.items[0]
	ifc, err := r.claimPooled(ctx, it)
	if ifc == nil || err != nil {
		return nil, err
	}
	defer r.h.Pool.Release(ifc.UUID)
	defer r.h.Pool.Wake() // the refill after the take: not competing with its move
	r.tr.Step("take a pool's port")
	err = r.moveInto(it)
	r.tr.Step("move into the container")
	if err == nil {
		err = r.publish(ctx)
	}
	if err == nil {
		err = r.markReady(ctx)
	}
	if err != nil {
		return nil, r.dropTaken(it, err)
	}
	p := portView(it.port, it.host, it.ofport, 0)
	return &p, nil
}

// claimPooled gives a ready pool's port of the item's type to the item in
// one transaction guarded as any attach's (the bridge's generation: no
// other attach of the same container interface got in since it was
// checked) and by the row being still as read: the item then holds the
// port's name, number and intent, marked attaching. nil when no pool's
// port is left, or when claims lost every race to other writers of the
// bridge: the item is then as it was, for the engine to attach a fresh
// port. This process's claims on one bridge go one at a time (each is two
// OVSDB round trips), since concurrent ones would only conflict.
func (r *AttachRun) claimPooled(ctx context.Context, it *AttachItem) (*vswitchd.Interface, error) {
	defer r.h.Pool.Claiming(r.bridge)()
	before := *it
	for attempt := 0; attempt < poolClaimAttempts; attempt++ {
		if attempt > 0 {
			time.Sleep(ovsdb.Backoff(attempt - 1))
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
		ifc, hints, err := r.pickPooled(ctx, it)
		if ifc == nil || err != nil {
			return nil, err
		}
		tx := r.h.DB.Tx()
		tx.GuardBridge(r.bridge, r.br.ExternalIDs, hints)
		tx.ClaimInterface(ifc.UUID, ifc.ExternalIDs, it.port.Encode())
		_, err = tx.Commit(ctx)
		if err == nil {
			it.ifaceUUID = ifc.UUID
			return ifc, nil
		}
		r.h.Pool.Release(ifc.UUID)
		*it = before // not this port's: a fresh attach must not take its name
		if !errors.Is(err, ovsdb.ErrConflict) {
			return nil, r.commitErr(err)
		}
		if err := r.alreadyAttached(ctx, it); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// poolClaimAttempts bounds the claims of one attach that lose to other
// writers of the bridge before it attaches a fresh port instead.
const poolClaimAttempts = 5

// pickPooled reserves the ready pool's port of the item's type holding
// the lowest addresses and gives the item its name, number and intent
// (the pool's, with the container's names), with the bridge hints its
// claim records; nil if there is none, or if an address below it may be
// free (a container's, freed since): addresses go lowest first, so a
// fresh attach takes that one.
func (r *AttachRun) pickPooled(ctx context.Context, it *AttachItem) (*vswitchd.Interface, map[string]string, error) {
	rows, err := ovsdb.Select[vswitchd.Interface](ctx, r.h.DB, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.OfPool(r.bridge, r.itemType(it)))},
		"_uuid", "name", "type", "ofport", "external_ids") // not statistics and status: their decoding was most of a take's read
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(rows, func(x, y vswitchd.Interface) int {
		return intent.LowestHeld(x.ExternalIDs).Compare(intent.LowestHeld(y.ExternalIDs))
	})
	for i := range rows {
		ifc := &rows[i]
		if ifc.Ofport == nil || *ifc.Ofport <= 0 || !holdsJust(ifc.ExternalIDs, it.rq.requested) || !servesFrom(ifc.ExternalIDs, it) || !r.h.Pool.Reserve(ifc.UUID) {
			continue
		}
		pi, err := intent.DecodePort(IfaceRow(*ifc), ifc.ExternalIDs)
		if err != nil || pi.State != intent.StateReady {
			r.h.Pool.Release(ifc.UUID)
			continue
		}
		var set map[string]string
		if it.rq.auto {
			ok := false
			if set, ok, err = alloc.NoneFreeBelow(ctx, r.h.DB, r.bi, r.bi.Subnets, pi.Addrs); err != nil || !ok {
				r.h.Pool.Release(ifc.UUID)
				return nil, nil, err
			}
		}
		it.typ, it.host, it.ofport, it.addrs = pi.Type, ifc.Name, *ifc.Ofport, pi.Addrs
		it.port, it.waits = pi, pi.PoolNetns
		it.port.Pooled, it.port.PoolNetns, it.port.State = false, "", intent.StateAttaching
		it.port.Container, it.port.Iface, it.port.Netns = it.o.Container, it.o.Iface, it.netns
		it.port.CNINetwork, it.port.RuntimeName = it.o.CNINetwork, it.o.Name
		it.cfg = portConfig(it.port, it.o.routes())
		it.handOff()
		return ifc, set, nil
	}
	return nil, nil, nil
}

// servesFrom says whether a pool's row can serve item it from where its
// veth's container end waits: in the host, any; in a runtime's namespace,
// only that runtime's handoff into it.
func servesFrom(ext map[string]string, it *AttachItem) bool {
	at := ext[intent.KeyPoolNetns]
	return at == "" || it.o.Handoff != nil && it.netns == at
}

// holdsJust says whether a row holds exactly the addresses asked for (any
// row, when none is asked for: automatic addressing).
func holdsJust(ext map[string]string, asked []netip.Prefix) bool {
	if len(asked) == 0 {
		return true
	}
	held := intent.HeldAddrs(ext)
	if len(held) != len(asked) {
		return false
	}
	for _, a := range asked {
		if !slices.ContainsFunc(held, func(h netip.Prefix) bool { return h.Addr() == a.Addr() }) {
			return false
		}
	}
	return true
}

// evictPooled removes the pool's ports holding an address the run's items
// ask for by name (one not taken: another type, or an attach the pool
// cannot serve), so that the attach gets it: one read of the bridge's pool, and a detach
// only when one is in the way.
func (r *AttachRun) evictPooled(ctx context.Context) error {
	asked := map[netip.Addr]bool{}
	for _, it := range r.items {
		for _, p := range it.rq.requested {
			asked[p.Addr()] = true
		}
	}
	if len(asked) == 0 {
		return nil
	}
	rows, err := r.h.DB.FindInterfaces(ctx, intent.OfBridgePool(r.bridge))
	if err != nil {
		return err
	}
	rows = slices.DeleteFunc(rows, func(ifc vswitchd.Interface) bool {
		return !slices.ContainsFunc(intent.HeldAddrs(ifc.ExternalIDs), func(p netip.Prefix) bool { return asked[p.Addr()] })
	})
	ifs, ports, err := r.h.DB.PortsOn(ctx, r.bridge, rows)
	if err != nil || len(ifs) == 0 {
		return err
	}
	r.tr.Step("remove pool's ports holding asked addresses")
	return r.h.Detach(ctx, r.bridge, ifs, ports)
}

// alreadyAttached is the error for an item whose container interface has
// a row already (an attach that won a race with this one), or nil.
func (r *AttachRun) alreadyAttached(ctx context.Context, it *AttachItem) error {
	ifs, err := r.h.DB.FindInterfaces(ctx, intent.OfContainer(it.o.Container, it.o.Iface))
	if err != nil || len(ifs) == 0 {
		return err
	}
	return fmt.Errorf("port already attached for CONTAINER=%s and INTERFACE=%s (OVS port %s): remove it with `ovsnet del-port %s %s %s`",
		it.o.Container, it.o.Iface, ifs[0].Name, r.bridge, it.o.Iface, it.o.Container)
}

// moveInto moves a taken pool's port into its container and configures
// it there: the tap of an internal port, the waiting end of a veth. A
// runtime's (handoff) is only moved and named, for the runtime to set up.
func (r *AttachRun) moveInto(it *AttachItem) error {
	dev := it.host
	if it.typ == attach.TypeVeth {
		dev = attach.PoolPeer(it.host)
	}
	if it.waits == "" { // else it is where the runtime takes it (servesFrom)
		if err := r.h.Devices.MoveIn(dev, it.netns); err != nil {
			return fmt.Errorf("move %s into container %s: %w", dev, it.o.Container, err)
		}
	}
	if it.o.Handoff != nil {
		return r.h.Devices.RenameIn(it.netns, dev, it.cfg.Name)
	}
	if err := r.h.Devices.Configure(it.netns, dev, it.cfg); err != nil {
		return fmt.Errorf("configure %s in container %s: %w", it.o.Iface, it.o.Container, err)
	}
	return nil
}

// dropTaken removes a port whose take failed after its claim (a detach,
// as for any half-made port) and returns cause with any failure of its own.
func (r *AttachRun) dropTaken(it *AttachItem, cause error) error {
	bg := context.Background()
	rc, cancel := context.WithTimeout(bg, 15*time.Second)
	defer cancel()
	r.h.DB.Reconnect(rc) // the cause may be ovsdb-server restarting; the detach says if it still is
	_, ifs, ports, err := r.h.ContainerPorts(bg, r.bridge, it.o.Container, it.o.Iface)
	if err == nil && len(ifs) > 0 {
		err = r.h.Detach(bg, r.bridge, ifs, ports) // its published ports too
	}
	if err != nil {
		return fmt.Errorf("%w (and removing the pool's port %s failed: %v)", cause, it.host, err)
	}
	return cause
}

// FillPool attaches n pool's ports of type typ to bridge, in one run of
// the engine (one transaction, one wait on ovs-vswitchd, one flow bundle);
// veths' container ends wait in the namespace at netns ("": the host).
func (h *Host) FillPool(ctx context.Context, bridge, typ string, n int, netns string) error {
	specs := make([]PortOptions, n)
	for i := range specs {
		specs[i] = PortOptions{Bridge: bridge, Type: typ, Addresses: []string{"auto"}, Pooled: true, Netns: netns}
	}
	nw, err := h.Network(ctx, bridge)
	if err != nil {
		return err
	}
	defer nw.Close()
	_, err = h.attachPorts(ctx, nw, specs, false)
	return err
}
