package flows

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/digitalocean/go-openvswitch/ovs"
)

// Bridge is the bridge-wide intent the pipeline needs.
type Bridge struct {
	ICC        bool
	Gateways   []netip.Addr     // the bridge's gateway addresses (on LOCAL)
	GatewayMAC net.HardwareAddr // the MAC of the bridge's own port

	// A network spanning hosts: the whole subnets, this host's ranges of
	// them, and the OpenFlow ports of the tunnels to the other hosts.
	Subnets []netip.Prefix
	Ranges  []netip.Prefix
	Tunnels []int
}

// Port is one container port.
type Port struct {
	Name   string // OVS port name (the cookie's object)
	Ofport int
	MAC    net.HardwareAddr
	Addrs  []netip.Addr
	VLAN   int
}

// Rule narrows a link to one protocol and destination port.
type Rule struct {
	Proto string // "tcp" or "udp"
	Port  uint16
}

func (r Rule) String() string { return fmt.Sprintf("%d/%s", r.Port, r.Proto) }

// Link lets Src open connections to Dst (all of them when Rules is empty).
type Link struct {
	Src, Dst         string // container names as stored (the cookie's object)
	SrcPort, DstPort Port
	Rules            []Rule
}

func goTo(t Table) ovs.Action { return ovs.Resubmit(0, int(t)) }

func flow(t Table, prio int, cookie uint64, proto ovs.Protocol, inPort int, m []ovs.Match, a ...ovs.Action) *ovs.Flow {
	return &ovs.Flow{Table: int(t), Priority: prio, Cookie: cookie, Protocol: proto, InPort: inPort, Matches: m, Actions: a}
}

// BridgeFlows are the bridge-wide flows: table misses, the gateway's
// classification and ARP/ND, guards against rogue servers, isolation and
// output.
func BridgeFlows(b Bridge) []*ovs.Flow {
	c := BridgeCookie()
	fs := []*ovs.Flow{
		// Unknown ports and spoofed packets end here.
		flow(TableClassifier, PrioMiss, c, "", 0, nil, ovs.Drop()),
		flow(TableClassifier, PrioNormal, c, "", ovs.PortLOCAL, nil, RegSrcKind.Load(KindGateway), RegVLAN.Load(0), goTo(TableARPND)),
		flow(TableSpoofGuard, PrioMiss, c, "", 0, nil, ovs.Drop()),
		// Containers never act as routers or DHCP servers.
		flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolICMPv6, 0, []ovs.Match{ovs.ICMP6Type(134)}, ovs.Drop()),
		flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolUDPv4, 0, []ovs.Match{ovs.TransportSourcePort(67)}, ovs.Drop()),
		flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolUDPv6, 0, []ovs.Match{ovs.TransportSourcePort(547)}, ovs.Drop()),
		// Access ports carry untagged frames only: a tag from a container
		// would reach the host's bridge interface (or a VLAN device on it).
		flow(TableSpoofGuard, PrioGuard, c, "", 0, []ovs.Match{ovs.FieldMatch("vlan_tci", "0x1000/0x1000")}, ovs.Drop()),
		// Nor reach the host's loopback (route_localnet is on for 127.0.0.1
		// publishing; nat.LoopbackGuard drops it in the host too).
		flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolIPv4, 0, []ovs.Match{ovs.NetworkDestination("127.0.0.0/8")}, ovs.Drop()),
		flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolIPv6, 0, []ovs.Match{ovs.IPv6Destination("::1")}, ovs.Drop()),
		// ARP requests and neighbour solicitations nobody answers are dropped,
		// never flooded; everything else goes on to L2.
		flow(TableARPND, PrioFallback, c, ovs.ProtocolARP, 0, []ovs.Match{ovs.ARPOperation(1)}, ovs.Drop()),
		flow(TableARPND, PrioFallback, c, ovs.ProtocolICMPv6, 0, []ovs.Match{ovs.ICMP6Type(135)}, ovs.Drop()),
		flow(TableARPND, PrioMiss, c, "", 0, nil, goTo(TableL2)),
		// Untagged containers' broadcast and multicast go to the gateway
		// only; unknown unicast goes nowhere.
		flow(TableL2, PrioFallback, c, "", 0, []ovs.Match{ovs.DataLinkDestination("01:00:00:00:00:00/01:00:00:00:00:00"), RegSrcKind.Match(KindContainer), RegVLAN.Match(0)},
			RegOutPort.Load(LocalPort), RegDstKind.Load(KindGateway), goTo(TableIsolation)),
		flow(TableL2, PrioMiss, c, "", 0, nil, ovs.Drop()),
		flow(TableIsolation, PrioMiss, c, "", 0, nil, goTo(TableOutput)),
		flow(TableOutput, PrioMiss, c, "", 0, nil, ovs.OutputField(RegOutPort.Field())),
	}
	for _, gw := range b.Gateways {
		fs = append(fs, gatewayNeighbour(c, gw, b.GatewayMAC))
	}
	// Second half of every ND responder: the packet is an advertisement now,
	// so its target link-layer option can be set (to the answering MAC,
	// already in eth_src), with the solicited and override flags.
	fs = append(fs,
		flow(TableNDReply, PrioNormal, c, ovs.ProtocolICMPv6, 0, []ovs.Match{ovs.ICMP6Type(136), RegNDReply.Match(1)},
			ovs.Move("NXM_OF_ETH_SRC[]", "NXM_NX_ND_TLL[]"), ovs.SetField("2", "nd_options_type"),
			ovs.SetField("0x60000000", "nd_reserved"), ovs.InPort()),
		flow(TableNDReply, PrioMiss, c, "", 0, nil, ovs.Drop()))
	if len(b.GatewayMAC) > 0 {
		fs = append(fs, flow(TableL2, PrioNormal, c, "", 0, []ovs.Match{ovs.DataLinkDestination(b.GatewayMAC.String()), RegVLAN.Match(0)},
			RegOutPort.Load(LocalPort), RegDstKind.Load(KindGateway), goTo(TableIsolation)))
	}
	if !b.ICC {
		fs = append(fs, isolationFlows(c)...)
	}
	if len(b.Tunnels) > 0 {
		fs = append(fs, tunnelFlows(c, b)...)
	}
	return fs
}

// tunnelFlows extend the segment to other hosts. What this host cannot
// deliver (ARP requests for addresses it does not answer, unknown unicast)
// goes to every tunnel, but only when it came from this host: nothing that
// arrives from a tunnel ever leaves through one, so a full mesh of any size
// has no loops. Each host answers ARP for its own containers (requests from
// tunnels meet the same responders) and delivers only to them. Traffic from
// tunnels must come from the network but not from this host's range (no
// impersonating local containers: each host guards its own ports); with
// icc=false it passes the same conntrack as local traffic, so only replies
// and links (by address) reach a container. IPv6 likewise, with neighbour
// solicitations in place of ARP requests.
func tunnelFlows(c uint64, b Bridge) []*ovs.Flow {
	var flood []ovs.Action
	for _, t := range b.Tunnels {
		flood = append(flood, ovs.Output(t))
	}
	fs := []*ovs.Flow{
		// Unknown unicast from this host: every tunnel, via isolation.
		flow(TableL2, PrioFallback-1, c, "", 0, []ovs.Match{ovs.DataLinkDestination("00:00:00:00:00:00/01:00:00:00:00:00"), RegVLAN.Match(0)},
			RegDstKind.Load(KindTunnel), goTo(TableIsolation)),
		flow(TableL2, PrioFallback, c, "", 0, []ovs.Match{RegSrcKind.Match(KindTunnel)}, ovs.Drop()),
		flow(TableOutput, PrioNormal, c, "", 0, []ovs.Match{RegDstKind.Match(KindTunnel)}, flood...),
	}
	for _, t := range b.Tunnels {
		fs = append(fs, flow(TableClassifier, PrioNormal, c, "", t, nil, RegSrcKind.Load(KindTunnel), RegVLAN.Load(0), goTo(TableSpoofGuard)))
	}
	fs = append(fs, tunnelGuard(c, b)...)
	fs = append(fs, tunnelNeighbourFlood(c, b, flood)...)
	if !b.ICC {
		fs = append(fs, tunnelIsolation(c)...)
	}
	return fs
}

// tunnelGuard admits from tunnels only sources in the network and not in
// this host's range (plus IPv6 link-local, for neighbour discovery).
func tunnelGuard(c uint64, b Bridge) []*ovs.Flow {
	fromTunnel := RegSrcKind.Match(KindTunnel)
	var fs []*ovs.Flow
	for _, r := range b.Ranges {
		if r.Addr().Is4() {
			fs = append(fs,
				flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolIPv4, 0, []ovs.Match{fromTunnel, ovs.NetworkSource(r.String())}, ovs.Drop()),
				flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolARP, 0, []ovs.Match{fromTunnel, ovs.ARPSourceProtocolAddress(r.String())}, ovs.Drop()))
			continue
		}
		fs = append(fs, flow(TableSpoofGuard, PrioGuard, c, ovs.ProtocolIPv6, 0, []ovs.Match{fromTunnel, ovs.IPv6Source(r.String())}, ovs.Drop()))
	}
	v6 := false
	for _, s := range b.Subnets {
		if s.Addr().Is4() {
			fs = append(fs,
				flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolIPv4, 0, []ovs.Match{fromTunnel, ovs.NetworkSource(s.String())}, goTo(TableARPND)),
				flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolARP, 0, []ovs.Match{fromTunnel, ovs.ARPSourceProtocolAddress(s.String())}, goTo(TableARPND)))
			continue
		}
		v6 = true
		fs = append(fs, flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolIPv6, 0, []ovs.Match{fromTunnel, ovs.IPv6Source(s.String())}, goTo(TableARPND)))
	}
	if v6 {
		fs = append(fs, flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolIPv6, 0, []ovs.Match{fromTunnel, ovs.IPv6Source("fe80::/10")}, goTo(TableARPND)))
	}
	return fs
}

// tunnelNeighbourFlood sends ARP requests and neighbour solicitations for
// the network that no local responder answered, from local containers and
// the host, to every tunnel.
func tunnelNeighbourFlood(c uint64, b Bridge, flood []ovs.Action) []*ovs.Flow {
	var fs []*ovs.Flow
	for _, s := range b.Subnets {
		for _, k := range []int{KindContainer, KindGateway} {
			from := []ovs.Match{RegSrcKind.Match(k), RegVLAN.Match(0)}
			if s.Addr().Is4() {
				fs = append(fs, flow(TableARPND, PrioFallback+1, c, ovs.ProtocolARP, 0,
					append([]ovs.Match{ovs.ARPOperation(1), ovs.ARPTargetProtocolAddress(s.String())}, from...), flood...))
				continue
			}
			fs = append(fs, flow(TableARPND, PrioFallback+1, c, ovs.ProtocolICMPv6, 0,
				append([]ovs.Match{ovs.ICMP6Type(135), ovs.NeighborDiscoveryTarget(s.String())}, from...), flood...))
		}
	}
	return fs
}

// tunnelIsolation enforces icc=false on the destination's host: IP into a
// tunnel is committed (so replies coming back are +est here), IP out of a
// tunnel meets the same conntrack and links as local traffic; ARP and
// neighbour advertisements (answers from another host's responder) pass.
func tunnelIsolation(c uint64) []*ovs.Flow {
	ct, commit := ctLinks(), ctCommit()
	toTunnel := []ovs.Match{RegSrcKind.Match(KindContainer), RegDstKind.Match(KindTunnel)}
	fromTunnel := []ovs.Match{RegSrcKind.Match(KindTunnel), RegDstKind.Match(KindContainer)}
	return []*ovs.Flow{
		flow(TableIsolation, PrioNormal, c, ovs.ProtocolIPv4, 0, toTunnel, commit, goTo(TableOutput)),
		flow(TableIsolation, PrioNormal, c, ovs.ProtocolIPv6, 0, toTunnel, commit, goTo(TableOutput)),
		flow(TableIsolation, PrioDeny, c, ovs.ProtocolARP, 0, toTunnel, goTo(TableOutput)),
		flow(TableIsolation, PrioDeny-1, c, "", 0, toTunnel, ovs.Drop()),
		flow(TableIsolation, PrioNormal, c, ovs.ProtocolIPv4, 0, fromTunnel, ct),
		flow(TableIsolation, PrioNormal, c, ovs.ProtocolIPv6, 0, fromTunnel, ct),
		flow(TableIsolation, PrioNormal+1, c, ovs.ProtocolICMPv6, 0, append([]ovs.Match{ovs.ICMP6Type(136)}, fromTunnel...), goTo(TableOutput)),
		flow(TableIsolation, PrioDeny, c, ovs.ProtocolARP, 0, fromTunnel, goTo(TableOutput)),
		flow(TableIsolation, PrioDeny-1, c, "", 0, fromTunnel, ovs.Drop()),
	}
}

// gatewayNeighbour answers ARP requests and solicitations for the gateway
// with the bridge's MAC, or, when that is not known, hands them to the
// host's stack behind LOCAL.
func gatewayNeighbour(c uint64, gw netip.Addr, mac net.HardwareAddr) *ovs.Flow {
	if len(mac) > 0 {
		gp := Port{MAC: mac, VLAN: 0}
		if gw.Is4() {
			return arpResponder(c, gp, gw, false)
		}
		return ndResponder(c, gp, gw)
	}
	if gw.Is4() {
		return flow(TableARPND, PrioGateway, c, ovs.ProtocolARP, 0,
			[]ovs.Match{ovs.ARPOperation(1), ovs.ARPTargetProtocolAddress(gw.String()), RegVLAN.Match(0)}, ovs.Local())
	}
	return flow(TableARPND, PrioGateway, c, ovs.ProtocolICMPv6, 0,
		[]ovs.Match{ovs.ICMP6Type(135), ovs.NeighborDiscoveryTarget(gw.String()), RegVLAN.Match(0)}, ovs.Local())
}

// ctLinks sends a packet through isolation's conntrack zone, on to the
// links table.
func ctLinks() ovs.Action {
	return ovs.ConnectionTracking(fmt.Sprintf("table=%d,zone=%d", TableLinks, CTZone))
}

// ctCommit commits a packet's connection in isolation's conntrack zone.
func ctCommit() ovs.Action { return ovs.ConnectionTracking(fmt.Sprintf("commit,zone=%d", CTZone)) }

// isolationFlows implement icc=false: container-to-container IP traffic goes
// through conntrack, where only replies, related ICMP and links pass;
// container-to-container non-IP is dropped. Gateway traffic is untouched.
func isolationFlows(c uint64) []*ovs.Flow {
	ct := ctLinks()
	both := []ovs.Match{RegSrcKind.Match(KindContainer), RegDstKind.Match(KindContainer)}
	return []*ovs.Flow{
		flow(TableIsolation, PrioNormal, c, ovs.ProtocolIPv4, 0, both, ct),
		flow(TableIsolation, PrioNormal, c, ovs.ProtocolIPv6, 0, both, ct),
		flow(TableIsolation, PrioDeny, c, "", 0, both, ovs.Drop()),
		flow(TableLinks, PrioHigh, c, "", 0, []ovs.Match{ovs.ConnectionTrackingState(ovs.SetState(ovs.CTStateTracked), ovs.SetState(ovs.CTStateEstablished))}, goTo(TableOutput)),
		flow(TableLinks, PrioHigh, c, "", 0, []ovs.Match{ovs.ConnectionTrackingState(ovs.SetState(ovs.CTStateTracked), ovs.SetState(ovs.CTStateRelated))}, goTo(TableOutput)),
		flow(TableLinks, PrioMiss, c, "", 0, nil, ovs.Drop()),
	}
}

// PortFlows are one container port's flows (at most 8).
func PortFlows(p Port) []*ovs.Flow {
	c := PortCookie(p.Name)
	mac := p.MAC.String()
	fs := []*ovs.Flow{classify(c, p)}
	fs = append(fs, spoofGuard(c, p)...)
	for _, a := range p.Addrs {
		if a.Is4() {
			fs = append(fs, arpResponder(c, p, a, p.VLAN == 0))
		} else {
			fs = append(fs, ndResponder(c, p, a))
		}
	}
	fs = append(fs, flow(TableL2, PrioNormal, c, "", 0, []ovs.Match{ovs.DataLinkDestination(mac), RegVLAN.Match(p.VLAN)},
		RegOutPort.Load(p.Ofport), RegDstKind.Load(KindContainer), goTo(TableIsolation)))
	return fs
}

func classify(c uint64, p Port) *ovs.Flow {
	return flow(TableClassifier, PrioNormal, c, "", p.Ofport, nil,
		RegSrcKind.Load(KindContainer), RegVLAN.Load(p.VLAN), goTo(TableSpoofGuard))
}

// spoofGuard lets the port send only from its MAC and its addresses. A port
// ovsnet gave no address is held to its MAC alone.
func spoofGuard(c uint64, p Port) []*ovs.Flow {
	mac := p.MAC.String()
	src := ovs.DataLinkSource(mac)
	if len(p.Addrs) == 0 {
		return []*ovs.Flow{flow(TableSpoofGuard, PrioNormal, c, "", p.Ofport, []ovs.Match{src}, goTo(TableARPND))}
	}
	var fs []*ovs.Flow
	v6 := false
	for _, a := range p.Addrs {
		if a.Is4() {
			fs = append(fs,
				flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolIPv4, p.Ofport, []ovs.Match{src, ovs.NetworkSource(a.String())}, goTo(TableARPND)),
				flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolARP, p.Ofport,
					[]ovs.Match{src, ovs.ARPSourceHardwareAddress(p.MAC), ovs.ARPSourceProtocolAddress(a.String())}, goTo(TableARPND)))
			continue
		}
		v6 = true
		fs = append(fs, flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolIPv6, p.Ofport, []ovs.Match{src, ovs.IPv6Source(a.String())}, goTo(TableARPND)))
	}
	if v6 {
		// Link-local sources (neighbour discovery, MLD), still from its own MAC.
		fs = append(fs, flow(TableSpoofGuard, PrioNormal, c, ovs.ProtocolIPv6, p.Ofport, []ovs.Match{src, ovs.IPv6Source("fe80::/10")}, goTo(TableARPND)))
		fs = append(fs, advertGuard(c, p)...)
	}
	return fs
}

// advertGuard holds a port's neighbour advertisements to its own
// addresses, with its own MAC as the target link-layer address, from one of
// its addresses or its link-local one: otherwise a container could point
// the host's (or anyone's) neighbour entry for a peer at itself. ARP's
// equivalent is the ARP spoof guard above. Solicitations never reach a
// container (table 20 answers them), so its advertisements are only its
// own announcements.
func advertGuard(c uint64, p Port) []*ovs.Flow {
	na := []ovs.Match{ovs.ICMP6Type(136), ovs.DataLinkSource(p.MAC.String()), ovs.NeighborDiscoveryTargetLinkLayer(p.MAC)}
	fs := []*ovs.Flow{flow(TableSpoofGuard, PrioAdvertGuard, c, ovs.ProtocolICMPv6, p.Ofport, []ovs.Match{ovs.ICMP6Type(136)}, ovs.Drop())}
	for _, a := range p.Addrs {
		if a.Is4() {
			continue
		}
		for _, from := range []string{a.String(), "fe80::/10"} {
			m := append(append([]ovs.Match{}, na...), ovs.IPv6Source(from), ovs.NeighborDiscoveryTarget(a.String()))
			fs = append(fs, flow(TableSpoofGuard, PrioAdvertAllow, c, ovs.ProtocolICMPv6, p.Ofport, m, goTo(TableARPND)))
		}
	}
	return fs
}

// arpResponder answers ARP requests for a from the port's own VLAN with the
// port's MAC, turning the request into the reply and sending it back. With
// copy, the request also goes to the gateway, so that the host's neighbour
// entries follow gratuitous ARPs.
func arpResponder(c uint64, p Port, a netip.Addr, copy bool) *ovs.Flow {
	var acts []ovs.Action
	if copy {
		acts = append(acts, ovs.Local())
	}
	a4 := a.As4()
	acts = append(acts,
		ovs.Move("NXM_OF_ETH_SRC[]", "NXM_OF_ETH_DST[]"),
		ovs.SetField(p.MAC.String(), "eth_src"), // as ovs-ofctl prints it, so diffs stay clean
		ovs.Load("0x2", "NXM_OF_ARP_OP[]"),
		ovs.Move("NXM_NX_ARP_SHA[]", "NXM_NX_ARP_THA[]"),
		ovs.Move("NXM_OF_ARP_SPA[]", "NXM_OF_ARP_TPA[]"),
		ovs.Load(fmt.Sprintf("0x%x", []byte(p.MAC)), "NXM_NX_ARP_SHA[]"),
		ovs.Load(fmt.Sprintf("0x%02x%02x%02x%02x", a4[0], a4[1], a4[2], a4[3]), "NXM_OF_ARP_SPA[]"),
		ovs.InPort())
	return flow(TableARPND, PrioHigh, c, ovs.ProtocolARP, 0,
		[]ovs.Match{ovs.ARPOperation(1), ovs.ARPTargetProtocolAddress(a.String()), RegVLAN.Match(p.VLAN)}, acts...)
}

// ndResponder answers neighbour solicitations for a from the port's own VLAN
// with the port's MAC: it turns the solicitation around (addresses, type)
// here and table 21 finishes the advertisement.
func ndResponder(c uint64, p Port, a netip.Addr) *ovs.Flow {
	return flow(TableARPND, PrioHigh, c, ovs.ProtocolICMPv6, 0,
		[]ovs.Match{ovs.ICMP6Type(135), ovs.NeighborDiscoveryTarget(a.String()), RegVLAN.Match(p.VLAN)},
		ovs.Move("NXM_OF_ETH_SRC[]", "NXM_OF_ETH_DST[]"),
		ovs.SetField(p.MAC.String(), "eth_src"),
		ovs.Move("NXM_NX_IPV6_SRC[]", "NXM_NX_IPV6_DST[]"),
		ovs.SetField(a.String(), "ipv6_src"),
		ovs.SetField("136", "icmpv6_type"),
		RegNDReply.Load(1),
		goTo(TableNDReply))
}

// LinkFlows let l.Src open connections to l.Dst: the first packet of each
// connection is committed to conntrack, whose +est/+rel flows pass the rest
// both ways. One flow per family and rule.
func LinkFlows(l Link) []*ovs.Flow {
	c := LinkCookie(l.Src, l.Dst)
	commit := ctCommit()
	newConn := ovs.ConnectionTrackingState(ovs.SetState(ovs.CTStateTracked), ovs.SetState(ovs.CTStateNew))
	var fs []*ovs.Flow
	for _, s := range l.SrcPort.Addrs {
		for _, d := range l.DstPort.Addrs {
			if s.Is4() != d.Is4() {
				continue
			}
			m := []ovs.Match{newConn}
			// A container on another host is known by its address alone.
			if len(l.SrcPort.MAC) > 0 {
				m = append(m, ovs.DataLinkSource(l.SrcPort.MAC.String()))
			}
			if len(l.DstPort.MAC) > 0 {
				m = append(m, ovs.DataLinkDestination(l.DstPort.MAC.String()))
			}
			proto := ovs.ProtocolIPv4
			if s.Is4() {
				m = append(m, ovs.NetworkSource(s.String()), ovs.NetworkDestination(d.String()))
			} else {
				proto = ovs.ProtocolIPv6
				m = append(m, ovs.IPv6Source(s.String()), ovs.IPv6Destination(d.String()))
			}
			if len(l.Rules) == 0 {
				fs = append(fs, flow(TableLinks, PrioNormal, c, proto, 0, m, commit, goTo(TableOutput)))
				continue
			}
			for _, r := range l.Rules {
				p := transport(r.Proto, s.Is4())
				fs = append(fs, flow(TableLinks, PrioNormal, c, p, 0, append(append([]ovs.Match{}, m...), ovs.TransportDestinationPort(r.Port)), commit, goTo(TableOutput)))
			}
		}
	}
	return fs
}

func transport(proto string, v4 bool) ovs.Protocol {
	switch {
	case proto == "udp" && v4:
		return ovs.ProtocolUDPv4
	case proto == "udp":
		return ovs.ProtocolUDPv6
	case v4:
		return ovs.ProtocolTCPv4
	}
	return ovs.ProtocolTCPv6
}
