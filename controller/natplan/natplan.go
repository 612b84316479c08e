// Package natplan works out, from OVSDB's topology alone, what ovsnet's
// intent asks of iptables, ip6tables and the forwarding sysctls (Of: a
// pure function, unit-tested on topologies made in memory); hostnat
// applies a Plan (NAT.Sync), and reconcile and the controller compare
// plans by their Key to skip work that would change nothing.
package natplan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// BridgeOf is the NAT view of an ovsnet bridge; ok is false for bridges
// without an IPv4 subnet (nothing to masquerade or publish).
func BridgeOf(b intent.Bridge) (nat.Bridge, bool) {
	for _, s := range b.Subnets {
		if s.Prefix.Addr().Is4() {
			return nat.Bridge{Name: b.Name, Subnet: s.Prefix, NAT: b.NAT}, true
		}
	}
	return nat.Bridge{}, false
}

// IfaceIPv4 is interface i's IPv4 address, if it holds one.
func IfaceIPv4(i vswitchd.Interface) (netip.Addr, bool) {
	for _, p := range intent.HeldAddrs(i.ExternalIDs) {
		if p.Addr().Is4() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// Published is what interface i publishes (nothing when that does not
// decode: reconcile reports it).
func Published(i vswitchd.Interface) []nat.Mapping {
	ms, _ := intent.Published(intent.InterfaceRow(i.Name, i.ExternalIDs), i.ExternalIDs)
	return ms
}

// natIntent is every NAT rule the OVSDB intent asks for, and the bridges
// whose subnet or NAT setting does not decode: their bridge rules stay as
// last applied (never dropped), their published ports stay published.
func natIntent(topo *ovsdb.Topology) (rules []nat.Rule, bridges []nat.Bridge, keep []string) {
	var subnets []netip.Prefix
	var published []*vswitchd.Bridge
	var tunnels []nat.KernelTunnel
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
		if !bi.Owned || bi.Deleting {
			continue
		}
		tunnels = append(tunnels, kernelTunnels(bi)...)
		if bi.SubnetsErr != nil || bi.NATErr != nil {
			keep = append(keep, b.Name)
			if bi.NAT || bi.NATErr != nil {
				published = append(published, b)
			}
			continue
		}
		if nb, ok := BridgeOf(bi); ok {
			bridges = append(bridges, nb)
			subnets = append(subnets, nb.Subnet)
			if nb.NAT {
				published = append(published, b)
			}
		}
	}
	gws, gwRules := ovnGatewaysNAT(topo)
	for _, g := range gws {
		bridges, subnets = append(bridges, g), append(subnets, g.Subnet)
	}
	sort.Slice(bridges, func(i, j int) bool { return bridges[i].Name < bridges[j].Name })
	sort.Strings(keep)
	var names []string
	for _, nb := range bridges {
		names = append(names, nb.Name)
	}
	jumps, drops := nat.IsolationRules(names)
	rules = append(jumps, drops...) // ahead of every bridge's accepts
	for _, nb := range bridges {
		var others []netip.Prefix
		for _, s := range subnets {
			if s != nb.Subnet {
				others = append(others, s)
			}
		}
		rules = append(rules, nat.BridgeRules(nb, others)...)
	}
	sort.Slice(tunnels, func(i, j int) bool { return tunnels[i].Bridge < tunnels[j].Bridge })
	rules = append(rules, nat.TunnelRules(tunnels)...)
	sort.Slice(published, func(i, j int) bool { return published[i].Name < published[j].Name })
	for _, b := range published {
		rules = append(rules, mappingRules(topo, b)...)
	}
	return append(rules, gwRules...), bridges, keep
}

// kernelTunnels are bridge bi's kernel VXLAN devices (one per VNI) with
// their remotes, in the order of the bridge's tunnels.
func kernelTunnels(bi intent.Bridge) []nat.KernelTunnel {
	var out []nat.KernelTunnel
	at := map[uint32]int{}
	for _, t := range bi.GoodTunnels() {
		r, err := netip.ParseAddr(t.Remote)
		if !t.Kernel || t.Type != mesh.VXLAN || err != nil { // a gretap device takes its one remote's packets only
			continue
		}
		i, ok := at[t.Key]
		if !ok {
			i, at[t.Key] = len(out), len(out)
			out = append(out, nat.KernelTunnel{Bridge: bi.Name, VNI: t.Key})
		}
		out[i].Remotes = append(out[i].Remotes, r)
	}
	for _, t := range out {
		slices.SortFunc(t.Remotes, func(a, b netip.Addr) int { return a.Compare(b) })
	}
	slices.SortFunc(out, func(a, b nat.KernelTunnel) int { return cmp.Compare(a.VNI, b.VNI) })
	return out
}

// ovnGatewaysNAT is NAT's view of this chassis' gateways on OVN networks:
// each a "bridge" (its interface, the network's subnet), and the DNAT
// rules of the published ports of the network's containers here.
func ovnGatewaysNAT(topo *ovsdb.Topology) ([]nat.Bridge, []nat.Rule) {
	var gws []nat.Bridge
	var rules []nat.Rule
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if intent.Owned(b.ExternalIDs) {
			continue
		}
		ifs, _ := topo.BridgeInterfaces(b)
		for _, gi := range ifs {
			g, ok, err := intent.DecodeOVNGateway(intent.InterfaceRow(gi.Name, gi.ExternalIDs), gi.ExternalIDs)
			if !ok || err != nil {
				continue
			}
			gws = append(gws, nat.Bridge{Name: gi.Name, Subnet: g.Addresses[0].Masked(), NAT: g.NAT})
			for _, i := range ifs {
				if _, isGW := i.ExternalIDs[intent.KeyOVNGateway]; !isGW && i.ExternalIDs[intent.KeyOVNNetwork] == g.Network && g.NAT {
					if _, ok := IfaceIPv4(i); ok {
						rs, _ := IfaceRules(i, Published(i))
						rules = append(rules, rs...)
					}
				}
			}
		}
	}
	return gws, rules
}

// mappingRules are the DNAT rules of bridge b's published ports.
func mappingRules(topo *ovsdb.Topology, b *vswitchd.Bridge) []nat.Rule {
	var rules []nat.Rule
	ifs, _ := topo.BridgeInterfaces(b)
	for _, i := range ifs {
		if _, ok := IfaceIPv4(i); ok {
			rs, _ := IfaceRules(i, Published(i))
			rules = append(rules, rs...)
		}
	}
	return rules
}

// Plan is what the intent asks of iptables, ip6tables and the
// forwarding sysctls.
type Plan struct {
	Rules   []nat.Rule // iptables: isolation, each bridge's, tunnels', published ports'
	Bridges []nat.Bridge
	Keep    []string // bridges whose rules stay as they are (natIntent)
	// IPv6: the bridges (and OVN gateways) with an IPv6 subnet: routed, so
	// forwarding on, and isolated from each other by Rules6.
	IPv6   []string
	Rules6 []nat.Rule
}

// Of is the plan of the intent in topo.
func Of(topo *ovsdb.Topology) Plan {
	var p Plan
	p.Rules, p.Bridges, p.Keep = natIntent(topo)
	for i := range topo.Bridges {
		bi := intent.DecodeBridge(topo.Bridges[i].Name, topo.Bridges[i].ExternalIDs)
		if !bi.Owned || bi.Deleting {
			continue
		}
		if slices.ContainsFunc(bi.Subnets, func(sn ipam.Subnet) bool { return sn.Prefix.Addr().Is6() }) {
			p.IPv6 = append(p.IPv6, bi.Name)
		}
	}
	for _, i := range topo.Interfaces { // OVN networks' gateways route IPv6 too
		if g, ok, err := intent.DecodeOVNGateway(intent.InterfaceRow(i.Name, i.ExternalIDs), i.ExternalIDs); ok && err == nil && len(g.Addresses) > 1 {
			p.IPv6 = append(p.IPv6, i.Name)
		}
	}
	sort.Strings(p.IPv6)
	jumps, drops := nat.IsolationRules(p.IPv6)
	p.Rules6 = append(jumps, drops...)
	return p
}

// Key is the plan as one string, to tell whether it changed.
func (p Plan) Key() string {
	var ks []string
	for _, r := range p.Rules {
		ks = append(ks, r.String())
	}
	for _, r := range p.Rules6 {
		ks = append(ks, "ipv6 "+r.String())
	}
	for _, b := range p.Bridges {
		ks = append(ks, fmt.Sprintf("bridge %s %s %v", b.Name, b.Subnet, b.NAT))
	}
	sort.Strings(ks)
	return fmt.Sprintf("keep %v\n%s", p.Keep, strings.Join(ks, "\n"))
}

// IfaceRules are the NAT rules of interface ifc's mappings ms, and
// the UDP host ports among them.
func IfaceRules(ifc vswitchd.Interface, ms []nat.Mapping) (rules []nat.Rule, udp []uint16) {
	addr, _ := IfaceIPv4(ifc)
	for _, m := range ms {
		rules = append(rules, nat.MappingRule(intent.RefOf(ifc.ExternalIDs).String(), addr, m))
		if m.Proto == "udp" {
			udp = append(udp, m.HostPort)
		}
	}
	return rules, udp
}
