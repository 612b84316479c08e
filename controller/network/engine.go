package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// The attach engine: the one sequence that attaches container interfaces
// to a bridge, whichever front end asks (add-port, add-ports, the
// controller's API). One interface or ten thousand go through the same
// steps; only how the bridge is read and addresses allocated differs
// (allocator).
//
//  1. check: the bridge and what needs no container, before anything is made
//  2. resolve the containers
//  3. allocate addresses and port numbers; check no container has its
//     INTERFACE yet; create veths (they exist before their rows, so
//     ovs-vswitchd finds them when it reads the rows)
//  4. commit every row in one guarded transaction, marked attaching
//     (allocate again after losing a write conflict)
//  5. flows (before any container interface comes up), ovs-vswitchd's port
//     numbers, the containers' side (internal ports once ovs-vswitchd added
//     them: a tap moved earlier fails the add and is destroyed)
//  6. publish, then mark the rows ready
//
// Any failure undoes all of it (attachRun.rollback); a kill leaves rows
// marked attaching, which reconcile finishes or removes.

// AttachItem is one container interface as it goes through the steps.
type AttachItem struct {
	o         PortOptions
	rq        *portRequest
	host      string // OVS port name
	typ       string
	netns     string        // the container's (a pool's port: where its veth's end waits, "" the host)
	port      intent.Port   // what its row says
	cfg       attach.Config // what its container's interface gets (portConfig)
	addrs     []netip.Prefix
	ofport    int
	veth      bool   // its veth exists (to roll back)
	ifaceUUID string // its rows, once committed
	portUUID  string
	published bool             // its port mappings are in (to roll back)
	waits     string           // a pool's veth taken: the namespace its end waited in ("" the host)
	rate      intent.RateLimit // its own or the bridge's, bursts set (applyRates)
}

// AttachRun is one attach of items to one bridge.
type AttachRun struct {
	h       *Host
	bridge  string
	items   []*AttachItem
	lines   bool // name items by line in errors (add-ports' list)
	alloc   Allocator
	br      *vswitchd.Bridge // as read, for the guard
	bi      intent.Bridge    // its intent, decoded
	subnets []ipam.Subnet
	nb      nat.Bridge // for publishing
	tr      *steptime.Tracer
	// pipeline waits for the check of the bridge's pipeline that the run
	// started early, and puts the bridge's flows back if it was gone.
	pipeline func(context.Context) error
}

// Allocator is how an attach reads its network and allocates, and what
// the network needs beyond the ports' OVS rows: on an ovsnet bridge by
// probes for one interface (O(1) rows whatever the bridge's size), from
// one read of the whole bridge for many, then the bridge's flows; on an
// OVN network, from its logical switch, then OVN's binding (package ovn).
type Allocator interface {
	// Start begins, before anything is read, what the run will wait for.
	Start(r *AttachRun)
	// Check reads the network and checks what needs no container.
	Check(ctx context.Context, r *AttachRun) error
	// Allocate gives every item its addresses, port number and intent
	// (again: after losing a write conflict, from a fresh read) and returns
	// the bridge external_ids the guarded commit writes.
	Allocate(ctx context.Context, r *AttachRun, again bool) (map[string]string, error)
	// Guard adds what makes the commit fail with ovsdb.ErrConflict when
	// another writer got in since Allocate read (nothing for OVN, whose
	// allocation is guarded in its own database).
	Guard(tx *ovsdb.Tx, r *AttachRun, set map[string]string)
	// Plug makes the committed ports reachable: the bridge's flows, or
	// OVN's binding of each port (waited for).
	Plug(ctx context.Context, r *AttachRun) error
	// Undo removes what Allocate and Plug made outside this host's
	// OVSDB rows and devices, for the rollback.
	Undo(ctx context.Context, r *AttachRun) error
}

// bridgeNet is what an ovsnet bridge needs of an attach beyond its rows.
type bridgeNet struct{}

// Start opens the OpenFlow connection while OVSDB is read and, but for
// the pool's own ports, starts checking that the bridge's pipeline is in
// place.
func (bridgeNet) Start(r *AttachRun) {
	r.h.Flows.Prepare(r.bridge)
	if !r.items[0].o.Pooled {
		r.pipeline = r.h.checkPipeline(r.bridge)
	}
}

func (bridgeNet) Guard(tx *ovsdb.Tx, r *AttachRun, set map[string]string) {
	tx.GuardBridge(r.bridge, r.br.ExternalIDs, set)
}

func (bridgeNet) Plug(ctx context.Context, r *AttachRun) error {
	if r.pipeline != nil {
		if err := r.pipeline(ctx); err != nil {
			return err
		}
	}
	return r.installFlows(ctx)
}

func (bridgeNet) Undo(context.Context, *AttachRun) error { return nil }

// attachPorts is the attach engine (see above).
func (h *Host) attachPorts(ctx context.Context, n Network, specs []PortOptions, lines bool) (ps []*PortView, err error) {
	r, err := h.newAttachRun(n, specs, lines)
	if err != nil || len(r.items) == 0 {
		return nil, err
	}
	defer r.tr.Done(fmt.Sprintf("attach (%d)", len(r.items)))
	if err := r.alloc.Check(ctx, r); err != nil {
		return nil, err
	}
	if err := r.resolve(ctx); err != nil {
		return nil, err
	}
	if h.Pool != nil && !r.items[0].o.Pooled {
		h.Pool.Attached(r.bridge, time.Now()) // a bridge in use keeps a pool
	}
	if r.poolable() {
		if p, err := r.takeFromPool(ctx); p != nil || err != nil {
			return []*PortView{p}, err
		}
	}
	if err := r.evictPooled(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = r.rollback(err)
		}
	}()
	if err = r.commit(ctx); err != nil {
		return nil, err
	}
	if err = r.bringUp(ctx); err != nil {
		return nil, err
	}
	if err = r.publish(ctx); err != nil {
		return nil, err
	}
	if err = r.markReady(ctx); err != nil {
		return nil, err
	}
	for _, it := range r.items {
		p := portView(it.port, it.host, it.ofport, it.o.VLAN)
		p.RateLimit = it.rate.String()
		ps = append(ps, &p)
	}
	return ps, nil
}

// newAttachRun parses and checks the requests, without reading anything.
func (h *Host) newAttachRun(n Network, specs []PortOptions, lines bool) (*AttachRun, error) {
	bridge := n.Name()
	r := &AttachRun{h: h, bridge: bridge, lines: lines, tr: steptime.New()}
	seen := map[string]int{}
	for i, o := range specs {
		o.Bridge = bridge
		rq, err := parsePortOptions(o)
		if err != nil {
			return nil, r.itemErr(i, o, err)
		}
		if o.Pooled {
			r.items = append(r.items, &AttachItem{o: o, rq: rq, host: poolPortName(bridge)})
			continue
		}
		key := o.Container + "\x00" + o.Iface
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d repeats line %d (%s %s)", i+1, j+1, o.Iface, o.Container)
		}
		seen[key] = i
		r.items = append(r.items, &AttachItem{o: o, rq: rq, host: attach.HostName(bridge, o.Container, o.Iface)})
	}
	if len(r.items) > 0 {
		r.alloc = n.Allocator(len(r.items), lines) // a refill of one pool's port probes too: O(1) rows
		r.alloc.Start(r)
	}
	return r, nil
}

// checkTypes refuses the items whose type the bridge's datapath cannot
// carry (checkType).
func (r *AttachRun) checkTypes() error {
	for i, it := range r.items {
		if err := datapath.CheckType(datapath.Of(r.br), it.o.Type); err != nil {
			return r.itemErr(i, it.o, fmt.Errorf("bridge %s: %w", r.bridge, err))
		}
	}
	return nil
}

// itemErr names item i in err when the request was a list.
func (r *AttachRun) itemErr(i int, o PortOptions, err error) error {
	if !r.lines {
		return err
	}
	return fmt.Errorf("line %d (%s %s): %w", i+1, o.Iface, o.Container, err)
}

// resolve finds every container's netns (for a handoff, the namespace the
// runtime takes the link from).
func (r *AttachRun) resolve(ctx context.Context) error {
	err := parallel(r.items, func(it *AttachItem) error {
		if h := it.o.Handoff; h != nil {
			it.netns = h.Netns
			return nil
		}
		if it.o.Pooled {
			it.netns = it.o.Netns // no container yet: where the veth's end waits
			return nil
		}
		if it.o.Netns != "" {
			if !r.h.Devices.NetnsExists(it.o.Netns) {
				return fmt.Errorf("network namespace %s of container %s does not exist", it.o.Netns, it.o.Container)
			}
			it.netns = it.o.Netns
		} else {
			t, err := containers.Resolve(ctx, it.o.Container)
			if err != nil {
				return err
			}
			it.netns = t.Netns
		}
		if r.h.Devices.IsOwnNetns(it.netns) {
			return fmt.Errorf("container %s is in the host's network namespace (%s): ovsnet attaches containers with their own (a --network host container has no interface to give)", it.o.Container, it.netns)
		}
		return nil
	})
	r.tr.Step("resolve containers")
	return err
}

// checkLinks checks that no container has its INTERFACE yet.
func (r *AttachRun) checkLinks() error {
	return parallel(r.items, func(it *AttachItem) error {
		if it.o.Handoff != nil || it.o.Pooled {
			return nil // the runtime names the link in the container; no container yet
		}
		if has, err := r.h.Devices.HasLink(it.netns, it.o.Iface); err != nil {
			return fmt.Errorf("container %s: %w", it.o.Container, err)
		} else if has {
			return fmt.Errorf("interface %s already present in container %s: choose another INTERFACE name", it.o.Iface, it.o.Container)
		}
		return nil
	})
}

// setBridge is the bridge as read, and its intent; every allocator calls
// it once it has read the bridge, which refuses the items whose type the
// bridge's datapath cannot carry (checkTypes).
func (r *AttachRun) setBridge(br *vswitchd.Bridge) error {
	r.br, r.bi = br, intent.DecodeBridge(br.Name, br.ExternalIDs)
	if err := r.applyRates(); err != nil {
		return err
	}
	if err := r.checkTypes(); err != nil {
		return err
	}
	return r.checkMTUs()
}

// applyRates gives each item its rate limit: its own, else the bridge's
// default (a pool's port gets none until it is claimed). A cap on what a
// container receives waits at a veth's host end: such an item without a
// type becomes a veth, an internal port is refused. A default that does
// not decode refuses the items that would take it.
func (r *AttachRun) applyRates() error {
	for i, it := range r.items {
		if it.o.Pooled {
			continue
		}
		lim := it.o.Rate
		if lim.IsZero() {
			if r.bi.RateErr != nil {
				return r.itemErr(i, it.o, fmt.Errorf("bridge %s's default rate limit: %w (give the interface its own, or set the default again with ovsnet qos %s --default)", r.bridge, r.bi.RateErr, r.bridge))
			}
			lim = r.bi.Rate
		}
		it.rate = lim.WithBursts()
		if lim.IngressRate == 0 {
			continue
		}
		switch it.o.Type {
		case "":
			it.o.Type = attach.TypeVeth
		case attach.TypeInternal:
			return r.itemErr(i, it.o, fmt.Errorf("an ingress rate needs a veth: an internal port's packets are written straight into the container past any queue (attach it with --type veth)"))
		}
	}
	return nil
}

// checkMTUs refuses items whose MTU is above their bridge's: the bridge
// and its gateway would drop what the container sends past it.
func (r *AttachRun) checkMTUs() error {
	for i, it := range r.items {
		if r.bi.MTU > 0 && it.o.MTU > r.bi.MTU {
			return r.itemErr(i, it.o, fmt.Errorf("MTU %d is above bridge %s's %d: give the container at most %d, or make the bridge with a larger --mtu", it.o.MTU, r.bridge, r.bi.MTU, r.bi.MTU))
		}
	}
	return nil
}

// fill works out item it's type, MTU, MAC and intent once its addresses
// and port number are known; mac nil derives it from the addresses.
func (r *AttachRun) fill(it *AttachItem, subs []ipam.Subnet, mac net.HardwareAddr, tso func() bool) {
	dp := datapath.Of(r.br)
	if it.typ = it.o.Type; it.typ == "" {
		it.typ = datapath.DefaultType(dp)
	}
	mtu := it.o.MTU
	if mtu == 0 {
		mtu = r.bi.MTU
	}
	if mac == nil {
		mac = ipam.MACFor(it.addrs)
	}
	// Until the container side is configured the row says attaching: if
	// this process dies before that, convergence finds it and finishes.
	it.port = intent.Port{Container: it.o.Container, Iface: it.o.Iface, Bridge: r.bridge, Netns: it.netns, Type: it.typ,
		State: intent.StateAttaching, MAC: mac, Addrs: it.addrs, Gateways: ipam.GatewaysFor(it.addrs, subs, it.rq.gateway), MTU: mtu,
		NoTxOffload: datapath.NoTxOffload(r.bi, it.typ, dp, tso), CNINetwork: it.o.CNINetwork, RuntimeName: it.o.Name, FloodPPS: r.bi.FloodPPS}
	if it.o.FloodPPS != nil {
		it.port.FloodPPS = *it.o.FloodPPS
	}
	it.cfg = portConfig(it.port, it.o.routes())
	it.cfg.Egress = it.rate.Egress()
	if it.o.Pooled {
		it.port.Pooled, it.port.PoolNetns, it.port.Netns = true, it.netns, ""
	}
	it.handOff()
}

// handOff records a runtime's link (a handoff): no namespace of ovsnet's
// (the runtime ends the port, not garbage collection), and the link is
// named as the runtime takes it.
func (it *AttachItem) handOff() {
	if h := it.o.Handoff; h != nil {
		it.port.Netns, it.port.Runtime, it.cfg.Name = "", h.Runtime, h.Name
	}
}

// commit allocates, creates the veths and commits every row in one guarded
// transaction, allocating again for as long as it loses write conflicts.
func (r *AttachRun) commit(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		set, err := r.alloc.Allocate(ctx, r, attempt > 0)
		if err != nil {
			return err
		}
		if attempt == 0 {
			r.tr.Step("allocate")
			if err := r.checkLinks(); err != nil {
				return err
			}
			if err := r.createVeths(); err != nil {
				return err
			}
		}
		var specs []ovsdb.PortSpec
		for _, it := range r.items {
			specs = append(specs, it.portSpec())
		}
		tx := r.h.DB.Tx()
		r.alloc.Guard(tx, r, set)
		rows := tx.AddPorts(r.bridge, specs...)
		created, err := tx.Commit(ctx)
		if err == nil {
			for i, it := range r.items {
				it.ifaceUUID, it.portUUID = created.UUID(rows[i].Interface), created.UUID(rows[i].Port)
			}
			r.tr.Step(fmt.Sprintf("commit ports (%d tries)", attempt+1))
			return nil
		}
		if !errors.Is(err, ovsdb.ErrConflict) || attempt >= ovsdb.MaxAttempts {
			return r.commitErr(err)
		}
		if single := r.singleContainer(); single != nil {
			// A pool's port taken for the same container interface meanwhile
			// has another name: its uniqueness would not catch it.
			if err := r.alreadyAttached(ctx, single); err != nil {
				return err
			}
		}
		// Another writer changed the bridge first: allocate again. The veths
		// keep their names; their MACs follow the new addresses.
		time.Sleep(ovsdb.Backoff(attempt))
	}
}

// singleContainer is the run's one item when it attaches one container
// interface by probes (add-port, the API), else nil.
func (r *AttachRun) singleContainer() *AttachItem {
	if _, probe := r.alloc.(probeAllocator); !probe || r.items[0].o.Pooled {
		return nil
	}
	return r.items[0]
}

func (r *AttachRun) commitErr(err error) error {
	if len(r.items) > 1 {
		return fmt.Errorf("attach %d containers to %s: %w", len(r.items), r.bridge, err)
	}
	it := r.items[0]
	if strings.Contains(err.Error(), "constraint violation") {
		return fmt.Errorf("OVS port %s already exists: %w", it.host, err)
	}
	return fmt.Errorf("attach %s to %s: %w", it.o.Container, r.bridge, err)
}

// createVeths makes the veths (a link of a port's name with no row is the
// leftover of an interrupted attach: it goes first).
func (r *AttachRun) createVeths() error {
	err := r.each("create veths", r.items, func(it *AttachItem) error {
		if it.typ != attach.TypeVeth {
			return nil
		}
		r.h.Devices.DeleteLink(it.host)
		create := func() error { return r.h.Devices.CreateVeth(it.host, it.netns, it.cfg) }
		if it.o.Pooled {
			create = func() error { return r.h.Devices.CreatePoolVeth(it.host, it.netns, it.cfg) }
		}
		if err := create(); err != nil {
			return err
		}
		it.veth = true
		return nil
	})
	r.tr.Step("create veths")
	return err
}

func (it *AttachItem) portSpec() ovsdb.PortSpec {
	ptype := ""
	if it.typ == attach.TypeInternal {
		ptype = "internal"
	}
	ids := it.port.Encode()
	if !it.rate.IsZero() {
		ids[intent.KeyRate] = it.rate.Encode()
	}
	return ovsdb.PortSpec{Name: it.host, Type: ptype, OfportRequest: it.ofport, VLAN: it.o.VLAN, MTU: it.cfg.MTU, ExternalIDs: ids, PortIDs: intent.Ownership(it.port.Bridge)}
}

// containers are the items' containers.
func (r *AttachRun) containers() map[string]bool {
	cs := map[string]bool{}
	for _, it := range r.items {
		cs[it.o.Container] = true
	}
	return cs
}

// installFlows puts in every new port's flows and its container's links',
// spread over parallel OpenFlow connections for large attaches.
func (r *AttachRun) installFlows(ctx context.Context) error {
	var chs []flows.Change
	for _, it := range r.items {
		chs = append(chs, flows.PortChange(flowmodel.PortOf(it.port, it.host, it.ofport, it.o.VLAN)))
	}
	cs := r.containers()
	lchs, err := links.Changes(ctx, r.h.DB, r.bridge, r.bi.Links, func(s, d string) bool { return cs[s] || cs[d] }, nil)
	if err != nil {
		return err
	}
	return r.h.Flows.ApplySpread(r.bridge, append(chs, lchs...)...)
}

// configure sets up item it's interface in its container: an internal port
// is moved in first. A handoff's container end is the runtime's to set up;
// it only gets its offloads as the port needs them, before the runtime
// takes it.
func (r *AttachRun) configure(it *AttachItem) error {
	if it.o.Pooled {
		return nil // its container end waits in the host, down
	}
	if h := it.o.Handoff; h != nil {
		if it.cfg.NoTxOffload {
			return r.h.Devices.SetVethTxOffload(it.host, h.Netns, h.Name, false)
		}
		return nil
	}
	cur := it.o.Iface
	if it.typ == attach.TypeInternal {
		if err := r.h.Devices.MoveIn(it.host, it.netns); err != nil {
			return err
		}
		cur = it.host
	}
	if err := r.h.Devices.Configure(it.netns, cur, it.cfg); err != nil {
		return fmt.Errorf("configure %s in container %s: %w", it.o.Iface, it.o.Container, err)
	}
	return nil
}

// shapeHostEnd caps what item it's container receives at its veth's host
// end (applyRates made it a veth). Only once ovs-vswitchd has numbered the
// port: on the userspace datapath it reads a new port's root qdisc when it
// adds it, and would delete one it does not know (QoS of its own) that it
// found there.
func (r *AttachRun) shapeHostEnd(it *AttachItem) error {
	if err := r.h.Devices.ShapeHostEnd(it.host, it.rate.Ingress()); err != nil {
		return fmt.Errorf("cap what %s receives: %w", it.o.Container, err)
	}
	return nil
}

// bringUp installs the flows and waits for ovs-vswitchd's port numbers
// (one wait for every port), configuring veths' container ends meanwhile
// once the flows are in (a link comes up announcing itself); a port that
// got another number than it asked for (taken by a port ovsnet does not
// know) gets its flows again; internal ports move into their containers
// last.
func (r *AttachRun) bringUp(ctx context.Context) error {
	var veths, internals []*AttachItem
	names := make([]string, len(r.items))
	for i, it := range r.items {
		names[i] = it.host
		if it.typ == attach.TypeInternal {
			internals = append(internals, it)
		} else {
			veths = append(veths, it)
		}
	}
	flowErr, vethErr := make(chan error, 1), make(chan error, 1)
	go func() {
		err := r.alloc.Plug(ctx, r)
		flowErr <- err
		if err != nil {
			vethErr <- nil
			return
		}
		vethErr <- r.each("configure veths", veths, r.configure)
	}()
	ofports, err := r.h.Vswitchd.WaitOfports(ctx, names)
	err = errors.Join(err, <-flowErr)
	if verr := <-vethErr; err == nil {
		err = verr
	}
	if err != nil {
		return err
	}
	moved := false
	for i, it := range r.items {
		if ofports[i] != it.ofport {
			it.ofport, moved = ofports[i], true
		}
	}
	var capped []*AttachItem
	for _, it := range r.items {
		if it.rate.IngressRate > 0 && !it.o.Pooled {
			capped = append(capped, it)
		}
	}
	if err := r.each("cap what containers receive", capped, r.shapeHostEnd); err != nil {
		return err
	}
	if moved {
		if err := r.alloc.Plug(ctx, r); err != nil {
			return err
		}
	}
	r.tr.Step("flows, ovs-vswitchd, veths")
	err = r.each("move internal ports into containers", internals, r.configure)
	r.tr.Step("internal ports")
	return err
}

// publish adds the items' port mappings (add-port -p).
func (r *AttachRun) publish(ctx context.Context) error {
	for _, it := range r.items {
		if len(it.rq.publish) == 0 {
			continue
		}
		ifs, err := r.h.DB.FindInterfaces(ctx, intent.OfContainer(it.o.Container, it.o.Iface))
		if err == nil && len(ifs) == 0 {
			err = fmt.Errorf("interface row of %s vanished", it.host)
		}
		if err == nil {
			// Rolled back whatever part of it went in: releasing a
			// mapping whose rule is missing is fine.
			it.published = true
			_, err = r.h.NAT().Publish(ctx, r.nb, ifs[0], it.rq.publish)
		}
		if err != nil {
			return err
		}
	}
	r.tr.Step("publish")
	return nil
}

// markReady marks every row ready in one transaction.
func (r *AttachRun) markReady(ctx context.Context) error {
	_, err := r.h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		for _, it := range r.items {
			tx.SetInterfaceExternalIDs(it.ifaceUUID, intent.State(intent.StateReady))
		}
	})
	r.tr.Step("mark ready")
	return err
}

// rollback undoes whatever the run made, in the detach's order (rules and
// devices, then rows with their addresses, then flows), and gives the
// port numbers back if nothing took later ones. It returns cause, with any
// failure of its own.
func (r *AttachRun) rollback(cause error) error {
	bg := context.Background()
	rc, cancel := context.WithTimeout(bg, 15*time.Second)
	defer cancel()
	var errs []error
	if err := r.h.DB.Reconnect(rc); err != nil { // the cause may be ovsdb-server restarting
		errs = append(errs, err)
	}
	var uuids, veths []string
	names := map[string]int{} // OVS port name -> OpenFlow port number
	var pub []vswitchd.Interface
	var freed []netip.Addr
	lo, hi := 0, 0
	for _, it := range r.items {
		if it.published {
			if ifs, err := r.h.DB.FindInterfaces(bg, intent.OfContainer(it.o.Container, it.o.Iface)); err == nil && len(ifs) > 0 {
				pub = append(pub, ifs[0])
			}
		}
		if it.veth {
			veths = append(veths, it.host)
		}
		if it.portUUID == "" {
			continue
		}
		uuids, names[it.host] = append(uuids, it.portUUID), it.ofport
		for _, a := range it.addrs {
			freed = append(freed, a.Addr())
		}
		if lo == 0 || it.ofport < lo {
			lo = it.ofport
		}
		hi = max(hi, it.ofport)
	}
	// The rules and the veths of the lot in one request each.
	errs = append(errs, r.h.NAT().ReleaseAll(pub), r.h.Devices.DeleteLinks(veths), r.alloc.Undo(bg, r))
	if len(uuids) > 0 {
		errs = append(errs, r.deleteInternals())
		if err := r.h.removePorts(bg, r.bridge, uuids, freed); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, r.h.dropFlowsOf(bg, r.bridge, r.containers(), names), r.h.returnOfports(bg, r.bridge, lo, hi))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w (and rolling back failed: %v)", cause, err)
	}
	return cause
}

// deleteInternals deletes the committed internal ports that made it into
// their containers, by either name (moved, or also renamed).
func (r *AttachRun) deleteInternals() error {
	var errs []error
	for _, it := range r.items {
		if it.typ == attach.TypeInternal && it.portUUID != "" {
			// In the container, or still in the host (where a tap stays
			// if ovs-vswitchd is down when the row goes).
			errs = append(errs, r.h.Devices.DeleteInternal(it.netns, it.o.Iface, nil), r.h.Devices.DeleteInternal(it.netns, it.host, nil), r.h.Devices.DeleteInternal("/proc/self/ns/net", it.host, nil))
		}
	}
	return errors.Join(errs...)
}

// returnOfports gives back the port numbers lo..hi a rolled-back attach
// took, if no attach took a later one meanwhile: a failed attach leaves
// the bridge's counter as it found it.
func (h *Host) returnOfports(ctx context.Context, bridge string, lo, hi int) error {
	return ovsdb.OnConflict(func() error {
		br, err := h.DB.GetBridge(ctx, bridge)
		if err != nil || br == nil || intent.DecodeBridge(bridge, br.ExternalIDs).NextOfport != hi+1 {
			return err
		}
		_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.GuardBridge(bridge, br.ExternalIDs, intent.Alloc{NextOfport: lo}.Encode()) })
		return err
	})
}

// each is parallel over items as a phase of the run's progress.
func (r *AttachRun) each(what string, items []*AttachItem, f func(*AttachItem) error) error {
	p := r.h.Tell()
	if len(items) > 0 {
		p.Phase(what, len(items))
	}
	return parallel(items, func(it *AttachItem) error {
		defer p.Add(1)
		return f(it)
	})
}

// parallel runs f on every item, on at most bulkWorkers goroutines, and
// returns the first error.
func parallel(items []*AttachItem, f func(*AttachItem) error) error {
	errs := make([]error, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < bulkWorkers && w < len(items); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(items[i])
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
