package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
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
// marked ready. The controller refills (ConvergePool).

// Pool is the controller's warm pool: what it keeps, and which rows this
// process is taking.
type Pool struct {
	Size  int      // ready ports kept per bridge and type
	Types []string // the port types kept; none: each bridge's default type
	mu    sync.Mutex
	busy  map[string]bool // rows being taken here (by UUID)
	// claims: per bridge, held while this process claims one of its
	// pool's ports.
	claims map[string]*sync.Mutex
	wake   chan struct{}
	// full: bridges whose subnet had no address left for a fill, by the
	// bridge generation then: no fill is tried again until it changes.
	full map[string]string
}

// NewPool keeps size ports of each of types ready on every ovsnet bridge
// with a subnet.
func NewPool(size int, types []string) *Pool {
	return &Pool{Size: size, Types: types, busy: map[string]bool{}, claims: map[string]*sync.Mutex{}, wake: make(chan struct{}, 1), full: map[string]string{}}
}

// Woken is signalled after a take: time to refill.
func (p *Pool) Woken() <-chan struct{} { return p.wake }

func (p *Pool) taken() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// reserve marks row uuid as being taken by this process; false if it
// already is.
func (p *Pool) reserve(uuid string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[uuid] {
		return false
	}
	p.busy[uuid] = true
	return true
}

func (p *Pool) release(uuid string) {
	p.mu.Lock()
	delete(p.busy, uuid)
	p.mu.Unlock()
}

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
	if o.Pooled || rq.auto == (len(rq.requested) > 0) || rq.mac != nil || rq.gateway.IsValid() || o.MTU != 0 || o.VLAN != 0 || o.FloodPPS != nil {
		return false
	}
	for _, l := range r.bi.Links {
		if l.Src == o.Container || l.Dst == o.Container {
			return false
		}
	}
	return slices.Contains(r.h.Pool.typesFor(DatapathOf(r.br)), r.itemType(it))
}

// typesFor is the port types kept on a bridge of datapath dp.
func (p *Pool) typesFor(dp string) []string {
	if len(p.Types) == 0 {
		return []string{DefaultType(dp)}
	}
	var ts []string
	for _, t := range p.Types {
		if checkType(dp, t) == nil {
			ts = append(ts, t)
		}
	}
	return ts
}

// itemType is the port type an item asks for, or its bridge's default.
func (r *AttachRun) itemType(it *AttachItem) string {
	if it.o.Type != "" {
		return it.o.Type
	}
	return DefaultType(DatapathOf(r.br))
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
	defer r.h.Pool.release(ifc.UUID)
	defer r.h.Pool.taken() // the refill after the take: not competing with its move
	r.tr.Step("take a pool's port")
	err = moveInto(it)
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
	defer r.h.Pool.claiming(r.bridge)()
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
		ifc, err := r.pickPooled(ctx, it)
		if ifc == nil || err != nil {
			return nil, err
		}
		tx := r.h.DB.Tx()
		tx.GuardBridge(r.bridge, r.br.ExternalIDs, nil)
		tx.ClaimInterface(ifc.UUID, ifc.ExternalIDs, it.port.Encode())
		_, err = tx.Commit(ctx)
		if err == nil {
			it.ifaceUUID = ifc.UUID
			return ifc, nil
		}
		r.h.Pool.release(ifc.UUID)
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

// claiming takes bridge's claim lock of this process; the returned
// function releases it.
func (p *Pool) claiming(bridge string) func() {
	p.mu.Lock()
	m := p.claims[bridge]
	if m == nil {
		m = &sync.Mutex{}
		p.claims[bridge] = m
	}
	p.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// pickPooled reserves a ready pool's port of the item's type and gives
// the item its name, number and intent (the pool's, with the container's
// names), or returns nil if there is none.
func (r *AttachRun) pickPooled(ctx context.Context, it *AttachItem) (*vswitchd.Interface, error) {
	rows, err := r.h.DB.FindInterfaces(ctx, intent.OfPool(r.bridge, r.itemType(it)))
	if err != nil {
		return nil, err
	}
	for i := range rows {
		ifc := &rows[i]
		if ifc.Ofport == nil || *ifc.Ofport <= 0 || !holdsJust(ifc.ExternalIDs, it.rq.requested) || !r.h.Pool.reserve(ifc.UUID) {
			continue
		}
		pi, err := intent.DecodePort(IfaceRow(*ifc), ifc.ExternalIDs)
		if err != nil || pi.State != intent.StateReady {
			r.h.Pool.release(ifc.UUID)
			continue
		}
		it.typ, it.host, it.ofport, it.addrs = pi.Type, ifc.Name, *ifc.Ofport, pi.Addrs
		it.port = pi
		it.port.Pooled, it.port.State = false, intent.StateAttaching
		it.port.Container, it.port.Iface, it.port.Netns = it.o.Container, it.o.Iface, it.netns
		it.port.CNINetwork = it.o.CNINetwork
		it.cfg = portConfig(it.port, it.o.routes())
		it.handOff()
		return ifc, nil
	}
	return nil, nil
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
// ask for by name (one not taken: another type, or a subnet so full that
// the pool's addresses from its top met those picked from its bottom), so
// that the attach gets it: one read of the bridge's pool, and a detach
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
	ifs, ports, err := r.h.portsOn(ctx, r.bridge, rows)
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
func moveInto(it *AttachItem) error {
	dev := it.host
	if it.typ == attach.TypeVeth {
		dev = attach.PoolPeer(it.host)
	}
	if err := attach.MoveIn(dev, it.netns); err != nil {
		return fmt.Errorf("move %s into container %s: %w", dev, it.o.Container, err)
	}
	if it.o.Handoff != nil {
		return attach.RenameIn(it.netns, dev, it.cfg.Name)
	}
	if err := attach.Configure(it.netns, dev, it.cfg); err != nil {
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
	_, ifs, ports, err := r.h.containerPorts(bg, r.bridge, it.o.Container, it.o.Iface)
	if err == nil && len(ifs) > 0 {
		err = r.h.Detach(bg, r.bridge, ifs, ports) // its published ports too
	}
	if err != nil {
		return fmt.Errorf("%w (and removing the pool's port %s failed: %v)", cause, it.host, err)
	}
	return cause
}

// FillPool attaches n pool's ports of type typ to bridge, in one run of
// the engine (one transaction, one wait on ovs-vswitchd, one flow bundle).
func (h *Host) FillPool(ctx context.Context, bridge, typ string, n int) error {
	specs := make([]PortOptions, n)
	for i := range specs {
		specs[i] = PortOptions{Bridge: bridge, Type: typ, Addresses: []string{"auto"}, Pooled: true}
	}
	nw, err := h.Network(ctx, bridge)
	if err != nil {
		return err
	}
	defer nw.Close()
	_, err = h.attachPorts(ctx, nw, specs, false)
	return err
}

// PoolState is a bridge's pool: its ports, and the ready ones by type.
type PoolState struct {
	Bridge   string
	Datapath string
	Gen      string // the bridge's generation
	// Cap is the most a pool may hold there: a quarter of its smallest
	// subnet's addresses, so that a small subnet stays the containers'.
	Cap   int
	Ready map[string][]vswitchd.Interface // by type
	Ifs   []vswitchd.Interface
}

// ReadPools reads the pool's ports of every ovsnet bridge with a subnet
// (bridges being deleted left out), from the database itself: a monitor's
// cache may not have heard of the last fill yet.
func (h *Host) ReadPools(ctx context.Context) ([]PoolState, error) {
	brs, err := ovsdb.Select[vswitchd.Bridge](ctx, h.DB, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.Ownership(""))}, "name", "external_ids", "datapath_type")
	if err != nil {
		return nil, err
	}
	pooled, err := h.DB.FindInterfaces(ctx, intent.OfAnyPool())
	if err != nil {
		return nil, err
	}
	var out []PoolState
	for _, b := range brs {
		bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
		if bi.Deleting {
			continue
		}
		ps := PoolState{Bridge: b.Name, Datapath: DatapathOf(&b), Gen: b.ExternalIDs[intent.KeyGen], Ready: map[string][]vswitchd.Interface{}}
		for i, s := range bi.Subnets {
			if n := ipam.HostCount(s) / 4; i == 0 || n < ps.Cap {
				ps.Cap = n
			}
		}
		for _, ifc := range pooled {
			ref := intent.RefOf(ifc.ExternalIDs)
			if ref.Bridge != b.Name || ref.Container != "" {
				continue // a container's row that also says pooled does not decode: never the pool's to remove
			}
			ps.Ifs = append(ps.Ifs, ifc)
			if ref.State == intent.StateReady {
				ps.Ready[ref.Type] = append(ps.Ready[ref.Type], ifc)
			}
		}
		if len(bi.Subnets) > 0 || len(ps.Ifs) > 0 {
			out = append(out, ps)
		}
	}
	return out, nil
}

// ConvergePool brings every ovsnet bridge's pool to p: the ports missing
// made in one run of the engine per bridge and type, the ones beyond it
// (or of a type no longer kept) removed in one detach per bridge. Bridges
// without a subnet have none (a pool's port needs an automatic address).
func (h *Host) ConvergePool(ctx context.Context, p *Pool) ([]string, error) {
	states, err := h.ReadPools(ctx)
	if err != nil {
		return nil, err
	}
	var did []string
	var errs []error
	for _, st := range states {
		d, err := h.convergeBridgePool(ctx, p, st)
		did, errs = append(did, d...), append(errs, err)
	}
	return did, errors.Join(errs...)
}

// convergeBridgePool is ConvergePool for one bridge.
func (h *Host) convergeBridgePool(ctx context.Context, p *Pool, st PoolState) ([]string, error) {
	var did []string
	types := p.typesFor(st.Datapath)
	size := min(p.Size, st.Cap/len(types))
	// Kept: ready ports of a kept type, up to the size. Not kept: the
	// rest, with half-made ones (attaching: a fill killed half-way; this
	// process fills only here, so none is under way).
	var drop []int // indexes into st.Ifs
	for j, ifc := range st.Ifs {
		ref := intent.RefOf(ifc.ExternalIDs)
		at := slices.IndexFunc(st.Ready[ref.Type], func(r vswitchd.Interface) bool { return r.UUID == ifc.UUID })
		if !slices.Contains(types, ref.Type) || at < 0 || at >= size {
			drop = append(drop, j)
		}
	}
	if len(drop) > 0 {
		var rows []vswitchd.Interface
		for _, j := range drop {
			rows = append(rows, st.Ifs[j])
		}
		ifs, ports, err := h.portsOn(ctx, st.Bridge, rows)
		if err != nil {
			return did, err
		}
		if len(ifs) > 0 {
			if err := h.Detach(ctx, st.Bridge, ifs, ports); err != nil {
				return did, fmt.Errorf("shrink the pool of %s: %w", st.Bridge, err)
			}
			did = append(did, fmt.Sprintf("removed %d pool's port(s) from %s", len(ifs), st.Bridge))
		}
	}
	for _, typ := range types {
		n := size - len(st.Ready[typ])
		if n <= 0 || p.isFull(st) {
			continue
		}
		if err := h.FillPool(ctx, st.Bridge, typ, n); err != nil {
			if errors.Is(err, ipam.ErrExhausted) {
				p.setFull(st) // attaches take its last addresses; no fill until the bridge changes
				continue
			}
			return did, fmt.Errorf("fill the pool of %s with %d %s port(s): %w", st.Bridge, n, typ, err)
		}
		did = append(did, fmt.Sprintf("added %d %s pool's port(s) to %s", n, typ, st.Bridge))
	}
	return did, nil
}

func (p *Pool) isFull(st PoolState) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	gen, ok := p.full[st.Bridge]
	return ok && gen == st.Gen
}

func (p *Pool) setFull(st PoolState) {
	p.mu.Lock()
	p.full[st.Bridge] = st.Gen
	p.mu.Unlock()
}

// CheckPooled removes a ready pool's port whose links in the host are
// gone (deleted behind ovsnet's back, or a reboot took its veth): the
// pool makes another. An internal port's tap is ovs-vswitchd's to make
// again. hostLinks nil: not known, nothing done.
func (h *Host) CheckPooled(ctx context.Context, bridge string, ifc vswitchd.Interface, port vswitchd.Port, hostLinks *attach.HostLinks) (string, error) {
	if hostLinks == nil || ifc.Type != "" || (hostLinks.Has(ifc.Name) && hostLinks.Has(attach.PoolPeer(ifc.Name))) {
		return "", nil
	}
	if err := h.Detach(ctx, bridge, []vswitchd.Interface{ifc}, []vswitchd.Port{port}); err != nil {
		return "", fmt.Errorf("remove pool's port %s, whose veth is gone: %w", ifc.Name, err)
	}
	return fmt.Sprintf("removed pool's port %s of %s: its veth was gone", ifc.Name, bridge), nil
}

// DrainPools removes every pool's port of every bridge.
func (h *Host) DrainPools(ctx context.Context) ([]string, error) {
	return h.ConvergePool(ctx, NewPool(0, nil))
}
