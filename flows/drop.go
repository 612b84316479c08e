package flows

// Drops: every place the pipeline drops a packet as its verdict loads
// why into RegDrop and goes on to TableDrop, where the packet is dropped.
// A capture of a port adds a flow there that hands the port's dropped
// packets to it, reason and all (CaptureFlows); the datapath's flow is
// the same drop either way (a register is no datapath field).

import (
	"strconv"

	"github.com/ovsnet/ovsnet/flows/openflow"
)

// DropReason is why the pipeline drops a packet.
type DropReason int

// The pipeline's reasons to drop a packet.
const (
	DropUnknownPort   DropReason = iota + 1 // table 0: no port ovsnet knows
	DropSpoofed                             // table 10: not the port's own MAC or address
	DropRogueServer                         // table 10: a router advertisement or DHCP server reply
	DropTagged                              // table 10: a VLAN tag from an access port
	DropLoopback                            // table 10: to a loopback address
	DropTunnelSource                        // table 10: from a tunnel with this host's source
	DropUnanswered                          // table 20: an ARP request or solicitation nobody answers
	DropNoDestination                       // table 30: no port has the destination MAC in the VLAN
	DropFromTunnel                          // table 30: from a tunnel, for no port here
	DropNonIP                               // table 40: non-IP between containers (icc=false)
	DropNoLink                              // table 41: a new connection no link allows
	DropForeignAdvert                       // table 10: an advertisement for another's address
)

// String says why, in plain words (trace's verdict, capture's comment).
func (r DropReason) String() string {
	switch r {
	case DropUnknownPort:
		return "the packet came in on a port ovsnet does not know"
	case DropSpoofed:
		return "the source MAC or address is not the port's own"
	case DropRogueServer:
		return "containers may not send router advertisements or DHCP server replies"
	case DropTagged:
		return "a container's port carries untagged frames only"
	case DropLoopback:
		return "a container may not reach the host's loopback addresses"
	case DropTunnelSource:
		return "a source from another host in this host's range"
	case DropUnanswered:
		return "nobody on this bridge owns the target address"
	case DropNoDestination:
		return "the destination MAC is not on this bridge in this VLAN"
	case DropFromTunnel:
		return "from another host, for no container on this one"
	case DropNonIP:
		return "non-IP traffic between containers is not allowed with icc=false"
	case DropNoLink:
		return "no link allows this new connection"
	case DropForeignAdvert:
		return "a neighbour advertisement for an address that is not the port's own"
	}
	return "reason " + strconv.Itoa(int(r)) + " (unknown to this ovsnet)"
}

// drop is the actions of a drop for reason r: the reason in RegDrop, then
// TableDrop.
func drop(r DropReason) []openflow.Action {
	return []openflow.Action{RegDrop.Load(int(r)), goTo(TableDrop)}
}

// dropFlows are TableDrop's own: every packet that reaches it is dropped.
func dropFlows(c uint64) []*openflow.Flow {
	return []*openflow.Flow{at(TableDrop, PrioMiss, c).do(openflow.Drop())}
}

// CatCapture is the cookie category of a capture's flows.
const CatCapture uint64 = 0x05 << 56

// CaptureCookie owns the flows of capture port name.
func CaptureCookie(name string) uint64 { return CatCapture | hash56(name) }

// CaptureFlows hand what the pipeline drops of what came in on OpenFlow
// port ofport to the OpenFlow connections that asked for packet-ins (the
// capture named name), as well as dropping it: the packet-in carries the
// packet as dropped, RegDrop (why) in its match, and the cookie.
func CaptureFlows(name string, ofport int) []*openflow.Flow {
	return []*openflow.Flow{at(TableDrop, PrioNormal, CaptureCookie(name)).on(openflow.InPort(uint32(ofport))).do(openflow.Controller())}
}
