// Package alloc is where an attach's addresses and OpenFlow port number
// come from on an ovsnet bridge, read from the bridge's rows: probes for
// one attach that read O(1) rows whatever the bridge's size (Probe), the
// queries and answers they are made of, what a bridge's interfaces hold
// (UsedAddrs, NextOfport) for the engine's scans, a bulk attach's one
// read of what is taken (Scan) and its automatic addresses (Auto), and
// the hints a detach lowers. The attach engine's guarded commit makes a claim stick.
package alloc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

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

// ErrBridgeGone is a bridge deleted while an attach allocated on it.
var ErrBridgeGone = errors.New("bridge deleted during the allocation")

// Claim is what one attach will take on its bridge; the guarded commit
// makes it stick or fails with ovsdb.ErrConflict.
type Claim struct {
	Addrs  []netip.Prefix
	Ofport int
	Hints  []netip.Addr // the bridge's new allocation hints
}

// Alloc is the bridge's allocation state after the claim.
func (c *Claim) Alloc() intent.Alloc { return intent.Alloc{NextOfport: c.Ofport + 1, Hints: c.Hints} }

// probe is the query for interfaces on bridge holding address p.
func AddrProbe(bridge string, p netip.Prefix) ovsdb.Query {
	return ovsdb.Query{Table: vswitchd.InterfaceTable, Columns: []string{"external_ids"},
		Where: []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.HoldingAddr(bridge, p))}}
}

// macProbe is the query for interfaces on bridge holding MAC m.
func MACProbe(bridge string, m net.HardwareAddr) ovsdb.Query {
	return ovsdb.Query{Table: vswitchd.InterfaceTable, Columns: []string{"external_ids"},
		Where: []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.HoldingMAC(bridge, m))}}
}

// candidateProbes are the queries that tell whether address a (of prefix
// length bits) is free on bridge: no interface holds it, nor, for IPv4,
// the MAC derived from it (an interface whose address intent no longer
// parses still holds its address through its MAC).
func candidateProbes(bridge string, a netip.Addr, bits int) []ovsdb.Query {
	qs := []ovsdb.Query{AddrProbe(bridge, netip.PrefixFrom(a, bits))}
	if a.Is4() {
		qs = append(qs, MACProbe(bridge, ipam.MACFor([]netip.Prefix{netip.PrefixFrom(a, bits)})))
	}
	return qs
}

func Owner(rows []ovsdbops.Row) string {
	if len(rows) == 0 {
		return ""
	}
	if ref := intent.RefOf(ovsdb.ExternalIDsOf(rows[0])); ref.Container != "" {
		return ref.String()
	}
	return "another port"
}

// Probe works out the addresses and OpenFlow port number for one attach
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
func Probe(ctx context.Context, db *ovsdb.Client, br intent.Bridge, subnets []ipam.Subnet, requested []netip.Prefix, auto bool) (*Claim, error) {
	a := &allocation{db: db, ctx: ctx, br: br, subnets: subnets, c: &Claim{}, skip: map[netip.Addr]bool{}}
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
		rs, err := db.Read(ctx, qs...)
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
	sort.SliceStable(c.Addrs, func(i, j int) bool { return c.Addrs[i].Addr().Is4() && !c.Addrs[j].Addr().Is4() })
	return c, nil
}

// allocation is one Probe's state: the claim so far, the probes of
// explicit addresses (answered by the first round), the port numbers and
// the families still probed.
type allocation struct {
	db      *ovsdb.Client
	ctx     context.Context
	br      intent.Bridge
	subnets []ipam.Subnet
	snap    *ovsdb.BridgeSnapshot // the bridge's ports, read once if needed
	c       *Claim

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
	a.snap, err = a.db.ReadBridge(a.ctx, a.br.Name, intent.OfBridge(a.br.Name))
	if err == nil && a.snap == nil {
		err = fmt.Errorf("%w: %s", ErrBridgeGone, a.br.Name)
	}
	return a.snap, err
}

// startOfport starts from the bridge's counter, or past every port's
// number when the bridge has none.
func (a *allocation) startOfport() error {
	a.c.Ofport = a.br.NextOfport
	if a.c.Ofport <= 0 || a.c.Ofport >= mesh.OfportBase {
		s, err := a.scan()
		if err != nil {
			return err
		}
		a.c.Ofport = NextOfport(s.Interfaces)
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
			a.probes, a.probed = append(a.probes, AddrProbe(a.br.Name, p)), append(a.probed, p)
		}
		a.c.Addrs = append(a.c.Addrs, p)
		a.skip[p.Addr()] = true
	}
	return nil
}

// families starts a search in each of the bridge's families that no
// explicit address covers, from the bridge's hint.
func (a *allocation) families() {
	for _, s := range a.subnets {
		if HasFamily(a.c.Addrs, s.Prefix.Addr()) {
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
		for n := a.c.Ofport; len(a.ofports) < min(batch, 4) && n < mesh.OfportBase; n++ {
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
		if who := Owner(rs[i]); who != "" {
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
		a.c.Ofport, a.ofports = free, nil
	} else {
		a.c.Ofport = a.ofports[len(a.ofports)-1] + 1
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
		a.c.Addrs = append(a.c.Addrs, p)
		// Every address from the hint up to the chosen one is in use.
		a.c.Hints = append(a.c.Hints, p.Addr().Next())
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

// LowerHints returns the bridge hint updates for addresses being freed: a
// hint never stays above a free address.
func LowerHints(b intent.Bridge, freed []netip.Addr) map[string]string {
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

// HasFamily reports whether ps holds an address of a's family.
func HasFamily(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr().Is4() == a.Is4() {
			return true
		}
	}
	return false
}

// UsedAddrs maps every address held by an interface in ifs to its owner
// (as its intent says, leniently: a value that does not decode still
// holds what parses).
func UsedAddrs(ifs []vswitchd.Interface) map[netip.Addr]string {
	used := map[netip.Addr]string{}
	for _, i := range ifs {
		who := intent.RefOf(i.ExternalIDs).String()
		for _, p := range intent.HeldAddrs(i.ExternalIDs) {
			used[p.Addr()] = who
		}
		// A MAC derived from an address (ipam.MACFor) holds that address too,
		// even where the address itself no longer parses.
		if m, ok := intent.HeldMAC(i.ExternalIDs); ok {
			if a, ok := ipam.AddrOfMAC(m); ok {
				used[a] = who
			}
		}
	}
	return used
}

// NextOfport returns a port number above every number requested or held on
// the bridge, so that flows can be written before ovs-vswitchd assigns it.
// Numbers are not reused while higher ones are taken: a recycled number
// could meet flows left for the port that had it.
func NextOfport(ifs []vswitchd.Interface) int {
	taken := map[int]bool{}
	max := 0
	for _, i := range ifs {
		for _, p := range []*int{i.Ofport, i.OfportRequest} {
			if p != nil && *p > 0 && *p < mesh.OfportBase {
				taken[*p] = true
				if *p > max {
					max = *p
				}
			}
		}
	}
	if max+1 < mesh.OfportBase {
		return max + 1
	}
	for n := 1; n < mesh.OfportBase; n++ {
		if !taken[n] {
			return n
		}
	}
	return 0 // full: let ovs-vswitchd choose (it will refuse too)
}

// nextFree is the first address of s from `from` up (wrapping once to the
// start) that is not used.
func NextFree(s ipam.Subnet, from netip.Addr, used map[netip.Addr]bool) (netip.Addr, error) {
	for _, start := range []netip.Addr{from, {}} {
		if c := ipam.Candidates(s, start, 1, used); len(c) > 0 {
			return c[0], nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: no free address left in %s", ipam.ErrExhausted, s.Prefix)
}

// maxGapProbed bounds the addresses NoneFreeBelow probes between a
// bridge's hint and a warm pool's port.
const maxGapProbed = 16

// NoneFreeBelow says whether every address of the bridge below each of
// held (a warm pool's port's addresses) is in use, so that an attach
// taking that port gets the lowest free address: below the bridge's hint
// all are; from the hint up to the port's address (at most maxGapProbed
// of them) it probes. When they are, set is the hints to record: the
// port's addresses are in use too.
func NoneFreeBelow(ctx context.Context, db *ovsdb.Client, br intent.Bridge, subnets []ipam.Subnet, held []netip.Prefix) (set map[string]string, ok bool, err error) {
	var qs []ovsdb.Query
	var per []int // probes per candidate, in qs's order
	var hints intent.Alloc
	for _, p := range held {
		a, from := p.Addr(), br.Hints[p.Addr().Is4()]
		var s *ipam.Subnet
		for i := range subnets {
			if subnets[i].Prefix.Contains(a) {
				s = &subnets[i]
			}
		}
		if s == nil {
			return nil, false, nil
		}
		if from.IsValid() && a.Less(from) {
			continue
		}
		cs := ipam.Candidates(*s, from, maxGapProbed+1, nil)
		n := slices.Index(cs, a)
		if n < 0 {
			return nil, false, nil // further than probed: a fresh attach looks
		}
		for _, c := range cs[:n] {
			cq := candidateProbes(br.Name, c, s.Prefix.Bits())
			qs, per = append(qs, cq...), append(per, len(cq))
		}
		hints.Hints = append(hints.Hints, a.Next())
	}
	if len(qs) > 0 {
		rs, err := db.Read(ctx, qs...)
		if err != nil {
			return nil, false, err
		}
		for _, n := range per {
			if !slices.ContainsFunc(rs[:n], func(rows []ovsdbops.Row) bool { return len(rows) > 0 }) {
				return nil, false, nil // free: the attach takes it, not the pool's
			}
			rs = rs[n:]
		}
	}
	return hints.Encode(), true, nil
}
