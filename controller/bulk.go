package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// bulkWorkers bounds the goroutines doing per-container kernel work (netns
// handles, veth creation, addresses) in a bulk attach. The kernel
// serializes most of it under its RTNL lock: 1 to 16 workers measured within
// noise of each other on 2 cores (OVSNET_BULK_WORKERS overrides, for such
// measurements).
var bulkWorkers = envInt("OVSNET_BULK_WORKERS", 8)

// bulkItem is one container of a bulk attach as it goes through the steps.
type bulkItem struct {
	o      PortOptions
	rq     *portRequest
	host   string
	typ    string
	netns  string
	intent PortIntent    // what its row will say
	cfg    attach.Config // what its container's interface gets (intent.Config)
	addrs  []netip.Prefix
	ofport int
	veth   bool // its veth exists (to roll back)
}

// AddPorts attaches many containers to one bridge in one go: the checks and
// allocations from one read of the bridge, one OVSDB transaction for every
// port, one wait on ovs-vswitchd, one flow bundle, and the per-container
// kernel work spread over a few goroutines. It is all or nothing: on any
// failure every port, link and address it made is removed again.
// Publishing (-p) is not part of a bulk attach: publish afterwards.
func (h *Host) AddPorts(ctx context.Context, bridge string, specs []PortOptions) ([]*Port, error) {
	tr := newTracer()
	defer tr.done(fmt.Sprintf("add-ports (%d)", len(specs)))
	if err := CheckIfName("bridge", bridge); err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, nil
	}
	h.Flows.Prepare(bridge)
	items := make([]*bulkItem, len(specs))
	seen := map[string]int{}
	for i, o := range specs {
		o.Bridge = bridge
		if len(o.Publish) > 0 {
			return nil, fmt.Errorf("line %d: -p is not supported by add-ports: publish afterwards with `ovsnet publish`", i+1)
		}
		rq, err := parsePortOptions(o)
		if err != nil {
			return nil, fmt.Errorf("line %d (%s %s): %w", i+1, o.Iface, o.Container, err)
		}
		key := o.Container + "\x00" + o.Iface
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d repeats line %d (%s %s)", i+1, j+1, o.Iface, o.Container)
		}
		seen[key] = i
		items[i] = &bulkItem{o: o, rq: rq, host: attach.HostName(bridge, o.Container, o.Iface)}
	}

	// Containers first (Docker's API, netns paths): nothing is touched yet.
	if err := parallel(items, func(it *bulkItem) error {
		t, err := attach.Resolve(ctx, it.o.Container)
		if err != nil {
			return err
		}
		it.netns = t.Netns
		return nil
	}); err != nil {
		return nil, err
	}
	tr.step("resolve containers")

	var (
		br       *vswitchd.Bridge
		set      map[string]string
		uuidsIf  []string
		portUUID []string
	)
	for attempt := 0; ; attempt++ {
		var err error
		br, set, err = h.bulkAllocate(ctx, bridge, items)
		if err != nil {
			return nil, err
		}
		if attempt == 0 {
			tr.step("read and allocate")
			// Veths exist before their rows, as in add-port.
			if err := parallel(items, func(it *bulkItem) error {
				if has, err := attach.HasLink(it.netns, it.o.Iface); err != nil {
					return fmt.Errorf("container %s: %w", it.o.Container, err)
				} else if has {
					return fmt.Errorf("interface %s already present in container %s: choose another INTERFACE name", it.o.Iface, it.o.Container)
				}
				if it.typ != attach.TypeVeth {
					return nil
				}
				attach.DeleteLink(it.host) // leftover of an interrupted attach
				if err := attach.CreateVeth(it.host, it.netns, it.cfg); err != nil {
					return err
				}
				it.veth = true
				return nil
			}); err != nil {
				bulkDeleteVeths(items)
				return nil, err
			}
			tr.step("create veths")
		}
		var specs []ovsdb.PortSpec
		for _, it := range items {
			specs = append(specs, it.portSpec())
		}
		guard := ovsdb.GuardBridge(bridge, br.ExternalIDs, set)
		res, err := h.DB.Commit(ctx, append(guard, ovsdb.AddPorts(bridge, specs...)...))
		if err == nil {
			// The guard, then per port: interface, port; then the bridge mutation.
			for i := range items {
				uuidsIf = append(uuidsIf, res[len(guard)+2*i].UUID.GoUUID)
				portUUID = append(portUUID, res[len(guard)+2*i+1].UUID.GoUUID)
			}
			break
		}
		if !errors.Is(err, ovsdb.ErrConflict) || attempt >= maxAttempts {
			bulkDeleteVeths(items)
			return nil, fmt.Errorf("attach %d containers to %s: %w", len(items), bridge, err)
		}
		// Another writer changed the bridge first: allocate again. The veths
		// keep their names; their MACs follow the new addresses below.
		time.Sleep(backoff(attempt))
	}
	tr.step("commit ports")

	rollback := func(cause error) error {
		var freed []netip.Addr
		var names []string
		for _, it := range items {
			for _, a := range it.addrs {
				freed = append(freed, a.Addr())
			}
			names = append(names, it.host)
		}
		bg := context.Background()
		err := h.removePorts(bg, bridge, portUUID, freed)
		if err == nil {
			var chs []flows.Change
			for _, n := range names {
				chs = append(chs, flows.Change{Cookie: flows.PortCookie(n), Mask: flows.ObjectMask})
			}
			err = h.Flows.ApplySpread(bridge, chs...)
		}
		bulkDeleteVeths(items)
		if err != nil {
			return fmt.Errorf("%w (and rolling back failed: %v)", cause, err)
		}
		return cause
	}

	// One wait on ovs-vswitchd for every port's number, with the flows for
	// the requested numbers going in meanwhile; a port that got another
	// number (taken by a port ovsnet does not know) gets its flows again.
	install := func() error {
		containers := map[string]bool{}
		var chs []flows.Change
		for _, it := range items {
			containers[it.o.Container] = true
			chs = append(chs, flows.Change{Cookie: flows.PortCookie(it.host), Mask: flows.ObjectMask, Flows: flows.PortFlows(it.intent.FlowPort(it.host, it.ofport, it.o.VLAN))})
		}
		lchs, err := h.linkChanges(ctx, bridge, br.ExternalIDs, func(s, d string) bool { return containers[s] || containers[d] }, nil)
		if err != nil {
			return err
		}
		// Spread over parallel connections: at scale ovs-vswitchd reads
		// only so many messages per connection and main-loop iteration.
		// A failure rolls back every new port's flows.
		return h.Flows.ApplySpread(bridge, append(chs, lchs...)...)
	}
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = it.host
	}
	// Veths' container ends need nothing from ovs-vswitchd: they are
	// configured while it adds the ports (measured: 1,000 veths took it
	// 3.5 s, the containers' side 4 s).
	configure := func(it *bulkItem) error {
		cur := it.o.Iface
		if it.typ == attach.TypeInternal {
			if err := attach.MoveIn(it.host, it.netns); err != nil {
				return err
			}
			cur = it.host
		}
		if err := attach.Configure(it.netns, cur, it.cfg); err != nil {
			return fmt.Errorf("configure %s in container %s: %w", it.o.Iface, it.o.Container, err)
		}
		return nil
	}
	var veths, internals []*bulkItem
	for _, it := range items {
		if it.typ == attach.TypeInternal {
			internals = append(internals, it)
		} else {
			veths = append(veths, it)
		}
	}
	vethErr := make(chan error, 1)
	go func() { vethErr <- parallel(veths, configure) }()
	flowErr := make(chan error, 1)
	go func() { flowErr <- install() }()
	ofports, err := h.waitOfports(ctx, names)
	if ferr := <-flowErr; err == nil {
		err = ferr
	}
	if err != nil {
		<-vethErr
		return nil, rollback(err)
	}
	moved := false
	for i, it := range items {
		if ofports[i] != it.ofport {
			it.ofport, moved = ofports[i], true
		}
	}
	if moved {
		if err := install(); err != nil {
			<-vethErr
			return nil, rollback(err)
		}
	}
	tr.step("wait for ovs-vswitchd + flows")

	// Internal ports can move into their containers only now that
	// ovs-vswitchd has added them (the kernel serializes these moves, ~19 ms
	// each here).
	err = parallel(internals, configure)
	if verr := <-vethErr; err == nil {
		err = verr
	}
	if err != nil {
		return nil, rollback(err)
	}
	tr.step("configure in containers")

	var ops []ovsdbops.Operation
	for _, u := range uuidsIf {
		ops = append(ops, ovsdb.SetInterfaceExternalIDs(u, map[string]string{ovsdb.KeyState: stateReady})...)
	}
	if _, err := h.DB.Commit(ctx, ops); err != nil {
		return nil, rollback(err)
	}
	tr.step("mark ready")

	out := make([]*Port, len(items))
	for i, it := range items {
		p := it.intent.View(it.host, it.ofport, it.o.VLAN)
		out[i] = &p
	}
	return out, nil
}

// waitOfports waits for ovs-vswitchd to number every port, for as long as
// it makes progress: it adds a batch in one pass whose length grows with
// the batch and with the ports already there (on the userspace datapath it
// reconfigures the datapath per port: 1,000 ports took it 6 s on an empty
// bridge and over a minute beside 4,000 here), so no fixed bound fits.
// Progress is ports numbered, or ovs-vswitchd busy on the CPU.
func (h *Host) waitOfports(ctx context.Context, names []string) ([]int, error) {
	seen, busy := 0, vswitchdCPU()
	for {
		ofports, err := h.DB.WaitOfports(ctx, names, LinkTimeout)
		if !errors.Is(err, ovsdb.ErrNotAdded) {
			return ofports, err
		}
		n, cerr := h.DB.CountOfports(ctx, names)
		b := vswitchdCPU()
		// Busy: more than a tenth of the interval on the CPU.
		if cerr != nil || (n <= seen && (busy < 0 || b-busy < LinkTimeout/10)) {
			return nil, err
		}
		seen, busy = n, b
	}
}

// vswitchdCPU is the CPU time ovs-vswitchd (found by its pidfile where
// OVS's tools find it) has used, or -1.
func vswitchdCPU() time.Duration {
	dir := os.Getenv("OVS_RUNDIR")
	if dir == "" {
		dir = "/var/run/openvswitch"
	}
	b, err := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.pid"))
	if err != nil {
		return -1
	}
	st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name: state is 0, utime 11, stime 12.
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.Atoi(f[11])
	sy, _ := strconv.Atoi(f[12])
	return time.Duration(u+sy) * 10 * time.Millisecond // USER_HZ 100
}

// bulkAllocate reads the bridge and its ports once and works out every
// item's addresses, port number, type, MTU and MAC, returning the bridge
// external_ids the guarded commit must write.
func (h *Host) bulkAllocate(ctx context.Context, bridge string, items []*bulkItem) (*vswitchd.Bridge, map[string]string, error) {
	snap, err := h.DB.ReadBridge(ctx, bridge)
	if err != nil {
		return nil, nil, err
	}
	if snap == nil {
		return nil, nil, noBridge(bridge)
	}
	br := &snap.Bridge
	// Every port number in use on the host (ports ovsnet did not make
	// included), to request free ones.
	all, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB, nil, "name", "ofport", "ofport_request", "external_ids")
	if err != nil {
		return nil, nil, err
	}
	taken := map[int]bool{}
	attached := map[string]string{}
	names := map[string]bool{}
	for _, i := range all {
		for _, n := range []*int{i.Ofport, i.OfportRequest} {
			if n != nil {
				taken[*n] = true
			}
		}
		names[i.Name] = true
		if c, ok := i.ExternalIDs[ovsdb.KeyContainerID]; ok {
			attached[c+"\x00"+i.ExternalIDs[ovsdb.KeyContainerIface]] = i.Name
		}
	}
	used := map[netip.Addr]bool{}
	for a := range usedAddrs(snap.Interfaces) {
		used[a] = true
	}
	macs := map[string]string{} // MAC -> holder
	for _, i := range snap.Interfaces {
		if m, err := net.ParseMAC(i.ExternalIDs[ovsdb.KeyMAC]); err == nil {
			macs[m.String()] = ownerOf(i)
		}
	}
	set := map[string]string{}
	next, _ := strconv.Atoi(br.ExternalIDs[ovsdb.KeyNextOfport])
	if next <= 0 {
		next = 1
	}
	hints := map[bool]netip.Addr{} // by Is4
	dp := datapathOf(br)
	tso := sync.OnceValue(func() bool { return attach.BridgeTSO(bridge) })
	for n, it := range items {
		subs, _, err := it.rq.checkOn(br)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d (%s %s): %w", n+1, it.o.Iface, it.o.Container, err)
		}
		if name, ok := attached[it.o.Container+"\x00"+it.o.Iface]; ok {
			return nil, nil, fmt.Errorf("port already attached for CONTAINER=%s and INTERFACE=%s (OVS port %s): remove it with `ovsnet del-port %s %s %s`", it.o.Container, it.o.Iface, name, bridge, it.o.Iface, it.o.Container)
		}
		if names[it.host] {
			return nil, nil, fmt.Errorf("OVS port %s already exists but is not %s:%s's: remove it (ovs-vsctl del-port %s) or choose another INTERFACE", it.host, it.o.Container, it.o.Iface, it.host)
		}
		it.addrs = nil
		for _, r := range it.rq.requested {
			p, err := ipam.Validate(r, subs, nil)
			if err != nil {
				return nil, nil, err
			}
			if used[p.Addr()] {
				return nil, nil, fmt.Errorf("%s (line %d) is already taken", p.Addr(), n+1)
			}
			used[p.Addr()] = true
			it.addrs = append(it.addrs, p)
		}
		if it.rq.auto {
			for _, s := range subs {
				if hasFamily(it.addrs, s.Prefix.Addr()) {
					continue
				}
				is4 := s.Prefix.Addr().Is4()
				from, ok := hints[is4]
				if !ok {
					from, _ = netip.ParseAddr(br.ExternalIDs[hintKey(s.Prefix.Addr())])
				}
				a, err := nextFree(s, from, used)
				if err != nil {
					return nil, nil, err
				}
				used[a] = true
				hints[is4] = a.Next()
				set[hintKey(a)] = a.Next().String()
				it.addrs = append(it.addrs, netip.PrefixFrom(a, s.Prefix.Bits()))
			}
		}
		for taken[next] {
			next++
		}
		if next >= tunnelOfportBase {
			return nil, nil, fmt.Errorf("bridge %s: no OpenFlow port numbers left", bridge)
		}
		it.ofport = next
		taken[next] = true
		it.typ = it.o.Type
		if it.typ == "" {
			it.typ = DefaultType(dp)
		}
		mtu := it.o.MTU
		if mtu == 0 {
			mtu = atoi(br.ExternalIDs[ovsdb.KeyMTU])
		}
		mac := it.rq.mac
		if mac != nil {
			if err := macFree(br, mac, macs[mac.String()]); err != nil {
				return nil, nil, fmt.Errorf("line %d (%s %s): %w", n+1, it.o.Iface, it.o.Container, err)
			}
		} else {
			mac = macFor(it.addrs)
		}
		macs[mac.String()] = it.o.Container + "/" + it.o.Iface
		it.intent = PortIntent{Container: it.o.Container, Iface: it.o.Iface, Bridge: it.o.Bridge, Netns: it.netns, Type: it.typ,
			State: stateAttaching, MAC: mac, Addrs: it.addrs, Gateways: gatewaysFor(it.addrs, subs, it.rq.gateway), MTU: mtu,
			NoTxOffload: noTxOffload(br.ExternalIDs, it.typ, dp, tso)}
		it.cfg = it.intent.Config(it.o.routes())
	}
	set[ovsdb.KeyNextOfport] = strconv.Itoa(next + 1)
	return br, set, nil
}

// nextFree is the first address of s from `from` up (wrapping once to the
// start) that is not used.
func nextFree(s ipam.Subnet, from netip.Addr, used map[netip.Addr]bool) (netip.Addr, error) {
	for _, start := range []netip.Addr{from, {}} {
		if c := ipam.Candidates(s, start, 1, used); len(c) > 0 {
			return c[0], nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: no free address left in %s", ipam.ErrExhausted, s.Prefix)
}

func (it *bulkItem) portSpec() ovsdb.PortSpec {
	ptype := ""
	if it.typ == attach.TypeInternal {
		ptype = "internal"
	}
	return ovsdb.PortSpec{Name: it.host, Type: ptype, OfportRequest: it.ofport, VLAN: it.o.VLAN, MTU: it.cfg.MTU, ExternalIDs: it.intent.Encode()}
}

func bulkDeleteVeths(items []*bulkItem) {
	parallel(items, func(it *bulkItem) error {
		if it.veth {
			attach.DeleteLink(it.host)
			it.veth = false
		}
		return nil
	})
}

// parallel runs f on every item with bulkWorkers goroutines and returns
// the first error (by item order) after all have finished.
func parallel(items []*bulkItem, f func(*bulkItem) error) error {
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

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return def
}
