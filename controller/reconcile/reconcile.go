// Package reconcile is ovsnet's one convergence: a run reads the intent in
// OVSDB and brings everything derived from it to match (bridges' addresses
// and OpenFlow settings, flows, NAT rules, interrupted attaches, detaches
// and del-brs, veths' offloads, underlays, allocation hints), reporting
// what it changed and the intent that does not decode. The CLI's
// reconcile and the controller's loop run the same code; the steps that
// converge one object are package network's.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/bridge"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/impair"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/mirror"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/controller/pool"
	"github.com/ovsnet/ovsnet/controller/ratelimit"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/controller/tunnel"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Once converges everything derived from the intent in OVSDB on host h,
// as `ovsnet reconcile` does. Its result says what it changed (a second
// run changes nothing), notes on what it found but leaves to others, and
// the intent that does not decode, each treated as strictly as it can be
// while the rest converges.
func Once(ctx context.Context, h *network.Host) (Result, error) {
	c := New(h)
	topo, err := h.DB.ReadAllFresh(ctx)
	if err != nil {
		return Result{}, err
	}
	// Containers that started again in a new namespace first: their
	// interfaces are attached anew, and the run then finds them in place.
	back, err := c.FollowRestarts(ctx, topo)
	o := Options{Topo: topo} // read once, unless re-attaching changed (or may have changed) it
	if len(back) > 0 || err != nil {
		o.Topo = nil
	}
	r, rerr := c.Run(ctx, o)
	r.Did = append(back, r.Did...)
	return r, errors.Join(err, rerr)
}

// Result is what one run did and found.
type Result struct {
	Did, Notes []string
	Bad        []error         // intent that does not decode
	Topo       *ovsdb.Topology // what the run converged to
}

// Options says how one reconcile runs.
type Options struct {
	Topo  *ovsdb.Topology   // what to converge to (nil: read OVSDB now)
	Links *attach.HostLinks // the host's links (nil: list them now)
	Quick bool              // compare flow counts before whole tables
	// NATSeen, when set, holds the NAT intent last brought to iptables:
	// a run whose intent is the same skips iptables (tens of ms of
	// iptables processes, which every attach's convergence paid) unless
	// NATCheck. The service checks on every resync, as drift in iptables
	// does not show in OVSDB anyway.
	NATSeen  *string
	NATCheck bool
	// Seen, when set (the service), holds what each bridge's flows were
	// last brought to; with Trust (a run set off by an OVSDB change, not a
	// resync) only the objects whose intent changed unexplained (see
	// unexplained) are sent, and a bridge is not asked for its flow counts:
	// on the userspace datapath that exchange waits an iteration of
	// ovs-vswitchd's main loop (~0.1 s at 1,000 ports), under the host
	// lock, and every attach set one off. Drift with no OVSDB change (flows
	// deleted by hand) is the resync's to find.
	Seen  Memory
	Trust bool
	Stats *Stats // counted when set (the service's metrics)
}

// Stats counts how runs brought bridges' flows to the intent.
type Stats struct {
	Checks  int // flow counts asked of a bridge (and whole tables compared on a mismatch)
	Updates int // changed objects sent to a bridge, no count asked
}

// Memory is, per bridge, the flow intent a service run last brought
// it to and the OpenFlow connection (Switch.Epoch) it checked over.
type Memory map[string]flowsSeen

type flowsSeen struct {
	epoch  uint64
	prints map[uint64]string
	counts map[uint64]int // flows per cookie
	total  int
}

// remember makes the flowsSeen of intent fi with flow counts counts.
func remember(epoch uint64, fi *flowIntent, counts map[uint64]int) flowsSeen {
	fs := flowsSeen{epoch: epoch, prints: fi.prints, counts: counts}
	for _, n := range counts {
		fs.total += n
	}
	return fs
}

// Run is one convergence run: interrupted del-brs first, then, bridge by
// bridge, its addresses and OpenFlow settings, tunnels, flows, allocation
// hints and ports (interrupted attaches and detaches, internal ports a
// restarted ovs-vswitchd re-created, veths), with NAT rules alongside.
func (h *Converger) Run(ctx context.Context, o Options) (r Result, err error) {
	tr := steptime.New()
	defer tr.Done("reconcile")
	var c changes
	topo, hostLinks, err := h.prepare(ctx, o, &c, tr)
	if err != nil {
		return r, errors.Join(append(c.errs, err)...)
	}
	r.Topo = topo
	// NAT rules follow from the same topology and touch only iptables: they
	// are checked meanwhile (iptables runs processes; the flow check waits
	// on ovs-vswitchd).
	natDone := make(chan natResult, 1)
	go func() { natDone <- h.convergeNAT(ctx, topo, o) }()
	c.errs = append(c.errs, mesh.ConvergeUnderlays(topo, hostLinks)...)
	var ovnPorts []vswitchd.Interface
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if bi := intent.DecodeBridge(b.Name, b.ExternalIDs); !bi.Owned || bi.Deleting {
			// Not ovsnet's (OVN's integration bridge: its ports of
			// ovsnet's), or a del-br finishDeletes could not finish.
			ovnPorts = append(ovnPorts, h.convergeOVNPorts(ctx, topo, b, bridgeRun{o: o, links: hostLinks, c: &c, tr: tr})...)
			continue
		}
		r.Bad = append(r.Bad, h.convergeBridge(ctx, topo, b, bridgeRun{o: o, links: hostLinks, c: &c, tr: tr})...)
	}
	var ov ovn.Converged
	if !o.Trust { // the northbound database: a full run's
		var err error
		ov, err = ovn.Converge(ctx, h.host, ovnPorts)
		c.addAll(ov.Did, err)
		c.notes, r.Bad = append(c.notes, ov.Notes...), append(r.Bad, ov.Bad...)
	}
	tr.Step("ports")
	for name := range o.Seen { // a bridge gone: nothing to watch
		if b := topo.Bridge(name); b == nil || !intent.Owned(b.ExternalIDs) {
			delete(o.Seen, name)
		}
	}
	nr := <-natDone
	tr.Step(fmt.Sprintf("NAT (%.2fms, alongside)", steptime.MS(nr.dur)))
	c.addAll(nr.did, nr.err)
	if ov.GatewaysGone { // NAT ran on the topology with them: again without
		if topo, err := h.host.DB.ReadAllFresh(ctx); err != nil {
			c.errs = append(c.errs, err)
		} else {
			nr = h.convergeNAT(ctx, topo, Options{})
			c.addAll(nr.did, nr.err)
		}
	}
	r.Did, r.Notes = c.did, c.notes
	return r, errors.Join(c.errs...)
}

// prepare reads the topology (o.Topo, or OVSDB now), finishes interrupted
// del-brs first (reading again after them), and lists the host's links.
func (h *Converger) prepare(ctx context.Context, o Options, c *changes, tr *steptime.Tracer) (*ovsdb.Topology, *attach.HostLinks, error) {
	topo, links := o.Topo, o.Links
	var err error
	if topo == nil {
		if topo, err = h.host.DB.ReadAllFresh(ctx); err != nil {
			return nil, nil, err
		}
	}
	if d, err := h.finishDeletes(ctx, topo); len(d) > 0 || err != nil {
		c.did, c.errs = append(c.did, d...), append(c.errs, err)
		if topo, err = h.host.DB.ReadAllFresh(ctx); err != nil {
			return nil, nil, err
		}
		links = nil // devices went with the bridges: list them again
	}
	tr.Step("read OVSDB")
	if links == nil {
		if links, err = attach.ListHostLinks(ProbeLink(topo)); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	tr.Step("list links")
	return topo, links, nil
}

// natResult is what the NAT half of a run did.
type natResult struct {
	did []string
	err error
	dur time.Duration
}

// convergeNAT brings iptables to the topology's NAT plan, unless o says
// the plan is the one last brought (o.NATSeen) and no check is due.
func (h *Converger) convergeNAT(ctx context.Context, topo *ovsdb.Topology, o Options) natResult {
	t := time.Now()
	var r natResult
	plan := natplan.Of(topo)
	key := plan.Key()
	if o.NATSeen == nil || o.NATCheck || *o.NATSeen != key {
		r.did, r.err = h.host.NAT().Sync(ctx, plan)
		if r.err == nil && o.NATSeen != nil {
			*o.NATSeen = key
		}
	}
	r.dur = time.Since(t)
	return r
}

// bridgeRun is what converging one bridge needs from its run.
type bridgeRun struct {
	o     Options
	links *attach.HostLinks
	c     *changes
	tr    *steptime.Tracer
	ovn   bool // OVN's integration bridge: its flows are OVN's
}

// convergeOVNPorts converges ovsnet's ports on bridge b, which is not
// ovsnet's: OVN's integration bridge, whose flows ovn-controller keeps.
// The port steps are a bridge's (interrupted attaches and detaches,
// internal ports a restarted ovs-vswitchd re-created, veths). It returns
// the ports.
func (h *Converger) convergeOVNPorts(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge, br bridgeRun) []vswitchd.Interface {
	all, allPorts := topo.BridgeInterfaces(b)
	var ifs, mine []vswitchd.Interface
	var ports []vswitchd.Port
	for j, i := range all {
		if !intent.Owned(i.ExternalIDs) || i.ExternalIDs[intent.KeyOVNNetwork] == "" {
			continue
		}
		mine = append(mine, i)
		if _, gw := i.ExternalIDs[intent.KeyOVNGateway]; gw { // the chassis' gateway on a network
			did, err := ovn.ConvergeGateway(i, br.links.Get(i.Name))
			br.c.addAll(did, err)
			continue
		}
		ifs, ports = append(ifs, i), append(ports, allPorts[j])
	}
	if len(ifs) > 0 {
		br.ovn = true
		h.reconcilePorts(ctx, b, ifs, ports, br, br.c)
	}
	return mine
}

// convergeBridge brings ovsnet bridge b to its intent: its addresses and
// OpenFlow settings, tunnels, flows, allocation hints and ports. It
// returns the intent of b and its interfaces that does not decode.
func (h *Converger) convergeBridge(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge, br bridgeRun) []error {
	c := br.c
	ifs, ports := topo.BridgeInterfaces(b)
	tell := h.host.Tell()
	tell.Phase("reconcile "+b.Name+" (flows, then ports)", len(ifs)+1)
	decoded := flowmodel.DecodePorts(ifs, ports)
	bad := flowmodel.BadIntentOf(b, decoded)
	if err := datapath.CheckKernel(b); err != nil {
		c.add("", err) // nothing here can bring it back
		return bad
	}
	if intent.DecodeBridge(b.Name, b.ExternalIDs).SubnetsErr == nil { // else its addresses stay as they are
		c.addAll(h.host.ConvergeBridge(ctx, b.Name, b.ExternalIDs))
	}
	if b.FailMode == nil || *b.FailMode != ovsdb.FailMode || len(b.Protocols) != len(ovsdb.Protocols) {
		_, err := h.host.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeOpenFlow(b.Name) })
		c.add(fmt.Sprintf("set %s to fail_mode=%s, protocols %s", b.Name, ovsdb.FailMode, strings.Join(ovsdb.Protocols, ",")), err)
	}
	if !intent.DecodeBridge(b.Name, b.ExternalIDs).NDProbed {
		b = h.probeND(ctx, b, c)
	}
	c.addAll(tunnel.Converge(ctx, h.host, topo, b))
	if ms := intent.DecodeBridge(b.Name, b.ExternalIDs).Mirrors; len(ms) > 0 || !br.o.Quick {
		// Quick runs only where the bridge has mirrors; rows of mirrors no
		// longer intended go either way.
		c.addAll(mirror.Converge(ctx, h.host, b.Name, ms, true))
	}
	br.tr.Step("bridge " + b.Name)
	fd, asked, err := h.convergeFlows(ctx, topo, b, decoded, br.o)
	if asked {
		br.tr.Step("flows " + b.Name)
	} else {
		br.tr.Step("flows " + b.Name + " (no exchange)")
	}
	c.add(fd, err)
	tell.Add(1)
	if intent.BadAddress(bad) {
		// An address that does not parse may still be in use: no hint
		// goes below it.
		c.notes = append(c.notes, fmt.Sprintf("%s's allocation hints left as they are: a port's address does not parse", b.Name))
	} else {
		c.addAll(convergeAlloc(ctx, h.host.DB, b, ifs))
	}
	return append(bad, h.reconcilePorts(ctx, b, ifs, ports, br, c)...)
}

// probeND records how bridge b's datapath takes neighbour solicitations,
// for a bridge made before ovsnet recorded it (or whose record does not
// decode), and returns b as it is now.
func (h *Converger) probeND(ctx context.Context, b *vswitchd.Bridge, c *changes) *vswitchd.Bridge {
	nd, err := bridge.ProbeND(ctx, h.host, b.Name, datapath.Of(b))
	if err != nil {
		c.add("", err)
		return b
	}
	nb := *b
	nb.ExternalIDs = maps.Clone(b.ExternalIDs)
	maps.Copy(nb.ExternalIDs, nd)
	c.add(fmt.Sprintf("probed %s's datapath: neighbour solicitations %s", b.Name, map[bool]string{true: "answered by flows", false: "relayed to their owners"}[nd[intent.KeyND] == intent.NDAnswer]), nil)
	return &nb
}

// finishDeletes completes the del-br of bridges a killed del-br left
// marked deleting, before anything else converges (their NAT rules and
// devices go with them).
func (h *Converger) finishDeletes(ctx context.Context, topo *ovsdb.Topology) ([]string, error) {
	var did []string
	var errs []error
	for _, name := range unfinishedDeletes(topo) {
		if err := bridge.Del(ctx, h.host, name); err != nil {
			errs = append(errs, fmt.Errorf("finish del-br %s: %w", name, err))
			continue
		}
		did = append(did, "finished interrupted del-br of "+name)
	}
	return did, errors.Join(errs...)
}

// changes collects what a reconcile did, noted and failed at.
type changes struct {
	did, notes []string
	errs       []error
}

// add records one step's result: an error, or what it did ("": nothing).
func (c *changes) add(did string, err error) {
	if err != nil {
		c.errs = append(c.errs, err)
	} else if did != "" {
		c.did = append(c.did, did)
	}
}

// addAll records a step that did several things, and may have failed
// after some of them.
func (c *changes) addAll(did []string, err error) {
	c.did = append(c.did, did...)
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

// reconcilePorts finishes bridge b's interrupted attaches and detaches,
// re-attaches the internal ports a restarted ovs-vswitchd re-created,
// keeps its veths' offloads and links as they should be, and (full runs)
// containers' impairments in place. It returns the impairments that do
// not decode.
func (h *Converger) reconcilePorts(ctx context.Context, b *vswitchd.Bridge, ifs []vswitchd.Interface, ports []vswitchd.Port, br bridgeRun, c *changes) (bad []error) {
	hostLinks := br.links
	// What a veth here needs, worked out at the first one met; not known
	// while the bridge's own port is missing (ovs-vswitchd restarting), and
	// then nothing changes.
	vethOff := sync.OnceValues(func() (off, known bool) {
		known = true
		dp := datapath.Of(b)
		off = datapath.NoTxOffload(intent.DecodeBridge(b.Name, b.ExternalIDs), attach.TypeVeth, dp, func() bool {
			l := hostLinks.Get(b.Name)
			known = l != nil
			return attach.TSOActive(l)
		})
		// OVN's Geneve on the userspace datapath cannot take offloaded
		// packets (as the OVN allocator set it).
		return off || br.ovn && dp == datapath.Netdev, known
	})
	tell := h.host.Tell()
	for j, ifc := range ifs {
		tell.Add(1)
		step := planPort(ifc)
		if step == finishDetach || step == finishAttach {
			var err error
			if ifc, step, err = h.settled(ctx, ifc); err != nil {
				c.add("", err)
				continue
			}
		}
		switch step {
		case finishDetach:
			c.add(h.host.FinishDetach(ctx, b.Name, ifc, ports[j]))
		case finishAttach:
			c.add(completeAttach(ctx, h.host, ifc))
		case reattachInternal:
			c.add(putBackInternal(ifc, hostLinks.Get(ifc.Name)))
		case checkVeth:
			if !br.o.Quick && hostLinks.Has(ifc.Name) && !attach.HostEndSealed(ifc.Name) {
				// A veth made before its host end was sealed: a full run
				// (three sysctl reads a veth) seals it.
				attach.SealHostEnd(ifc.Name)
				c.add("kept the host's stack off veth host end "+ifc.Name, nil)
			}
			h.reconcileVeth(ctx, ifc, vethOff, hostLinks, c)
		case checkPooled:
			c.add(pool.Check(ctx, h.host, b.Name, ifc, ports[j], hostLinks))
		}
		if !br.o.Quick && (step == checkVeth || step == reattachInternal) {
			bad = append(bad, convergeQueues(ctx, ifc, c)...)
		}
	}
	return bad
}

// settled plans again, from the row as the database holds it now, an
// interface that the run's topology shows half attached or half detached.
// That topology may come from the monitor's cache, caught up with the
// bridge's generation (bumped by an attach's commit) but not yet with the
// attach's later mark "ready": undoing an attach its runtime was told had
// worked would take a working container off the network. The convergence
// lock keeps every attach and detach out while this runs, so a row still
// half-made in the database is one whose process died.
func (h *Converger) settled(ctx context.Context, ifc vswitchd.Interface) (vswitchd.Interface, portStep, error) {
	now, err := h.host.DB.InterfaceNow(ctx, ifc.UUID)
	if err != nil {
		return ifc, leave, fmt.Errorf("read %s before finishing what its process left: %w", ifc.Name, err)
	}
	if now == nil {
		return ifc, leave, nil // gone: a detach finished it
	}
	return *now, planPort(*now), nil
}

// reconcileVeth turns a veth's offloads on or off as the running
// ovs-vswitchd needs (off: what it needs, if known) and sets its host end
// up.
func (h *Converger) reconcileVeth(ctx context.Context, ifc vswitchd.Interface, off func() (bool, bool), hostLinks *attach.HostLinks, c *changes) {
	// A veth whose host end is gone has nothing to change (its container
	// deleted it, or is gone: the note below, and GC).
	if off, known := off(); known && off != intent.RefOf(ifc.ExternalIDs).NoTxOffload && hostLinks.Has(ifc.Name) {
		c.add(datapath.ConvergeTxOffload(ctx, h.host.DB, ifc, off))
	}
	if ifc.LinkState != nil && *ifc.LinkState == "up" {
		return // carrier: both ends are up
	}
	l := hostLinks.Get(ifc.Name)
	if l == nil {
		// The container (and so the veth) is gone: garbage collection of
		// such ports belongs to the controller service.
		c.notes = append(c.notes, fmt.Sprintf("veth %s of %s is missing", ifc.Name, network.OwnerOf(ifc)))
		return
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			c.add("", fmt.Errorf("set %s up: %w", ifc.Name, err))
			return
		}
		c.add("set "+ifc.Name+" up", nil)
	}
}

// convergeFlows brings bridge b's flows to the topology's intent and
// remembers it for the next run. With Options.seen and trust, over the same
// unbroken connection as the last run, it sends only the objects whose
// intent changed unexplained (none, after an attach or a detach); else
// it compares flow counts (asked: a round trip to ovs-vswitchd) and, on a
// mismatch, the whole table.
func (h *Converger) convergeFlows(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge, d flowmodel.DecodedPorts, o Options) (did string, asked bool, err error) {
	fi, err := h.intendedFlows(ctx, topo, b, d)
	if err != nil {
		delete(o.Seen, b.Name)
		return "", false, err
	}
	if last, ok := o.Seen[b.Name]; ok && o.Trust {
		if epoch, open := h.host.Flows.Epoch(b.Name); open && epoch == last.epoch {
			chs := unexplained(last.prints, fi)
			if len(chs) > 0 {
				// A new connection (the epoch changes) means a check next run.
				err = h.host.Flows.Apply(b.Name, chs...)
				if o.Stats != nil {
					o.Stats.Updates++
				}
			}
			if err != nil {
				delete(o.Seen, b.Name)
				return "", len(chs) > 0, err
			}
			// Flows are made only for the objects that changed, and once:
			// those just sent are counted from the bundle.
			sent := make(map[uint64]int, len(chs))
			for _, ch := range chs {
				sent[ch.Cookie] = len(ch.Flows)
			}
			counts := make(map[uint64]int, len(fi.prints))
			for c, p := range fi.prints {
				if n, ok := last.counts[c]; ok && last.prints[c] == p {
					counts[c] = n
				} else if n, ok := sent[c]; ok {
					counts[c] = n
				} else {
					counts[c] = len(fi.of(c))
				}
			}
			o.Seen[b.Name] = remember(epoch, fi, counts)
			return "", len(chs) > 0, nil
		}
	}
	fs := fi.all()
	added, removed, err := h.syncBridgeFlows(b.Name, fs, fi.meters(), o.Quick)
	if o.Stats != nil {
		o.Stats.Checks++
	}
	if o.Seen != nil {
		if epoch, _ := h.host.Flows.Epoch(b.Name); err == nil && epoch != 0 {
			o.Seen[b.Name] = remember(epoch, fi, countByCookie(fs))
		} else {
			delete(o.Seen, b.Name) // the next run checks
		}
	}
	if err != nil || added+removed == 0 {
		return "", true, err
	}
	return fmt.Sprintf("resynced flows on %s: %d added, %d removed", b.Name, added, removed), true, nil
}

// probeLink names a link that must be in the host's netns: an ovsnet
// bridge's own port.
func ProbeLink(topo *ovsdb.Topology) string {
	for _, b := range topo.Bridges {
		if intent.Owned(b.ExternalIDs) {
			return b.Name
		}
	}
	return ""
}

// New returns a Converger for host h.
func New(h *network.Host) *Converger { return &Converger{host: h} }

// Converger runs convergence on one host (its operations are the host's:
// each object converges through network.Host). The controller keeps one
// for its life: it holds what runs remember between them (Options.Seen and
// NATSeen) and flow counts asked for ahead (Prefetch).
type Converger struct {
	host *network.Host

	earlyMu sync.Mutex
	early   map[string]chan earlyCounts // flow counts asked for ahead (Prefetch)
}

// Total is the number of flows bridge had when a run last brought it to
// its intent (0 after an error).
func (m Memory) Total(bridge string) int { return m[bridge].total }

// Broken says whether a bridge's flows may be gone since the last run
// brought them to the intent: the OpenFlow connection it checked over was
// closed by ovs-vswitchd, or replaced.
func (m Memory) Broken(sw network.OpenFlow) bool {
	for b, seen := range m {
		if epoch, open := sw.Epoch(b); !open || epoch != seen.epoch {
			return true
		}
	}
	return false
}

// convergeQueues puts back an interface's impairment and rate limit where
// its container's side or host end lost them; it returns the ones that do
// not decode.
func convergeQueues(ctx context.Context, ifc vswitchd.Interface, c *changes) (bad []error) {
	for _, q := range []struct {
		key      string
		converge func(context.Context, vswitchd.Interface) (string, error)
	}{{intent.KeyImpair, impair.Converge}, {intent.KeyRate, ratelimit.Converge}} {
		if _, has := ifc.ExternalIDs[q.key]; !has {
			continue
		}
		did, err := q.converge(ctx, ifc)
		if errors.Is(err, intent.ErrBad) {
			bad = append(bad, err)
			continue
		}
		c.add(did, err)
	}
	return bad
}
