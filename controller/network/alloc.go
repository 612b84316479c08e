package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// How many candidate addresses (and port numbers) one probe transaction
// asks about per family: few first, as the bridge's hints usually point at
// a free one, then more. Each probe is a select that ovsdb-server answers
// by scanning every Interface row (no index on external_ids): 24 of them
// per attach took ~4 ms at 1,000 ports (traced), 6 of them ~1.2 ms.
const (
	firstBatch = 2
	probeBatch = 16
)

// claim is what one attach will take on its bridge; the guarded commit
// makes it stick or fails with ovsdb.ErrConflict.
type claim struct {
	addrs  []netip.Prefix
	ofport int
	hints  []netip.Addr // the bridge's new allocation hints
}

// alloc is the bridge's allocation state after the claim.
func (c *claim) alloc() intent.Alloc { return intent.Alloc{NextOfport: c.ofport + 1, Hints: c.hints} }

// probe is the query for interfaces on bridge holding address p.
func probe(bridge string, p netip.Prefix) ovsdb.Query {
	return ovsdb.Query{Table: vswitchd.InterfaceTable, Columns: []string{"external_ids"},
		Where: []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.HoldingAddr(bridge, p))}}
}

// macProbe is the query for interfaces on bridge holding MAC m.
func macProbe(bridge string, m net.HardwareAddr) ovsdb.Query {
	return ovsdb.Query{Table: vswitchd.InterfaceTable, Columns: []string{"external_ids"},
		Where: []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.HoldingMAC(bridge, m))}}
}

// candidateProbes are the queries that tell whether address a (of prefix
// length bits) is free on bridge: no interface holds it, nor, for IPv4,
// the MAC derived from it (an interface whose address intent no longer
// parses still holds its address through its MAC).
func candidateProbes(bridge string, a netip.Addr, bits int) []ovsdb.Query {
	qs := []ovsdb.Query{probe(bridge, netip.PrefixFrom(a, bits))}
	if a.Is4() {
		qs = append(qs, macProbe(bridge, ipam.MACFor([]netip.Prefix{netip.PrefixFrom(a, bits)})))
	}
	return qs
}

func owner(rows []ovsdbops.Row) string {
	if len(rows) == 0 {
		return ""
	}
	if ref := intent.RefOf(ovsdb.ExternalIDsOf(rows[0])); ref.Container != "" {
		return ref.String()
	}
	return "another port"
}

// allocate works out the addresses and OpenFlow port number for one attach
// on bridge br. On a bridge with subnets it reads O(1) rows whatever the
// bridge's size: the port number comes from a counter on the bridge, free
// addresses from probes starting at the bridge's hints. Only the
// ovs-docker-style case (an explicit address on a bridge without a subnet
// of its family) and a bridge without a counter read all of its ports.
//
// Port numbers are probed too: a port added without ovsnet (ovs-vsctl)
// may hold the counter's number, and then ovs-vswitchd would give this
// port another one than the flows are written for. Each round of probes is
// one OVSDB read: the explicit addresses (first round only), a few port
// numbers from the counter up until one is free, and a batch of candidate
// addresses per family still looking.
func (h *Host) allocate(ctx context.Context, br intent.Bridge, subnets []ipam.Subnet, requested []netip.Prefix, auto bool) (*claim, error) {
	a := &allocation{h: h, ctx: ctx, br: br, subnets: subnets, c: &claim{}, skip: map[netip.Addr]bool{}}
	if err := a.startOfport(); err != nil {
		return nil, err
	}
	if err := a.explicit(requested); err != nil {
		return nil, err
	}
	if auto {
		a.families()
	}
	for first := true; first || len(a.fams) > 0 || len(a.ofports) > 0; first = false {
		qs, err := a.queries(first)
		if err != nil {
			return nil, err
		}
		if len(qs) == 0 {
			break
		}
		rs, err := h.DB.Read(ctx, qs...)
		if err != nil {
			return nil, err
		}
		if err := a.answer(rs); err != nil {
			return nil, err
		}
	}
	// IPv4 first, as Docker lists them, whichever family a probe round
	// settled first.
	c := a.c
	sort.SliceStable(c.addrs, func(i, j int) bool { return c.addrs[i].Addr().Is4() && !c.addrs[j].Addr().Is4() })
	return c, nil
}

// allocation is one allocate's state: the claim so far, the probes of
// explicit addresses (answered by the first round), the port numbers and
// the families still probed.
type allocation struct {
	h       *Host
	ctx     context.Context
	br      intent.Bridge
	subnets []ipam.Subnet
	snap    *ovsdb.BridgeSnapshot // the bridge's ports, read once if needed
	c       *claim

	probes  []ovsdb.Query
	probed  []netip.Prefix
	skip    map[netip.Addr]bool // addresses given explicitly: not candidates
	ofports []int               // the port numbers probed this round
	fams    []*family
}

// family is one address family still looking for a free address, in
// batches from its hint up.
type family struct {
	s       ipam.Subnet
	from    netip.Addr
	restart bool // the hint was past every free address: go once from the start
	batch   []netip.Addr
}

// scan reads the bridge's ports (once).
func (a *allocation) scan() (*ovsdb.BridgeSnapshot, error) {
	if a.snap != nil {
		return a.snap, nil
	}
	var err error
	a.snap, err = a.h.DB.ReadBridge(a.ctx, a.br.Name, intent.OfBridge(a.br.Name))
	if err == nil && a.snap == nil {
		err = NoBridge(a.br.Name)
	}
	return a.snap, err
}

// startOfport starts from the bridge's counter, or past every port's
// number when the bridge has none.
func (a *allocation) startOfport() error {
	a.c.ofport = a.br.NextOfport
	if a.c.ofport <= 0 || a.c.ofport >= mesh.OfportBase {
		s, err := a.scan()
		if err != nil {
			return err
		}
		a.c.ofport = nextOfport(s.Interfaces)
	}
	return nil
}

// subnetOf is the bridge's subnet of addr's family, if any.
func (a *allocation) subnetOf(addr netip.Addr) *ipam.Subnet {
	for i := range a.subnets {
		if a.subnets[i].Prefix.Addr().Is4() == addr.Is4() {
			return &a.subnets[i]
		}
	}
	return nil
}

// explicit validates the addresses given and claims them: probed in the
// first round, or checked against a scan where the bridge has no subnet
// of their family.
func (a *allocation) explicit(requested []netip.Prefix) error {
	for _, r := range requested {
		p, err := ipam.Validate(r, a.subnets, nil)
		if err != nil {
			return err
		}
		if a.subnetOf(p.Addr()) == nil {
			s, err := a.scan()
			if err != nil {
				return err
			}
			if who, ok := UsedAddrs(s.Interfaces)[p.Addr()]; ok {
				return fmt.Errorf("%s is already taken by %s", p.Addr(), who)
			}
		} else {
			a.probes, a.probed = append(a.probes, probe(a.br.Name, p)), append(a.probed, p)
		}
		a.c.addrs = append(a.c.addrs, p)
		a.skip[p.Addr()] = true
	}
	return nil
}

// families starts a search in each of the bridge's families that no
// explicit address covers, from the bridge's hint.
func (a *allocation) families() {
	for _, s := range a.subnets {
		if hasFamily(a.c.addrs, s.Prefix.Addr()) {
			continue
		}
		a.fams = append(a.fams, &family{s: s, from: a.br.Hints[s.Prefix.Addr().Is4()]})
	}
}

// queries are one round's probes: the explicit addresses', then the port
// numbers' (two each), then each family's candidates'.
func (a *allocation) queries(first bool) ([]ovsdb.Query, error) {
	qs := a.probes
	batch := probeBatch
	if first {
		batch = firstBatch
	}
	if first || len(a.ofports) > 0 {
		a.ofports = a.ofports[:0]
		for n := a.c.ofport; len(a.ofports) < min(batch, 4) && n < mesh.OfportBase; n++ {
			a.ofports = append(a.ofports, n)
			qs = append(qs, ofportProbe("ofport", n), ofportProbe("ofport_request", n))
		}
	}
	for _, f := range a.fams {
		f.batch = ipam.Candidates(f.s, f.from, batch, a.skip)
		if len(f.batch) == 0 && !f.restart && f.from.IsValid() {
			f.restart, f.from = true, netip.Addr{}
			f.batch = ipam.Candidates(f.s, f.from, batch, a.skip)
		}
		if len(f.batch) == 0 {
			return nil, fmt.Errorf("%w: no free address left in %s", ipam.ErrExhausted, f.s.Prefix)
		}
		for _, addr := range f.batch {
			qs = append(qs, candidateProbes(a.br.Name, addr, f.s.Prefix.Bits())...)
		}
	}
	return qs, nil
}

// answer takes one round's answers, in the order of queries.
func (a *allocation) answer(rs [][]ovsdbops.Row) error {
	for i, p := range a.probed {
		if who := owner(rs[i]); who != "" {
			return fmt.Errorf("%s is already taken by %s", p.Addr(), who)
		}
	}
	rs = a.ofportsAnswered(rs[len(a.probes):])
	a.probes, a.probed = nil, nil
	a.familiesAnswered(rs)
	return nil
}

// ofportsAnswered takes the first free port number probed, or moves past
// them all; it returns the answers after the port numbers'.
func (a *allocation) ofportsAnswered(rs [][]ovsdbops.Row) [][]ovsdbops.Row {
	if len(a.ofports) == 0 {
		return rs
	}
	free := -1
	for i, n := range a.ofports {
		if len(rs[2*i]) == 0 && len(rs[2*i+1]) == 0 {
			free = n
			break
		}
	}
	rs = rs[2*len(a.ofports):]
	if free > 0 {
		a.c.ofport, a.ofports = free, nil
	} else {
		a.c.ofport = a.ofports[len(a.ofports)-1] + 1
	}
	return rs
}

// familiesAnswered claims each family's first candidate that nothing
// holds (by address or, for IPv4, by the MAC derived from it); a family
// with none goes on past its batch in the next round.
func (a *allocation) familiesAnswered(rs [][]ovsdbops.Row) {
	var left []*family
	for _, f := range a.fams {
		per := len(candidateProbes(a.br.Name, f.s.Prefix.Addr(), 0))
		chosen := -1
		for i := range f.batch {
			if len(rs[per*i]) == 0 && len(rs[per*i+per-1]) == 0 {
				chosen = i
				break
			}
		}
		rs = rs[per*len(f.batch):]
		if chosen < 0 {
			f.from = f.batch[len(f.batch)-1].Next()
			left = append(left, f)
			continue
		}
		p := netip.PrefixFrom(f.batch[chosen], f.s.Prefix.Bits())
		a.c.addrs = append(a.c.addrs, p)
		// Every address from the hint up to the chosen one is in use.
		a.c.hints = append(a.c.hints, p.Addr().Next())
	}
	a.fams = left
}

// ofportProbe is the query for interfaces holding (or asking for) port n.
// Port numbers are per bridge, but a match on another bridge only costs
// skipping a number.
func ofportProbe(column string, n int) ovsdb.Query {
	return ovsdb.Query{Table: vswitchd.InterfaceTable, Columns: []string{"name"},
		Where: []ovsdbops.Condition{ovsdbops.NewCondition(column, ovsdbops.ConditionEqual, n)}}
}

// lowerHints returns the bridge hint updates for addresses being freed: a
// hint never stays above a free address.
func lowerHints(b intent.Bridge, freed []netip.Addr) map[string]string {
	lowered := map[bool]netip.Addr{}
	for _, a := range freed {
		h, ok := lowered[a.Is4()]
		if !ok {
			h = b.Hints[a.Is4()]
		}
		// No hint: allocation starts at the first host anyway.
		if h.IsValid() && a.Less(h) {
			lowered[a.Is4()] = a
		}
	}
	var al intent.Alloc
	for _, a := range lowered {
		al.Hints = append(al.Hints, a)
	}
	return al.Encode()
}

// hasFamily reports whether ps holds an address of a's family.
func hasFamily(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr().Is4() == a.Is4() {
			return true
		}
	}
	return false
}

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
		{Table: vswitchd.InterfaceTable, Where: []ovsdbops.Condition{ovsdb.NameIs(it.host)}, Columns: []string{"name"}},
	}
	if it.rq.mac != nil {
		qs = append(qs, macProbe(o.Bridge, it.rq.mac))
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
	if len(rs[2]) > 0 {
		return fmt.Errorf("OVS port %s already exists but is not %s:%s's: remove it (ovs-vsctl del-port %s) or choose another INTERFACE", it.host, o.Container, o.Iface, it.host)
	}
	if it.rq.mac != nil {
		return macFree(r.br, it.rq.mac, owner(rs[3]))
	}
	return nil
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
	cl, err := r.h.allocate(ctx, r.bi, r.subnets, it.rq.requested, it.rq.auto)
	if err != nil {
		return nil, err
	}
	it.addrs, it.ofport = cl.addrs, cl.ofport
	r.fill(it, r.subnets, it.rq.mac, func() bool { return attach.BridgeTSO(r.bridge) })
	return cl.alloc().Encode(), nil
}
