package flows

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/ovsnet/ovsnet/flows/openflow"
)

// BridgeModel is the bridge-wide intent the pipeline needs (the flow
// model of a bridge; PortModel and LinkModel are its ports' and links').
type BridgeModel struct {
	ICC        bool
	Gateways   []netip.Addr     // the bridge's gateway addresses (on LOCAL)
	GatewayMAC net.HardwareAddr // the MAC of the bridge's own port
	// GatewayVLAN is the VLAN the gateway (LOCAL) is in; 0: untagged.
	// Containers reach the gateway, and its broadcasts, only from it.
	GatewayVLAN int
	// AnswerND: the datapath can write neighbour discovery options (OVS's
	// nd_ext capability), so flows answer solicitations themselves; else
	// each solicitation is relayed to its target's owner, who answers.
	AnswerND bool

	// A network spanning hosts: the whole subnets, this host's ranges of
	// them, and the OpenFlow ports of the tunnels to the other hosts.
	Subnets []netip.Prefix
	Ranges  []netip.Prefix
	Tunnels []int
}

// PortModel is one container port.
type PortModel struct {
	Name   string // OVS port name (the cookie's object)
	Ofport int
	MAC    net.HardwareAddr
	Addrs  []netip.Addr
	VLAN   int
	// FloodPPS bounds, in packets a second, what the port sends that is
	// not part of a TCP connection under way (meter FloodMeter(p)); 0: no
	// bound.
	FloodPPS int
}

// Rule narrows a link to one protocol and destination port.
type Rule struct {
	Proto string // "tcp" or "udp"
	Port  uint16
}

func (r Rule) String() string { return fmt.Sprintf("%d/%s", r.Port, r.Proto) }

// LinkModel lets Src open connections to Dst (all of them when Rules is empty).
type LinkModel struct {
	Src, Dst         string // container names as stored (the cookie's object)
	SrcPort, DstPort PortModel
	Rules            []Rule
}

func goTo(t Table) openflow.Action { return openflow.Resubmit(uint8(t)) }

// builder makes one flow: at(table, priority, cookie), then on(matches)
// as often as needed, then do(actions).
type builder struct{ f *openflow.Flow }

func at(t Table, prio int, cookie uint64) builder {
	return builder{&openflow.Flow{Table: uint8(t), Priority: uint16(prio), Cookie: cookie}}
}

func (b builder) on(ms ...openflow.Match) builder {
	b.f.Match = append(b.f.Match, ms...)
	return b
}

func (b builder) do(as ...openflow.Action) *openflow.Flow {
	b.f.Actions = as
	return b.f
}

// Addresses and masks the pipeline matches.
var (
	multicast = net.HardwareAddr{1, 0, 0, 0, 0, 0} // the group bit
	unicast   = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	noMAC     = net.HardwareAddr{0, 0, 0, 0, 0, 0} // nd_tll of an advertisement without the option
	linkLocal = netip.MustParsePrefix("fe80::/10")
)

// nd matches neighbour discovery message type t, code 0, for flows that
// match its ND fields (nd_target, nd_tll): without the code matched,
// ovs-vswitchd cannot put those fields in a kernel datapath flow's mask,
// and the datapath then caches one verdict for every target and address.
func nd(t uint8) []openflow.Match {
	return []openflow.Match{openflow.ICMPv6Type(t), openflow.ICMPv6Code(0)}
}

// macValue is a MAC as a number, to load into a field.
func macValue(m net.HardwareAddr) uint64 {
	var v uint64
	for _, b := range m {
		v = v<<8 | uint64(b)
	}
	return v
}

// BridgeFlows are the bridge-wide flows: table misses, the gateway's
// classification and ARP/ND, guards against rogue servers, isolation and
// output.
func BridgeFlows(b BridgeModel) []*openflow.Flow {
	c := BridgeCookie()
	fs := []*openflow.Flow{
		// Unknown ports and spoofed packets end here.
		at(TableClassifier, PrioMiss, c).do(drop(DropUnknownPort)...),
		at(TableClassifier, PrioNormal, c).on(openflow.InPort(openflow.PortLocal)).do(RegSrcKind.Load(KindGateway), RegVLAN.Load(b.GatewayVLAN), goTo(TableARPND)),
		at(TableSpoofGuard, PrioMiss, c).do(drop(DropSpoofed)...),
		// Containers never act as routers or DHCP servers.
		at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoICMPv6, openflow.ICMPv6Type(134)).do(drop(DropRogueServer)...),
		at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoUDP, openflow.UDPSrc(67)).do(drop(DropRogueServer)...),
		at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoUDP6, openflow.UDPSrc(547)).do(drop(DropRogueServer)...),
		// Access ports carry untagged frames only: a tag from a container
		// would reach the host's bridge interface (or a VLAN device on it).
		at(TableSpoofGuard, PrioGuard, c).on(openflow.VLANTCI(0x1000, 0x1000)).do(drop(DropTagged)...),
		// Nor reach the host's loopback (route_localnet is on for 127.0.0.1
		// publishing; nat.LoopbackGuard drops it in the host too).
		at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoIPv4, openflow.IPv4Dst(netip.MustParsePrefix("127.0.0.0/8"))).do(drop(DropLoopback)...),
		at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoIPv6, openflow.IPv6Dst(openflow.Host(netip.IPv6Loopback()))).do(drop(DropLoopback)...),
		// ARP requests and neighbour solicitations nobody answers are dropped,
		// never flooded; everything else goes on to L2.
		at(TableARPND, PrioFallback, c).on(openflow.ProtoARP, openflow.ARPOp(1)).do(drop(DropUnanswered)...),
		at(TableARPND, PrioFallback, c).on(openflow.ProtoICMPv6, openflow.ICMPv6Type(135)).do(drop(DropUnanswered)...),
		at(TableARPND, PrioMiss, c).do(goTo(TableL2)),
		// Broadcast and multicast of the gateway's VLAN's containers go to
		// the gateway only; unknown unicast goes nowhere.
		at(TableL2, PrioFallback, c).on(openflow.EthDstMasked(multicast, multicast), RegSrcKind.Match(KindContainer), RegVLAN.Match(b.GatewayVLAN)).do(RegOutPort.Load(LocalPort), RegDstKind.Load(KindGateway), goTo(TableIsolation)),
		at(TableL2, PrioMiss, c).do(drop(DropNoDestination)...),
		at(TableIsolation, PrioMiss, c).do(goTo(TableOutput)),
		at(TableOutput, PrioMiss, c).do(openflow.OutputField(RegOutPort.Field())),
	}
	fs = append(fs, dropFlows(c)...)
	for _, gw := range b.Gateways {
		fs = append(fs, gatewayNeighbour(c, gw, b.GatewayMAC, b.GatewayVLAN))
	}
	fs = append(fs, ndAnswerOrRelay(c, b.AnswerND)...)
	if len(b.GatewayMAC) > 0 {
		fs = append(fs, at(TableL2, PrioNormal, c).on(openflow.EthDst(b.GatewayMAC), RegVLAN.Match(b.GatewayVLAN)).do(RegOutPort.Load(LocalPort), RegDstKind.Load(KindGateway), goTo(TableIsolation)))
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
func tunnelFlows(c uint64, b BridgeModel) []*openflow.Flow {
	var flood []openflow.Action
	for _, t := range b.Tunnels {
		flood = append(flood, openflow.Output(uint32(t)))
	}
	fs := []*openflow.Flow{
		// Unknown unicast from this host: every tunnel, via isolation.
		at(TableL2, PrioFallback-1, c).on(openflow.EthDstMasked(unicast, multicast), RegVLAN.Match(0)).do(RegDstKind.Load(KindTunnel), goTo(TableIsolation)),
		at(TableL2, PrioFallback, c).on(RegSrcKind.Match(KindTunnel)).do(drop(DropFromTunnel)...),
		at(TableOutput, PrioNormal, c).on(RegDstKind.Match(KindTunnel)).do(flood...),
	}
	for _, t := range b.Tunnels {
		fs = append(fs, at(TableClassifier, PrioNormal, c).on(openflow.InPort(uint32(t))).do(RegSrcKind.Load(KindTunnel), RegVLAN.Load(0), goTo(TableSpoofGuard)))
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
func tunnelGuard(c uint64, b BridgeModel) []*openflow.Flow {
	fromTunnel := RegSrcKind.Match(KindTunnel)
	var fs []*openflow.Flow
	for _, r := range b.Ranges {
		if r.Addr().Is4() {
			fs = append(fs,
				at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoIPv4, fromTunnel, openflow.IPv4Src(r)).do(drop(DropTunnelSource)...),
				at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoARP, fromTunnel, openflow.ARPSpa(r)).do(drop(DropTunnelSource)...))
			continue
		}
		fs = append(fs, at(TableSpoofGuard, PrioGuard, c).on(openflow.ProtoIPv6, fromTunnel, openflow.IPv6Src(r)).do(drop(DropTunnelSource)...))
	}
	v6 := false
	for _, s := range b.Subnets {
		if s.Addr().Is4() {
			fs = append(fs,
				at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoIPv4, fromTunnel, openflow.IPv4Src(s)).do(goTo(TableARPND)),
				at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoARP, fromTunnel, openflow.ARPSpa(s)).do(goTo(TableARPND)))
			continue
		}
		v6 = true
		fs = append(fs, at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoIPv6, fromTunnel, openflow.IPv6Src(s)).do(goTo(TableARPND)))
	}
	if v6 {
		fs = append(fs, at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoIPv6, fromTunnel, openflow.IPv6Src(linkLocal)).do(goTo(TableARPND)))
	}
	return fs
}

// tunnelNeighbourFlood sends ARP requests and neighbour solicitations for
// the network that no local responder answered, from local containers and
// the host, to every tunnel.
func tunnelNeighbourFlood(c uint64, b BridgeModel, flood []openflow.Action) []*openflow.Flow {
	var fs []*openflow.Flow
	for _, s := range b.Subnets {
		for _, k := range []int{KindContainer, KindGateway} {
			from := []openflow.Match{RegSrcKind.Match(k), RegVLAN.Match(0)}
			if s.Addr().Is4() {
				fs = append(fs, at(TableARPND, PrioFallback+1, c).on(openflow.ProtoARP).on(openflow.ARPOp(1), openflow.ARPTpa(s)).on(from...).do(flood...))
				continue
			}
			fs = append(fs, at(TableARPND, PrioFallback+1, c).on(openflow.ProtoICMPv6).on(nd(135)...).on(openflow.NDTarget(s)).on(from...).do(flood...))
		}
	}
	return fs
}

// tunnelIsolation enforces icc=false on the destination's host: IP into a
// tunnel is committed (so replies coming back are +est here), IP out of a
// tunnel meets the same conntrack and links as local traffic; ARP and
// neighbour advertisements (answers from another host's responder) pass.
func tunnelIsolation(c uint64) []*openflow.Flow {
	ct, commit := ctLinks(), ctCommit()
	toTunnel := []openflow.Match{RegSrcKind.Match(KindContainer), RegDstKind.Match(KindTunnel)}
	fromTunnel := []openflow.Match{RegSrcKind.Match(KindTunnel), RegDstKind.Match(KindContainer)}
	return []*openflow.Flow{
		at(TableIsolation, PrioNormal, c).on(openflow.ProtoIPv4).on(toTunnel...).do(commit, goTo(TableOutput)),
		at(TableIsolation, PrioNormal, c).on(openflow.ProtoIPv6).on(toTunnel...).do(commit, goTo(TableOutput)),
		at(TableIsolation, PrioDeny, c).on(openflow.ProtoARP).on(toTunnel...).do(goTo(TableOutput)),
		at(TableIsolation, PrioDeny-1, c).on(toTunnel...).do(drop(DropNonIP)...),
		at(TableIsolation, PrioNormal, c).on(openflow.ProtoIPv4).on(fromTunnel...).do(ct),
		at(TableIsolation, PrioNormal, c).on(openflow.ProtoIPv6).on(fromTunnel...).do(ct),
		at(TableIsolation, PrioNormal+1, c).on(openflow.ProtoICMPv6).on(openflow.ICMPv6Type(136)).on(fromTunnel...).do(goTo(TableOutput)),
		at(TableIsolation, PrioDeny, c).on(openflow.ProtoARP).on(fromTunnel...).do(goTo(TableOutput)),
		at(TableIsolation, PrioDeny-1, c).on(fromTunnel...).do(drop(DropNonIP)...),
	}
}

// ndAnswerOrRelay finish what an ND responder (table 20) started, as the
// datapath allows. Where it can write ND options, the advertisement the
// responder made in its clone gets its target link-layer option (the
// answering MAC, already in eth_src) with the solicited and override
// flags, and goes back; the solicitation itself ends. Where it cannot (the
// kernel datapath has no nd_ext), the clone ends and the solicitation goes
// to the target's owner (reg4), who answers it.
func ndAnswerOrRelay(c uint64, answer bool) []*openflow.Flow {
	fs := []*openflow.Flow{at(TableNDReply, PrioMiss, c).do(openflow.Drop()), at(TableNDRelay, PrioMiss, c).do(openflow.Drop())}
	if answer {
		return append(fs, at(TableNDReply, PrioNormal, c).on(openflow.ProtoICMPv6, openflow.ICMPv6Type(136), RegNDReply.Match(1)).do(openflow.Move(openflow.FieldEthSrc, openflow.FieldNDTLL), openflow.SetNDOptionsType(2), openflow.SetNDReserved(0x60000000), openflow.In()))
	}
	return append(fs, at(TableNDRelay, PrioNormal, c).on(openflow.ProtoICMPv6, openflow.ICMPv6Type(135)).do(openflow.OutputField(RegOutPort.Field())))
}

// gatewayNeighbour answers ARP requests and solicitations for the gateway
// from its VLAN with the bridge's MAC, or, when that is not known, hands
// them to the host's stack behind LOCAL.
func gatewayNeighbour(c uint64, gw netip.Addr, mac net.HardwareAddr, vlan int) *openflow.Flow {
	if len(mac) > 0 {
		gp := PortModel{MAC: mac, VLAN: vlan, Ofport: LocalPort}
		if gw.Is4() {
			return arpResponder(c, gp, gw, false)
		}
		return ndResponder(c, gp, gw)
	}
	if gw.Is4() {
		return at(TableARPND, PrioGateway, c).on(openflow.ProtoARP, openflow.ARPOp(1), openflow.ARPTpa(openflow.Host(gw)), RegVLAN.Match(vlan)).do(openflow.Local())
	}
	return at(TableARPND, PrioGateway, c).on(openflow.ProtoICMPv6).on(nd(135)...).on(openflow.NDTarget(openflow.Host(gw)), RegVLAN.Match(vlan)).do(openflow.Local())
}

// ctLinks sends a packet through isolation's conntrack zone, on to the
// links table.
func ctLinks() openflow.Action {
	return openflow.CTTable(CTZone, uint8(TableLinks))
}

// ctCommit commits a packet's connection in isolation's conntrack zone.
func ctCommit() openflow.Action { return openflow.CTCommit(CTZone) }

// isolationFlows implement icc=false: container-to-container IP traffic goes
// through conntrack, where only replies, related ICMP and links pass;
// container-to-container non-IP is dropped. Gateway traffic is untouched.
// Neighbour advertisements pass (conntrack has no connection for them):
// the spoof guard holds each to its sender's own addresses and MAC, and
// where solicitations are relayed they are the answers.
func isolationFlows(c uint64) []*openflow.Flow {
	ct := ctLinks()
	both := []openflow.Match{RegSrcKind.Match(KindContainer), RegDstKind.Match(KindContainer)}
	return []*openflow.Flow{
		at(TableIsolation, PrioNormal+1, c).on(openflow.ProtoICMPv6, openflow.ICMPv6Type(136)).on(both...).do(goTo(TableOutput)),
		at(TableIsolation, PrioNormal, c).on(openflow.ProtoIPv4).on(both...).do(ct),
		at(TableIsolation, PrioNormal, c).on(openflow.ProtoIPv6).on(both...).do(ct),
		at(TableIsolation, PrioDeny, c).on(both...).do(drop(DropNonIP)...),
		at(TableLinks, PrioHigh, c).on(openflow.CTState(openflow.CTTracked, openflow.CTEstablished)).do(goTo(TableOutput)),
		// Related (ICMP errors) only between a link's ends: LinkFlows.
		at(TableLinks, PrioMiss, c).do(drop(DropNoLink)...),
	}
}

// PortFlows are one container port's flows (at most 14).
func PortFlows(p PortModel) []*openflow.Flow {
	c := PortCookie(p.Name)
	fs := classify(c, p)
	fs = append(fs, spoofGuard(c, p)...)
	for _, a := range p.Addrs {
		if a.Is4() {
			fs = append(fs, arpResponder(c, p, a, p.VLAN == 0))
		} else {
			fs = append(fs, ndResponder(c, p, a))
		}
	}
	fs = append(fs, at(TableL2, PrioNormal, c).on(openflow.EthDst(p.MAC), RegVLAN.Match(p.VLAN)).do(RegOutPort.Load(p.Ofport), RegDstKind.Load(KindContainer), goTo(TableIsolation)))
	return fs
}

// classify marks the port's packets as a container's, in its VLAN. With a
// flood bound, what is not a TCP segment carrying an ACK (a connection's
// every segment after its first) goes through the port's meter first:
// connection attempts, UDP, ICMP, ARP, broadcasts.
func classify(c uint64, p PortModel) []*openflow.Flow {
	in := openflow.InPort(uint32(p.Ofport))
	acts := []openflow.Action{RegSrcKind.Load(KindContainer), RegVLAN.Load(p.VLAN), goTo(TableSpoofGuard)}
	all := at(TableClassifier, PrioNormal, c).on(in).do(acts...)
	if p.FloodPPS <= 0 {
		return []*openflow.Flow{all}
	}
	all.Meter = FloodMeter(p).ID
	return []*openflow.Flow{all,
		at(TableClassifier, PrioNormal+1, c).on(openflow.ProtoTCP, openflow.TCPAck(), in).do(acts...),
		at(TableClassifier, PrioNormal+1, c).on(openflow.ProtoTCP6, openflow.TCPAck(), in).do(acts...),
	}
}

// FloodMeter is port p's meter: its ID is the port's OpenFlow port number,
// its burst a fifth of a second at its rate.
func FloodMeter(p PortModel) openflow.Meter {
	return openflow.Meter{ID: uint32(p.Ofport), PPS: uint32(p.FloodPPS), Burst: uint32(max(p.FloodPPS/5, 16))}
}

// PortMeters are the meters port p's flows use.
func PortMeters(p PortModel) []openflow.Meter {
	if p.FloodPPS <= 0 {
		return nil
	}
	return []openflow.Meter{FloodMeter(p)}
}

// PortChange puts port p's flows, and the meters they use, in place of
// its old flows.
func PortChange(p PortModel) Change {
	return Change{Cookie: PortCookie(p.Name), Mask: ObjectMask, Flows: PortFlows(p), Meters: PortMeters(p)}
}

// spoofGuard lets the port send only from its MAC and its addresses. A port
// ovsnet gave no address is held to its MAC alone.
func spoofGuard(c uint64, p PortModel) []*openflow.Flow {
	src := openflow.EthSrc(p.MAC)
	if len(p.Addrs) == 0 {
		return []*openflow.Flow{at(TableSpoofGuard, PrioNormal, c).on(openflow.InPort(uint32(p.Ofport)), src).do(goTo(TableARPND))}
	}
	var fs []*openflow.Flow
	v6 := false
	for _, a := range p.Addrs {
		if a.Is4() {
			fs = append(fs,
				at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoIPv4, openflow.InPort(uint32(p.Ofport)), src, openflow.IPv4Src(openflow.Host(a))).do(goTo(TableARPND)),
				at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoARP, openflow.InPort(uint32(p.Ofport)), src, openflow.ARPSha(p.MAC), openflow.ARPSpa(openflow.Host(a))).do(goTo(TableARPND)))
			continue
		}
		v6 = true
		fs = append(fs, at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoIPv6, openflow.InPort(uint32(p.Ofport)), src, openflow.IPv6Src(openflow.Host(a))).do(goTo(TableARPND)))
	}
	if v6 {
		// Link-local sources (neighbour discovery, MLD), still from its own MAC.
		fs = append(fs, at(TableSpoofGuard, PrioNormal, c).on(openflow.ProtoIPv6, openflow.InPort(uint32(p.Ofport)), src, openflow.IPv6Src(linkLocal)).do(goTo(TableARPND)))
		fs = append(fs, advertGuard(c, p)...)
	}
	return fs
}

// advertGuard holds a port's neighbour advertisements to its own
// addresses, with its own MAC as the target link-layer address, from one of
// its addresses or its link-local one: otherwise a container could point
// the host's (or anyone's) neighbour entry for a peer at itself. ARP's
// equivalent is the ARP spoof guard above. Its advertisements are its own
// announcements and, where the datapath cannot answer solicitations itself
// (table 22 relays them), its answers.
func advertGuard(c uint64, p PortModel) []*openflow.Flow {
	na := append(nd(136), openflow.EthSrc(p.MAC), openflow.NDTLL(p.MAC))
	fs := []*openflow.Flow{at(TableSpoofGuard, PrioAdvertGuard, c).on(openflow.ProtoICMPv6, openflow.InPort(uint32(p.Ofport)), openflow.ICMPv6Type(136)).do(drop(DropForeignAdvert)...)}
	for _, a := range p.Addrs {
		if a.Is4() {
			continue
		}
		for _, from := range []netip.Prefix{openflow.Host(a), linkLocal} {
			fs = append(fs, at(TableSpoofGuard, PrioAdvertAllow, c).on(openflow.ProtoICMPv6, openflow.InPort(uint32(p.Ofport))).on(na...).
				on(openflow.IPv6Src(from), openflow.NDTarget(openflow.Host(a))).do(goTo(TableARPND)))
		}
		// An answer to a unicast solicitation (a relayed reachability
		// probe) carries no link-layer option: it moves no entry.
		fs = append(fs, at(TableSpoofGuard, PrioAdvertAllow, c).on(openflow.ProtoICMPv6, openflow.InPort(uint32(p.Ofport))).
			on(nd(136)...).on(openflow.EthSrc(p.MAC), openflow.NDTLL(noMAC), openflow.IPv6Src(openflow.Host(a)), openflow.NDTarget(openflow.Host(a))).do(goTo(TableARPND)))
	}
	return fs
}

// arpResponder answers ARP requests for a from the port's own VLAN with the
// port's MAC, turning the request into the reply and sending it back. With
// copy, the request also goes to the gateway, so that the host's neighbour
// entries follow gratuitous ARPs.
func arpResponder(c uint64, p PortModel, a netip.Addr, copy bool) *openflow.Flow {
	var acts []openflow.Action
	if copy {
		acts = append(acts, openflow.Local())
	}
	a4 := a.As4()
	acts = append(acts,
		openflow.Move(openflow.FieldEthSrc, openflow.FieldEthDst),
		openflow.SetEthSrc(p.MAC), // as ovs-ofctl prints it, so diffs stay clean
		openflow.Load(openflow.FieldARPOp, 2),
		openflow.Move(openflow.FieldARPSha, openflow.FieldARPTha),
		openflow.Move(openflow.FieldARPSpa, openflow.FieldARPTpa),
		openflow.Load(openflow.FieldARPSha, macValue(p.MAC)),
		openflow.Load(openflow.FieldARPSpa, uint64(binary.BigEndian.Uint32(a4[:]))),
		openflow.In())
	return at(TableARPND, PrioHigh, c).on(openflow.ProtoARP, openflow.ARPOp(1), openflow.ARPTpa(openflow.Host(a)), RegVLAN.Match(p.VLAN)).do(acts...)
}

// ndResponder answers neighbour solicitations for a from the port's own VLAN
// with the port's MAC: in a clone it turns the solicitation around
// (addresses, type) and table 21 finishes the advertisement; the
// solicitation itself, its owner's port noted in reg4, goes to table 22.
// Which of the two sends something is the bridge's (ndAnswerOrRelay): a
// port's flows are the same on every datapath.
func ndResponder(c uint64, p PortModel, a netip.Addr) *openflow.Flow {
	answer := openflow.Clone(openflow.Move(openflow.FieldEthSrc, openflow.FieldEthDst), openflow.SetEthSrc(p.MAC), openflow.Move(openflow.FieldIPv6Src, openflow.FieldIPv6Dst), openflow.SetIPv6Src(a), openflow.SetICMPv6Type(136), RegNDReply.Load(1), goTo(TableNDReply))
	return at(TableARPND, PrioHigh, c).on(openflow.ProtoICMPv6).on(nd(135)...).on(openflow.NDTarget(openflow.Host(a)), RegVLAN.Match(p.VLAN)).do(RegOutPort.Load(p.Ofport), answer, goTo(TableNDRelay))
}

// LinkFlows let l.Src open connections to l.Dst: the first packet of each
// connection is committed to conntrack, whose +est/+rel flows pass the rest
// both ways. One flow per family and rule.
func LinkFlows(l LinkModel) []*openflow.Flow {
	c := LinkCookie(l.Src, l.Dst)
	commit := ctCommit()
	newConn := openflow.CTState(openflow.CTTracked, openflow.CTNew)
	var fs []*openflow.Flow
	for _, s := range l.SrcPort.Addrs {
		for _, d := range l.DstPort.Addrs {
			if s.Is4() != d.Is4() {
				continue
			}
			m := []openflow.Match{newConn}
			// A container on another host is known by its address alone.
			if len(l.SrcPort.MAC) > 0 {
				m = append(m, openflow.EthSrc(l.SrcPort.MAC))
			}
			if len(l.DstPort.MAC) > 0 {
				m = append(m, openflow.EthDst(l.DstPort.MAC))
			}
			proto := openflow.ProtoIPv4
			if s.Is4() {
				m = append(m, openflow.IPv4Src(openflow.Host(s)), openflow.IPv4Dst(openflow.Host(d)))
			} else {
				proto = openflow.ProtoIPv6
				m = append(m, openflow.IPv6Src(openflow.Host(s)), openflow.IPv6Dst(openflow.Host(d)))
			}
			fs = append(fs, linkRelated(c, proto, l.SrcPort, s, l.DstPort, d), linkRelated(c, proto, l.DstPort, d, l.SrcPort, s))
			if len(l.Rules) == 0 {
				fs = append(fs, at(TableLinks, PrioNormal, c).on(proto).on(m...).do(commit, goTo(TableOutput)))
				continue
			}
			for _, r := range l.Rules {
				proto, port := transport(r, s.Is4())
				fs = append(fs, at(TableLinks, PrioNormal, c).on(proto).on(m...).on(port).do(commit, goTo(TableOutput)))
			}
		}
	}
	return fs
}

// linkRelated passes packets related to a link's connections (ICMP
// errors: port unreachable, fragmentation needed) from one of its ends,
// at address fa, to the other, at ta. Between containers of a bridge the
// only sender of such an error is a connection's other end; from any
// other container it would be forged (conntrack takes any sender whose
// embedded packet cites a connection).
func linkRelated(c uint64, proto openflow.Match, from PortModel, fa netip.Addr, to PortModel, ta netip.Addr) *openflow.Flow {
	m := []openflow.Match{proto, openflow.CTState(openflow.CTTracked, openflow.CTRelated)}
	if len(from.MAC) > 0 {
		m = append(m, openflow.EthSrc(from.MAC))
	}
	if len(to.MAC) > 0 {
		m = append(m, openflow.EthDst(to.MAC))
	}
	if fa.Is4() {
		m = append(m, openflow.IPv4Src(openflow.Host(fa)), openflow.IPv4Dst(openflow.Host(ta)))
	} else {
		m = append(m, openflow.IPv6Src(openflow.Host(fa)), openflow.IPv6Dst(openflow.Host(ta)))
	}
	return at(TableLinks, PrioHigh, c).on(m...).do(goTo(TableOutput))
}

// transport is the protocol and destination port match of rule r.
func transport(r Rule, v4 bool) (proto, port openflow.Match) {
	switch {
	case r.Proto == "udp" && v4:
		return openflow.ProtoUDP, openflow.UDPDst(r.Port)
	case r.Proto == "udp":
		return openflow.ProtoUDP6, openflow.UDPDst(r.Port)
	case v4:
		return openflow.ProtoTCP, openflow.TCPDst(r.Port)
	}
	return openflow.ProtoTCP6, openflow.TCPDst(r.Port)
}
