package nb

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// Isolation on an OVN network: every port of the network is in one port
// group (made with the logical switch, joined in the transaction that
// makes the port), and the group's ACLs are derived from the switch's
// intent, the same keys a bridge carries (ovsnet-icc, ovsnet-link:SRC>DST).
// With icc=false, IP from a port of the network to another is dropped
// (to-lport, priority 1000: sources in the group's address sets, which
// northd keeps; not `inport == @group`, as ovn-controller keeps only its
// own chassis' ports of a group, and the egress pipeline runs on the
// destination's) unless a link lets it through (allow-related,
// priority 1100: OVN then tracks the group's connections, and replies and
// related ICMP pass). A port joins the group before OVN binds it, so it is
// isolated before it sends anything; its links' ACLs follow in the attach.

const (
	aclStatefulPriority = 1
	aclDropPriority     = 1000
	aclLinkPriority     = 1100
)

// aclKey is what makes two ACLs the same.
type aclKey struct {
	dir, action, match string
	prio               int
}

func keyOf(a ovnnb.ACL) aclKey {
	return aclKey{dir: string(a.Direction), action: string(a.Action), match: a.Match, prio: a.Priority}
}

// WantACLs derives network bi's ACLs on port group pg from its intent and
// its logical switch ports; peers are what it needs of the other networks
// on its router (a link's source may be one of their containers). A link
// whose ports do not decode grants nothing and is returned as an error
// (the rest still applies).
//
// services are the load balancers of the network's services: on a routed
// network, each lets what comes through the router reach its backends on
// their ports (the service is reached from the router's other networks and
// through its gateway).
func WantACLs(bi intent.Bridge, ports []ovnnb.LogicalSwitchPort, peers Peers, services []ovnnb.LoadBalancer, pg string) ([]ovnnb.ACL, []error) {
	routed := slices.ContainsFunc(ports, IsRouterPort)
	if bi.ICC && !routed {
		return nil, nil
	}
	ext := func(more ...string) map[string]string {
		m := intent.Ownership("")
		m[intent.KeyOVNNetwork] = bi.Name
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	var out []ovnnb.ACL
	if !bi.ICC {
		out = append(out, ovnnb.ACL{Direction: ovnnb.ACLDirectionToLport, Priority: aclDropPriority, Action: ovnnb.ACLActionDrop,
			Match: fmt.Sprintf("outport == @%s && (ip4.src == $%s_ip4 || ip6.src == $%s_ip6)", pg, pg, pg), ExternalIDs: ext()})
	}
	if routed {
		out = append(out, routerACLs(bi.Name, pg, routedFrom(bi, peers), ext())...)
		out = append(out, serviceACLs(pg, services, ext)...)
	}
	var errs []error
	for _, l := range bi.Links {
		rules, err := flows.ParseRules(l.PortSpecs())
		if err != nil {
			errs = append(errs, fmt.Errorf("OVN network %s: link %s -> %s grants nothing: %w", bi.Name, l.Src, l.Dst, err))
			continue
		}
		srcs := map[string][]string{} // by family: ip4, ip6
		var dsts []string
		for i, p := range append(slices.Clone(ports), peers.Ports...) {
			switch p.ExternalIDs[intent.KeyContainerID] {
			case l.Src:
				for _, a := range Addrs(p) {
					fam := map[bool]string{true: "ip4", false: "ip6"}[a.Is4()]
					srcs[fam] = append(srcs[fam], a.String())
				}
			case l.Dst:
				if i < len(ports) { // the destination is on this network
					dsts = append(dsts, fmt.Sprintf("%q", p.Name))
				}
			}
		}
		if len(srcs) == 0 || len(dsts) == 0 {
			continue // an end not attached (yet): nothing to let through
		}
		sort.Strings(dsts)
		var from []string
		for _, fam := range []string{"ip4", "ip6"} {
			if len(srcs[fam]) > 0 {
				sort.Strings(srcs[fam])
				from = append(from, fmt.Sprintf("%s.src == {%s}", fam, strings.Join(srcs[fam], ", ")))
			}
		}
		src := from[0]
		if len(from) > 1 {
			src = "(" + strings.Join(from, " || ") + ")"
		}
		match := fmt.Sprintf("outport == {%s} && %s", strings.Join(dsts, ", "), src)
		if len(rules) > 0 {
			var rs []string
			for _, r := range rules {
				rs = append(rs, fmt.Sprintf("%s.dst == %d", r.Proto, r.Port))
			}
			match += " && (" + strings.Join(rs, " || ") + ")"
		}
		out = append(out, ovnnb.ACL{Direction: ovnnb.ACLDirectionToLport, Priority: aclLinkPriority, Action: ovnnb.ACLActionAllowRelated,
			Match: match, ExternalIDs: ext(intent.LinkKey(l.Src, l.Dst), l.Ports)})
	}
	return out, errs
}

// serviceACLs let connections through the router reach each service's
// backends, as its load balancer has them now, on their ports (to-lport,
// allow-related, at a link's priority).
func serviceACLs(pg string, lbs []ovnnb.LoadBalancer, ext func(...string) map[string]string) []ovnnb.ACL {
	var out []ovnnb.ACL
	for _, lb := range lbs {
		proto := "tcp"
		if lb.Protocol != nil && *lb.Protocol != "" {
			proto = string(*lb.Protocol)
		}
		var terms []string
		for _, bs := range lb.Vips {
			for _, b := range strings.Split(bs, ",") {
				if ap, err := netip.ParseAddrPort(b); err == nil && ap.Addr().Is4() {
					terms = append(terms, fmt.Sprintf("(ip4.dst == %s && %s.dst == %d)", ap.Addr(), proto, ap.Port()))
				}
			}
		}
		if len(terms) == 0 {
			continue
		}
		sort.Strings(terms)
		out = append(out, ovnnb.ACL{Direction: ovnnb.ACLDirectionToLport, Priority: aclLinkPriority, Action: ovnnb.ACLActionAllowRelated,
			Match: fmt.Sprintf("outport == @%s && (%s)", pg, strings.Join(terms, " || ")), ExternalIDs: ext(intent.KeyService, lb.ExternalIDs[intent.KeyService])})
	}
	return out
}

// routedFrom is what may come into network bi through its router without
// a link: its own subnets (what its containers send around through the
// router, to a service address, say) and the router's addresses on the
// other networks.
func routedFrom(bi intent.Bridge, peers Peers) []netip.Prefix {
	var own []netip.Prefix
	for _, sub := range bi.Subnets {
		own = append(own, sub.Prefix)
	}
	for _, g := range peers.Gateways {
		own = append(own, netip.PrefixFrom(g, g.BitLen()))
	}
	return own
}

// routerACLs keep a routed network's containers from what comes through
// its router, as icc=false keeps them from each other: IP from the router
// port to the group is dropped (to-lport, priority 1000) unless a link
// allows it (priority 1100), but not what comes from the prefixes from:
// the network's own subnets (its containers' packets that turn at the
// router, as to a load balancer's address) and the router's own
// addresses on the other networks (its echo replies, its ICMP errors;
// port security keeps every source honest). A lowest
// allow-related makes the switch track connections, so that replies to
// what its containers started across the router pass (OVN then lets
// them through ahead of every ACL). Neighbour discovery passes by OVN's
// own flows.
func routerACLs(name, pg string, from []netip.Prefix, ext map[string]string) []ovnnb.ACL {
	var own []string
	for _, fam := range []bool{true, false} {
		var as []string
		for _, p := range from {
			if p.Addr().Is4() == fam {
				as = append(as, strings.TrimSuffix(strings.TrimSuffix(p.String(), "/32"), "/128"))
			}
		}
		if len(as) > 0 {
			sort.Strings(as)
			own = append(own, fmt.Sprintf(" && %s.src != {%s}", map[bool]string{true: "ip4", false: "ip6"}[fam], strings.Join(as, ", ")))
		}
	}
	return []ovnnb.ACL{
		{Direction: ovnnb.ACLDirectionToLport, Priority: aclDropPriority, Action: ovnnb.ACLActionDrop,
			Match: fmt.Sprintf("outport == @%s && inport == %q && ip%s", pg, RouterSwitchPortName(name), strings.Join(own, "")), ExternalIDs: ext},
		{Direction: ovnnb.ACLDirectionToLport, Priority: aclStatefulPriority, Action: ovnnb.ACLActionAllowRelated,
			Match: fmt.Sprintf("outport == @%s && ip", pg), ExternalIDs: ext},
	}
}

// SyncIsolation brings OVN network name's port group (every container
// port of the switch in it) and ACLs to what its intent and ports say, in
// one transaction guarded by what it read, again for as long as it loses
// to another writer; then those of the other networks on its router, whose
// links may name its containers as sources. A network that is gone has
// nothing to sync.
func SyncIsolation(ctx context.Context, nb *ovsdb.Client, name string) (Synced, error) {
	s, err := syncOne(ctx, nb, name)
	for _, p := range s.peers {
		if err != nil {
			break
		}
		var ps Synced
		ps, err = syncOne(ctx, nb, p)
		s.Changed, s.Bad = s.Changed || ps.Changed, append(s.Bad, ps.Bad...)
	}
	return s, err
}

// syncOne syncs one network's isolation, again while it loses to another
// writer.
func syncOne(ctx context.Context, nb *ovsdb.Client, name string) (s Synced, err error) {
	err = ovsdb.OnConflict(func() error {
		s, err = syncIsolation(ctx, nb, name)
		return err
	})
	return s, err
}

// Synced is what SyncIsolation did and found.
type Synced struct {
	Changed bool     // it wrote
	Bad     []error  // links that do not decode: they grant nothing
	peers   []string // the other networks on its router, as read
}

func syncIsolation(ctx context.Context, nb *ovsdb.Client, name string) (Synced, error) {
	lss, err := LogicalSwitches(ctx, nb, name)
	if err != nil || len(lss) == 0 || !intent.Owned(lss[0].ExternalIDs) {
		return Synced{}, err
	}
	ls := lss[0]
	ports, err := SwitchPorts(ctx, nb, ls)
	if err != nil {
		return Synced{}, err
	}
	pg, err := PortGroup(ctx, nb, name)
	if err != nil {
		return Synced{}, err
	}
	have, err := ovsdb.Select[ovnnb.ACL](ctx, nb, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{intent.KeyOVNNetwork: name})},
		"_uuid", "direction", "priority", "match", "action", "external_ids")
	if err != nil {
		return Synced{}, err
	}
	var peers Peers // a network on no router has none, nor services: no reads for them
	var services []ovnnb.LoadBalancer
	if slices.ContainsFunc(ports, IsRouterPort) {
		if peers, err = PeersOf(ctx, nb, name); err != nil {
			return Synced{}, err
		}
		if services, err = ServicesOn(ctx, nb, name); err != nil {
			return Synced{}, err
		}
	}
	want, bad := WantACLs(intent.DecodeBridge(name, ls.ExternalIDs), ports, peers, services, PortGroupName(name))
	var members []string // the containers' ports: not the gateway, not the router's
	for _, p := range ports {
		if IsContainerPort(name, p) {
			members = append(members, p.UUID)
		}
	}
	ops, err := isolationOps(nb, ls, pg, members, have, want)
	if err == nil && len(ops) > 0 {
		err = nb.Run(ctx, ops)
	}
	return Synced{Changed: err == nil && len(ops) > 0, Bad: bad, peers: peers.Networks}, err
}

// isolationOps are the operations that bring port group pg (nil: make it)
// to hold every port of members (of switch ls) and exactly the ACLs want,
// guarded by the switch and the group as read; none when nothing changes.
func isolationOps(nb *ovsdb.Client, ls ovnnb.LogicalSwitch, pg *ovnnb.PortGroup, members []string, have, want []ovnnb.ACL) ([]ovsdbops.Operation, error) {
	name := ls.Name
	inGroup := map[string]bool{}
	if pg != nil {
		for _, u := range pg.ACLs {
			inGroup[u] = true
		}
	}
	haveBy := map[aclKey]string{}
	for _, a := range have {
		if inGroup[a.UUID] {
			haveBy[keyOf(a)] = a.UUID
		}
	}
	var ops []ovsdbops.Operation
	var add []string
	for i, a := range want {
		k := keyOf(a)
		if _, ok := haveBy[k]; ok {
			delete(haveBy, k)
			continue
		}
		a.UUID = fmt.Sprintf("ovsnet_acl%d", i)
		op, err := nb.Create(&a)
		if err != nil {
			return nil, err
		}
		ops, add = append(ops, op...), append(add, a.UUID)
	}
	var drop []string
	for _, u := range haveBy {
		drop = append(drop, u)
	}
	missing := slices.DeleteFunc(slices.Clone(members), func(u string) bool { return pg != nil && slices.Contains(pg.Ports, u) })
	if len(ops)+len(drop)+len(missing) == 0 {
		return nil, nil
	}
	if pg == nil {
		g := NewPortGroup(name, members)
		g.ACLs = add
		op, err := nb.Create(g)
		return append(ops, op...), err
	}
	zero := 0
	sw, grp := &ovnnb.LogicalSwitch{UUID: ls.UUID, ExternalIDs: ls.ExternalIDs, Ports: ls.Ports}, &ovnnb.PortGroup{UUID: pg.UUID, ACLs: pg.ACLs}
	guard, err := nb.Where(sw).Wait(ovsdbops.WaitConditionEqual, &zero, sw, &sw.ExternalIDs, &sw.Ports)
	if err != nil {
		return nil, err
	}
	g2, err := nb.Where(grp).Wait(ovsdbops.WaitConditionEqual, &zero, grp, &grp.ACLs)
	if err != nil {
		return nil, err
	}
	muts := []model.Mutation{}
	for _, m := range []struct {
		field any
		op    ovsdbops.Mutator
		v     []string
	}{{&grp.ACLs, ovsdbops.MutateOperationInsert, add}, {&grp.ACLs, ovsdbops.MutateOperationDelete, drop}, {&grp.Ports, ovsdbops.MutateOperationInsert, missing}} {
		if len(m.v) > 0 {
			muts = append(muts, model.Mutation{Field: m.field, Mutator: m.op, Value: m.v})
		}
	}
	mut, err := nb.Where(grp).Mutate(grp, muts...)
	if err != nil {
		return nil, err
	}
	return append(append(append(guard, g2...), ops...), mut...), nil
}

// Peers are the other networks on a network's router: their names, their
// container ports (a link's source, a trace's destination may be one) and
// their gateways (the router's own addresses there).
type Peers struct {
	Networks []string
	Ports    []ovnnb.LogicalSwitchPort
	Gateways []netip.Addr
}

// PeersOf reads the other networks on network name's router (none when it
// is on no router).
func PeersOf(ctx context.Context, nb *ovsdb.Client, name string) (Peers, error) {
	var out Peers
	nets, err := RoutedPeers(ctx, nb, name)
	if err != nil {
		return out, err
	}
	out.Networks = nets
	if len(nets) == 0 {
		return out, nil
	}
	all, err := allPorts(ctx, nb) // one read for every peer's switch
	if err != nil {
		return out, err
	}
	for _, n := range nets {
		lss, err := LogicalSwitches(ctx, nb, n)
		if err != nil {
			return out, err
		}
		for _, ls := range lss {
			ps := portsOf(all, ls)
			out.Ports = append(out.Ports, slices.DeleteFunc(ps, func(p ovnnb.LogicalSwitchPort) bool { return !IsContainerPort(n, p) })...)
			for _, s := range intent.DecodeBridge(n, ls.ExternalIDs).Subnets {
				out.Gateways = append(out.Gateways, s.Gateway)
			}
		}
	}
	return out, nil
}
