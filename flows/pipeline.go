// Package flows is ovsnet's OpenFlow pipeline: the tables, registers,
// cookies and priorities in one place, one short function per kind of flow,
// all pure functions of the intent in OVSDB, plus the transport that sends
// them to a bridge in atomic bundles.
//
//	            +------------+   +-------------+   +---------+   +-----------+   +-----------+   +--------+
//	packet ---> | 0 classify | > | 10 spoof    | > | 20 arp/ | > | 30 L2     | > | 40 isolate| > | 50     |
//	            | in_port -> |   | guard: own  |   | nd: ARP |   | dl_dst -> |   | icc=false:|   | output |
//	            | reg0 kind, |   | MAC+IP only;|   | answered|   | reg4 port,|   | ct() to 41|   | reg4   |
//	            | reg2 VLAN  |   | no RA/DHCP  |   | and NS  |   | reg5 kind |   | 41: +est, |   +--------+
//	            | unknown:   |   | server      |   | answered|   | (same VLAN|   | a link's  |
//	            | drop       |   | (gateway    |   | by flows|   | only)     |   | +rel, or  |
//	            +------------+   | skips 10)   |   | never   |   | unknown / |   | a link: ct|
//	                             +-------------+   | flooded |   | bcast ->  |   | commit    |
//	                                               +---------+   | gateway   |   +-----------+
//	                                                             +-----------+
//
// Registers: reg0 = kind of the source port, reg2 = VLAN of the source port
// (0 untagged), reg4 = output port, reg5 = kind of the destination, reg7 =
// why a packet is dropped.
//
// Every drop that is the pipeline's verdict on a packet loads its reason
// (a DropReason) into reg7 and ends in table 60, which drops it; while a
// port is captured, a flow there also hands that port's dropped packets,
// with the reason, to the capture (drop.go).
//
// Cookies: the top byte is the category (bridge-wide, port, link), the rest
// a hash of the owning object, so that one object's flows are replaced or
// removed with one cookie mask in one bundle.
//
// Per container port: 1 classifier, 1-8 spoof guard (MAC only; or IPv4 +
// ARP; plus IPv6, IPv6 link-local and 4 for its neighbour advertisements),
// 1 ARP responder per IPv4, 1 ND responder per IPv6, 1 L2 flow: at most 12,
// and 2 more classifier flows when its flood bound is on: TCP segments with
// an ACK pass, the rest of what it sends goes through its meter (OpenFlow
// meter ID = its port number), which drops what exceeds the bound.
// Per link: 1 per family and port, and 2 per family for what is related to
// its connections (ICMP errors), one each way between its ends.
// An ND responder notes the owner's port and rewrites a copy of the
// solicitation in table 20; table 21 finishes that advertisement (its
// target link-layer option can only be set once the packet is one) where
// the datapath can write ND options, and table 22 relays the solicitation
// itself to the owner where it cannot (Bridge.AnswerND).
//
// A network spanning hosts adds bridge-wide flows (tunnelFlows): tunnel
// ports are kind 3 (KindTunnel); what this host cannot deliver goes to every
// tunnel (reg5 = KindTunnel, output to each in table 50), nothing from a
// tunnel goes back into one.
package flows

import (
	"hash/fnv"

	"github.com/ovsnet/ovsnet/flows/openflow"
)

// Table is a pipeline stage.
type Table int

// The tables, in pipeline order.
const (
	TableClassifier Table = 0
	TableSpoofGuard Table = 10
	TableARPND      Table = 20
	TableNDReply    Table = 21
	TableNDRelay    Table = 22
	TableL2         Table = 30
	TableIsolation  Table = 40
	TableLinks      Table = 41
	TableOutput     Table = 50
	// TableDrop ends every drop that is the pipeline's verdict (drop.go).
	TableDrop Table = 60
)

// Tables are the pipeline's tables, in order.
var Tables = []Table{TableClassifier, TableSpoofGuard, TableARPND, TableNDReply, TableNDRelay, TableL2, TableIsolation, TableLinks, TableOutput, TableDrop}

// Describe says in plain words what a table does (for trace).
func (t Table) Describe() string {
	switch t {
	case TableClassifier:
		return "classifier (which port is this?)"
	case TableSpoofGuard:
		return "spoof guard (own MAC and addresses only)"
	case TableARPND:
		return "ARP/ND (answered by flows, never flooded)"
	case TableNDReply:
		return "ND reply (finishing a neighbour advertisement, where the datapath can)"
	case TableNDRelay:
		return "ND relay (a solicitation to its target's owner, where the datapath cannot answer it)"
	case TableL2:
		return "L2 forwarding (destination MAC, same VLAN)"
	case TableIsolation:
		return "isolation (icc=false: container to container needs a link)"
	case TableLinks:
		return "links (connection tracking)"
	case TableOutput:
		return "output"
	case TableDrop:
		return "drop (the pipeline's verdict, and a capture's note of it)"
	}
	return "unknown table"
}

// Reg is a register the pipeline uses: defined once, and loaded, matched
// and output through the same value.
type Reg int

// Registers.
const (
	RegSrcKind Reg = 0 // kind of the source port
	RegVLAN    Reg = 2 // VLAN of the source port (0: untagged)
	RegOutPort Reg = 4 // output port
	RegDstKind Reg = 5 // kind of the destination
	RegNDReply Reg = 6 // 1: a solicitation being turned into an advertisement
	RegDrop    Reg = 7 // why the pipeline drops the packet: a DropReason
)

// Field is the register as a load, move or output field.
func (r Reg) Field() openflow.Field { return openflow.Reg(int(r)) }

// Load sets the register to v.
func (r Reg) Load(v int) openflow.Action { return openflow.Load(r.Field(), uint64(v)) }

// Match matches packets whose register holds v.
func (r Reg) Match(v int) openflow.Match { return openflow.RegMatch(int(r), uint32(v)) }

// Port kinds in RegSrcKind / RegDstKind.
const (
	KindContainer = 1
	KindGateway   = 2
	KindTunnel    = 3 // another host's containers, behind a tunnel port
)

// Priorities.
const (
	PrioMiss     = 0   // table miss: drop, or go on where the table is optional
	PrioFallback = 50  // catch-alls below the specific flows
	PrioNormal   = 100 // the per-object flows
	PrioDeny     = 90  // denials just below the per-object allows
	PrioGateway  = 150 // the gateway's own ARP/ND
	PrioHigh     = 200 // established connections, responders
	PrioGuard    = 300 // drops that no allow may override (RA, DHCP servers)
	// A port's own neighbour advertisements pass; its others are dropped
	// (both above its address flows).
	PrioAdvertGuard = 110
	PrioAdvertAllow = 120
)

// LocalPort is the bridge's own port (OpenFlow 1.0 OFPP_LOCAL) as a value
// for output:reg4.
const LocalPort = 0xfffe

// Conntrack zone used by isolation.
const CTZone = 1

// Cookie categories (top byte).
const (
	CatBridge uint64 = 0x01 << 56
	CatPort   uint64 = 0x02 << 56
	CatLink   uint64 = 0x03 << 56
	catMask   uint64 = 0xff << 56
)

// ObjectMask selects one object's flows; CategoryMask one category's.
const (
	ObjectMask   uint64 = ^uint64(0)
	CategoryMask uint64 = catMask
)

func hash56(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64() &^ catMask
}

// BridgeCookie owns the bridge-wide flows.
func BridgeCookie() uint64 { return CatBridge }

// PortCookie owns one port's flows (by OVS port name).
func PortCookie(port string) uint64 { return CatPort | hash56(port) }

// LinkCookie owns one link's flows.
func LinkCookie(src, dst string) uint64 { return CatLink | hash56(src, dst) }

// CatTouch is the cookie of the flow Touch adds and removes at once.
const CatTouch uint64 = 0x04 << 56

// touchTable is a table the pipeline never reaches.
const touchTable = 253

// Touch is two changes that add a flow no packet reaches and take it away
// again, to apply one after the other: a change of the flow tables makes
// ovs-vswitchd re-translate every flow its datapath has cached
// (revalidation). OVS 3.1 does not do that when a mirror is added or
// removed without a port (ofproto-dpif-mirror's mirror_set and
// mirror_destroy set no need_revalidate), so the flows already cached go
// on copying to a removed mirror, or never copy to a new one, until they
// expire; after touching, the mirror holds for every packet.
func Touch() (add, del Change) {
	f := &openflow.Flow{Table: touchTable, Priority: 0, Cookie: CatTouch}
	return Change{Cookie: CatTouch, Mask: ObjectMask, Flows: []*openflow.Flow{f}}, Change{Cookie: CatTouch, Mask: ObjectMask}
}
