package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Reconcile converges everything derived from the intent in OVSDB: for
// now each ovsnet bridge's gateway addresses, MTU and link state, and the
// host ends of veths. It returns what it changed (a second run changes
// nothing) and notes on what it found but leaves to others.
// bad lists the intent that does not decode (IntentError), each treated
// as strictly as it can be; the rest converges meanwhile.
func (h *Host) Reconcile(ctx context.Context) (did, notes []string, bad []error, err error) {
	r, err := h.reconcile(ctx, pass{})
	return r.did, r.notes, r.bad, err
}

// result is what one reconcile did and found.
type result struct {
	did, notes []string
	bad        []error // intent that does not decode
	topo       *ovsdb.Topology
}

// pass says how one reconcile runs.
type pass struct {
	topo  *ovsdb.Topology   // what to converge to (nil: read OVSDB now)
	links *attach.HostLinks // the host's links (nil: list them now)
	quick bool              // compare flow counts before whole tables
	// natSeen, when set, holds the NAT intent last brought to iptables:
	// a run whose intent is the same skips iptables (tens of ms of
	// iptables processes, which every attach's convergence paid) unless
	// natCheck. The service checks on every resync, as drift in iptables
	// does not show in OVSDB anyway.
	natSeen  *string
	natCheck bool
	// seen, when set (the service), holds what each bridge's flows were
	// last brought to; with trust (a run set off by an OVSDB change, not a
	// resync) only the objects whose intent changed unexplained (see
	// unexplained) are sent, and a bridge is not asked for its flow counts:
	// on the userspace datapath that exchange waits an iteration of
	// ovs-vswitchd's main loop (~0.1 s at 1,000 ports), under the host
	// lock, and every attach set one off. Drift with no OVSDB change (flows
	// deleted by hand) is the resync's to find.
	seen  flowMemory
	trust bool
	stats *flowStats // counted when set (the service's metrics)
}

// flowStats counts how runs brought bridges' flows to the intent.
type flowStats struct {
	checks  int // flow counts asked of a bridge (and whole tables compared on a mismatch)
	updates int // changed objects sent to a bridge, no count asked
}

// flowMemory is, per bridge, the flow intent a service run last brought
// it to and the OpenFlow connection (Switch.Epoch) it checked over.
type flowMemory map[string]flowsSeen

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

// reconcile is Reconcile that also returns the topology it used, for the
// controller's gauges.
func (h *Host) reconcile(ctx context.Context, o pass) (r result, err error) {
	tr := newTracer()
	defer tr.done("reconcile")
	var did, notes []string
	topo := o.topo
	if topo == nil {
		if topo, err = h.DB.ReadAllFresh(ctx); err != nil {
			return r, err
		}
	}
	var errs []error
	if d, err := h.finishDeletes(ctx, topo); len(d) > 0 || err != nil {
		did, errs = append(did, d...), append(errs, err)
		if topo, err = h.DB.ReadAllFresh(ctx); err != nil {
			return r, errors.Join(append(errs, err)...)
		}
		o.links = nil // devices went with the bridges: list them again
	}
	r.topo = topo
	tr.step("read OVSDB")
	hostLinks := o.links
	if hostLinks == nil {
		if hostLinks, err = attach.ListHostLinks(probeLink(topo)); err != nil {
			errs = append(errs, err)
		}
	}
	tr.step("list links")
	// NAT rules follow from the same topology and touch only iptables: they
	// are checked meanwhile (iptables runs processes; the flow check waits
	// on ovs-vswitchd).
	type natResult struct {
		did []string
		err error
		dur time.Duration
	}
	natDone := make(chan natResult, 1)
	go func() {
		t := time.Now()
		var r natResult
		plan := planNAT(topo)
		key := plan.key()
		if o.natSeen == nil || o.natCheck || *o.natSeen != key {
			r.did, r.err = h.syncNAT(ctx, plan)
			if r.err == nil && o.natSeen != nil {
				*o.natSeen = key
			}
		}
		r.dur = time.Since(t)
		natDone <- r
	}()
	errs = append(errs, reconcileUnderlays(topo, hostLinks)...)
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if !intent.Owned(b.ExternalIDs) {
			continue
		}
		if intent.DecodeBridge(b.Name, b.ExternalIDs).Deleting {
			continue // finishDeletes could not finish it: reported
		}
		ifs, ports := topo.BridgeInterfaces(b)
		decoded := decodePorts(ifs, ports)
		bad := badIntentOf(b, decoded)
		r.bad = append(r.bad, bad...)
		var d []string
		if intent.DecodeBridge(b.Name, b.ExternalIDs).SubnetsErr == nil { // else its addresses stay as they are
			d, err = h.reconcileBridge(ctx, b.Name, b.ExternalIDs)
			did = append(did, d...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		if b.FailMode == nil || *b.FailMode != ovsdb.FailMode || len(b.Protocols) != len(ovsdb.Protocols) {
			if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeOpenFlow(b.Name) }); err != nil {
				errs = append(errs, err)
			} else {
				did = append(did, fmt.Sprintf("set %s to fail_mode=%s, protocols %s", b.Name, ovsdb.FailMode, strings.Join(ovsdb.Protocols, ",")))
			}
		}
		if d, err := h.reconcileTunnels(ctx, topo, b); err != nil {
			errs = append(errs, err)
		} else {
			did = append(did, d...)
		}
		tr.step("bridge " + b.Name)
		fd, asked, err := h.convergeFlows(ctx, topo, b, decoded, o)
		if asked {
			tr.step("flows " + b.Name)
		} else {
			tr.step("flows " + b.Name + " (no exchange)")
		}
		if err != nil {
			errs = append(errs, err)
		} else if fd != "" {
			did = append(did, fd)
		}
		if intent.BadAddress(bad) {
			// An address that does not parse may still be in use: no hint
			// goes below it.
			notes = append(notes, fmt.Sprintf("%s's allocation hints left as they are: a port's address does not parse", b.Name))
		} else {
			d, err = h.reconcileAlloc(ctx, b, ifs)
			did = append(did, d...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		var c changes
		h.reconcilePorts(ctx, b, ifs, ports, hostLinks, &c)
		did, notes, errs = append(did, c.did...), append(notes, c.notes...), append(errs, c.errs...)
	}
	tr.step("ports")
	for name := range o.seen { // a bridge gone: nothing to watch
		if b := topo.Bridge(name); b == nil || !intent.Owned(b.ExternalIDs) {
			delete(o.seen, name)
		}
	}
	nr := <-natDone
	tr.step(fmt.Sprintf("NAT (%.2fms, alongside)", ms(nr.dur)))
	if nr.err != nil {
		errs = append(errs, nr.err)
	} else {
		did = append(did, nr.did...)
	}
	r.did, r.notes = did, notes
	return r, errors.Join(errs...)
}

// finishDeletes completes the del-br of bridges a killed del-br left
// marked deleting, before anything else converges (their NAT rules and
// devices go with them).
func (h *Host) finishDeletes(ctx context.Context, topo *ovsdb.Topology) ([]string, error) {
	var did []string
	var errs []error
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if !intent.Owned(b.ExternalIDs) || !intent.DecodeBridge(b.Name, b.ExternalIDs).Deleting {
			continue
		}
		if err := h.DelBridge(ctx, b.Name); err != nil {
			errs = append(errs, fmt.Errorf("finish del-br %s: %w", b.Name, err))
			continue
		}
		did = append(did, "finished interrupted del-br of "+b.Name)
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

// reconcilePorts finishes bridge b's interrupted attaches and detaches,
// re-attaches the internal ports a restarted ovs-vswitchd re-created, and
// keeps its veths' offloads and links as they should be.
func (h *Host) reconcilePorts(ctx context.Context, b *vswitchd.Bridge, ifs []vswitchd.Interface, ports []vswitchd.Port, hostLinks *attach.HostLinks, c *changes) {
	// What a veth here needs, worked out at the first one met; not known
	// while the bridge's own port is missing (ovs-vswitchd restarting), and
	// then nothing changes.
	vethOff := sync.OnceValues(func() (off, known bool) {
		known = true
		off = noTxOffload(intent.DecodeBridge(b.Name, b.ExternalIDs), attach.TypeVeth, datapathOf(b), func() bool {
			l := hostLinks.Get(b.Name)
			known = l != nil
			return attach.TSOActive(l)
		})
		return off, known
	})
	for j, ifc := range ifs {
		ref := intent.RefOf(ifc.ExternalIDs)
		ours := ref.Owned
		switch {
		case ours && ref.State == intent.StateDetaching:
			c.add(h.finishDetach(ctx, b.Name, ifc, ports[j]))
		case ours && ref.State == intent.StateAttaching:
			c.add(h.finishAttach(ctx, ifc))
		case ours && ifc.Type == "internal":
			c.add(reattachInternal(ifc, hostLinks.Get(ifc.Name)))
		case ours && ifc.Type == "":
			h.reconcileVeth(ctx, ifc, vethOff, hostLinks, c)
		}
	}
}

// reconcileVeth turns a veth's offloads on or off as the running
// ovs-vswitchd needs (off: what it needs, if known) and sets its host end
// up.
func (h *Host) reconcileVeth(ctx context.Context, ifc vswitchd.Interface, off func() (bool, bool), hostLinks *attach.HostLinks, c *changes) {
	// A veth whose host end is gone has nothing to change (its container
	// deleted it, or is gone: the note below, and GC).
	if off, known := off(); known && off != intent.RefOf(ifc.ExternalIDs).NoTxOffload && hostLinks.Has(ifc.Name) {
		c.add(h.convergeTxOffload(ctx, ifc, off))
	}
	if ifc.LinkState != nil && *ifc.LinkState == "up" {
		return // carrier: both ends are up
	}
	l := hostLinks.Get(ifc.Name)
	if l == nil {
		// The container (and so the veth) is gone: garbage collection of
		// such ports belongs to the controller service.
		c.notes = append(c.notes, fmt.Sprintf("veth %s of %s is missing", ifc.Name, ownerOf(ifc)))
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
// remembers it for the next run. With pass.seen and trust, over the same
// unbroken connection as the last run, it sends only the objects whose
// intent changed unexplained (none, after an attach or a detach); else
// it compares flow counts (asked: a round trip to ovs-vswitchd) and, on a
// mismatch, the whole table.
func (h *Host) convergeFlows(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge, d decodedPorts, o pass) (did string, asked bool, err error) {
	fi, err := h.intendedFlows(ctx, topo, b, d)
	if err != nil {
		delete(o.seen, b.Name)
		return "", false, err
	}
	if last, ok := o.seen[b.Name]; ok && o.trust {
		if epoch, open := h.Flows.Epoch(b.Name); open && epoch == last.epoch {
			chs := unexplained(last.prints, fi)
			if len(chs) > 0 {
				// A new connection (the epoch changes) means a check next run.
				err = h.Flows.Apply(b.Name, chs...)
				if o.stats != nil {
					o.stats.updates++
				}
			}
			if err != nil {
				delete(o.seen, b.Name)
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
			o.seen[b.Name] = remember(epoch, fi, counts)
			return "", len(chs) > 0, nil
		}
	}
	fs := fi.all()
	added, removed, err := h.syncBridgeFlows(b.Name, fs, o.quick)
	if o.stats != nil {
		o.stats.checks++
	}
	if o.seen != nil {
		if epoch, _ := h.Flows.Epoch(b.Name); err == nil && epoch != 0 {
			o.seen[b.Name] = remember(epoch, fi, countByCookie(fs))
		} else {
			delete(o.seen, b.Name) // the next run checks
		}
	}
	if err != nil || added+removed == 0 {
		return "", true, err
	}
	return fmt.Sprintf("resynced flows on %s: %d added, %d removed", b.Name, added, removed), true, nil
}

// probeLink names a link that must be in the host's netns: an ovsnet
// bridge's own port.
func probeLink(topo *ovsdb.Topology) string {
	for _, b := range topo.Bridges {
		if intent.Owned(b.ExternalIDs) {
			return b.Name
		}
	}
	return ""
}

// reconcileAlloc repairs a bridge's allocation state after ports were
// removed behind ovsnet's back (ovs-vsctl del-port): address hints above a
// free address are lowered. (A stale port counter needs no repair: attaches
// probe the numbers they take.)
func (h *Host) reconcileAlloc(ctx context.Context, b *vswitchd.Bridge, ifs []vswitchd.Interface) ([]string, error) {
	bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
	if bi.SubnetsErr != nil {
		return nil, bi.SubnetsErr
	}
	var al intent.Alloc
	var did []string
	used := usedAddrs(ifs)
	for _, s := range bi.Subnets {
		low, err := ipam.Allocate(s, used)
		if err != nil {
			continue // full: no hint can be wrong
		}
		if hint := bi.Hints[low.Addr().Is4()]; hint.IsValid() && low.Addr().Less(hint) {
			al.Hints = append(al.Hints, low.Addr())
			did = append(did, fmt.Sprintf("lowered %s's %s hint to free address %s", b.Name, ipam.Family(low.Addr()), low.Addr()))
		}
	}
	if len(al.Hints) == 0 {
		return nil, nil
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.GuardBridge(b.Name, b.ExternalIDs, al.Encode()) }); err != nil {
		if errors.Is(err, ovsdb.ErrConflict) {
			return nil, fmt.Errorf("bridge %s changed while reconciling: run reconcile again", b.Name)
		}
		return nil, err
	}
	return did, nil
}

// reattachInternal puts an internal port back into its container after
// ovs-vswitchd restarted. On the userspace datapath a restarted
// ovs-vswitchd cannot reopen a tap that lives in another namespace: it makes
// a new one in its own, and the container keeps a dead one. A tap of the
// port's name in this namespace is that sign. It is moved once
// ovs-vswitchd has finished adding it (promiscuous mode is its last step),
// and configured from the intent in OVSDB.
func reattachInternal(ifc vswitchd.Interface, l netlink.Link) (string, error) {
	if l == nil {
		return "", nil // in its container, as it should be
	}
	if l.Attrs().Promisc == 0 {
		return "", nil // ovs-vswitchd is still adding it: next run
	}
	ref := intent.RefOf(ifc.ExternalIDs)
	ns := ref.Netns
	if !attach.NetnsExists(ns) {
		return "", nil // the container is gone: garbage collection's job
	}
	cfg, err := configFromIntent(ifc)
	if err != nil {
		return "", nil // bad intent, reported as such: nothing to configure from
	}
	if err := attach.DeleteInternal(ns, cfg.Name); err != nil {
		return "", err
	}
	if err := attach.MoveIn(ifc.Name, ns); err != nil {
		return "", err
	}
	if err := attach.Configure(ns, ifc.Name, cfg); err != nil {
		return "", fmt.Errorf("re-attach %s: %w", ifc.Name, err)
	}
	return fmt.Sprintf("re-attached internal port %s to %s/%s after an ovs-vswitchd restart", ifc.Name, ref.Container, cfg.Name), nil
}

// convergeTxOffload turns a ready veth's TX offload on or off (off) as the
// running ovs-vswitchd needs (noTxOffload) and records it: restarted with
// userspace TSO turned off, it would otherwise stall TCP over every veth
// attached while TSO was on; turned on, it lets older veths keep their
// offloads.
func (h *Host) convergeTxOffload(ctx context.Context, ifc vswitchd.Interface, off bool) (string, error) {
	ref := intent.RefOf(ifc.ExternalIDs)
	ns := ref.Netns
	if !attach.NetnsExists(ns) {
		return "", nil // the container is gone: garbage collection's job
	}
	if err := attach.SetVethTxOffload(ifc.Name, ns, ref.Iface, !off); err != nil {
		return "", err
	}
	set, del := intent.TxOffload(off)
	how := "off (ovs-vswitchd runs without userspace TSO)"
	if !off {
		how = "on (ovs-vswitchd runs with userspace TSO)"
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifc.UUID, set, del...) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("turned TX offload %s on veth %s of %s", how, ifc.Name, ownerOf(ifc)), nil
}

// configFromIntent is the container-side configuration stored in OVSDB
// for interface ifc; an error if its intent does not decode (nothing is
// configured from it: reconcile reports it as bad intent).
func configFromIntent(ifc vswitchd.Interface) (attach.Config, error) {
	pi, err := intent.DecodePort(ifaceRow(ifc), ifc.ExternalIDs)
	return portConfig(pi, attach.RouteIfNone), err
}

// finishAttach completes an attach whose process died after committing its
// row (the host lock guarantees no live process is still at it): the
// container side is configured from OVSDB, or, if its link is gone, the
// port is removed.
func (h *Host) finishAttach(ctx context.Context, ifc vswitchd.Interface) (string, error) {
	ref := intent.RefOf(ifc.ExternalIDs)
	ns := ref.Netns
	cfg, err := configFromIntent(ifc)
	if err != nil {
		return "", fmt.Errorf("finish attach of %s: %w", ifc.Name, err)
	}
	cur := cfg.Name
	if ifc.Type == "internal" {
		if _, err := netlink.LinkByName(ifc.Name); err == nil && attach.NetnsExists(ns) {
			if err := attach.MoveIn(ifc.Name, ns); err != nil {
				return "", err
			}
		}
		if ok, _ := attach.HasLink(ns, ifc.Name); ok {
			cur = ifc.Name // moved but not renamed yet
		}
	}
	ok := false
	if attach.NetnsExists(ns) {
		ok, _ = attach.HasLink(ns, cur)
	}
	if !ok {
		// Nothing to finish: take the half-made port away.
		port, err := h.DB.PortOn(ctx, ref.Bridge, ifc.UUID)
		if err != nil || port == nil {
			return "", err
		}
		if err := h.detach(ctx, ref.Bridge, []vswitchd.Interface{ifc}, []vswitchd.Port{*port}); err != nil {
			return "", err
		}
		return fmt.Sprintf("removed half-made port %s of %s", ifc.Name, ownerOf(ifc)), nil
	}
	if err := attach.Configure(ns, cur, cfg); err != nil {
		return "", fmt.Errorf("finish attach of %s: %w", ifc.Name, err)
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifc.UUID, intent.State(intent.StateReady)) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("finished interrupted attach of %s (%s)", ifc.Name, ownerOf(ifc)), nil
}
