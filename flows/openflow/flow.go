package openflow

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Flow is one OpenFlow flow as ovsnet builds it, typed: each match and
// action is made once, by a constructor below, with both its wire encoding
// (FlowMod) and its ovs-ofctl text (String, for ovs-ofctl replace-flows
// and diff-flows), so neither is parsed from the other.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    []Match
	Actions  []Action
	// Meter, if not 0, is the meter the flow's packets go through before
	// its actions (a meter that drops them ends them there).
	Meter uint32
}

// String is the flow as ovs-ofctl writes it.
func (f *Flow) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table=%d,priority=%d,cookie=%#016x", f.Table, f.Priority, f.Cookie)
	for _, m := range f.Match {
		b.WriteByte(',')
		b.WriteString(m.text)
	}
	b.WriteString(",actions=")
	if f.Meter != 0 {
		fmt.Fprintf(&b, "meter:%d,", f.Meter)
	}
	if len(f.Actions) == 0 {
		b.WriteString("drop")
	}
	for i, a := range f.Actions {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.text)
	}
	return b.String()
}

// Match is one match of a flow: a field (or a protocol, which is two).
type Match struct {
	text    string // as ovs-ofctl writes it
	entries []matchEntry
}

// String is the match as ovs-ofctl writes it.
func (m Match) String() string { return m.text }

func match(text string, f field, value, mask []byte) Match {
	return Match{text: text, entries: []matchEntry{{f, value, mask}}}
}

// Protocols, as ovs-ofctl's shorthands: the Ethernet type, and for some the
// IP protocol.
var (
	ProtoARP    = proto("arp", 0x0806, -1)
	ProtoIPv4   = proto("ip", 0x0800, -1)
	ProtoIPv6   = proto("ipv6", 0x86dd, -1)
	ProtoICMPv6 = proto("icmp6", 0x86dd, 58)
	ProtoTCP    = proto("tcp", 0x0800, 6)
	ProtoTCP6   = proto("tcp6", 0x86dd, 6)
	ProtoUDP    = proto("udp", 0x0800, 17)
	ProtoUDP6   = proto("udp6", 0x86dd, 17)
)

func proto(name string, ethType, ipProto int) Match {
	m := match(name, fEthType, be16(nil, uint16(ethType)), nil)
	if ipProto >= 0 {
		m.entries = append(m.entries, matchEntry{fIPProto, []byte{byte(ipProto)}, nil})
	}
	return m
}

// PortLocal is the bridge's own port (OFPP_LOCAL).
const PortLocal = portLocal

// InPort matches packets that came in on port n (PortLocal: the bridge's
// own port).
func InPort(n uint32) Match {
	text := "in_port=" + strconv.FormatUint(uint64(n), 10)
	if n == PortLocal {
		text = "in_port=LOCAL"
	}
	return match(text, fInPort, be32(nil, n), nil)
}

// EthSrc and EthDst match a MAC address.
func EthSrc(a net.HardwareAddr) Match { return match("dl_src="+a.String(), fEthSrc, mac(a), nil) }
func EthDst(a net.HardwareAddr) Match { return match("dl_dst="+a.String(), fEthDst, mac(a), nil) }

// EthDstMasked matches the destination MAC's bits under mask (such as the
// multicast bit).
func EthDstMasked(a, mask net.HardwareAddr) Match {
	v := mac(a)
	for i := range v {
		v[i] &= mask[i]
	}
	return match("dl_dst="+net.HardwareAddr(v).String()+"/"+mask.String(), fEthDst, v, mac(mask))
}

func mac(a net.HardwareAddr) []byte {
	b := make([]byte, 6)
	copy(b, a)
	return b
}

// VLANTCI matches the 802.1Q tag control bits under mask.
func VLANTCI(v, mask uint16) Match {
	return match(fmt.Sprintf("vlan_tci=%#04x/%#04x", v, mask), fVLANTCI, be16(nil, v&mask), be16(nil, mask))
}

// IPv4Src and IPv4Dst match an IPv4 prefix; IPv6Src and IPv6Dst an IPv6
// one; ARPSpa and ARPTpa an ARP packet's sender and target address.
func IPv4Src(p netip.Prefix) Match { return prefix("nw_src", fIPv4Src, p) }
func IPv4Dst(p netip.Prefix) Match { return prefix("nw_dst", fIPv4Dst, p) }
func IPv6Src(p netip.Prefix) Match { return prefix("ipv6_src", fIPv6Src, p) }
func IPv6Dst(p netip.Prefix) Match { return prefix("ipv6_dst", fIPv6Dst, p) }
func ARPSpa(p netip.Prefix) Match  { return prefix("arp_spa", fARPSpa, p) }
func ARPTpa(p netip.Prefix) Match  { return prefix("arp_tpa", fARPTpa, p) }

// NDTarget matches a neighbour solicitation's or advertisement's target.
func NDTarget(p netip.Prefix) Match { return prefix("nd_target", fNDTarget, p) }

// Host is the prefix of one address.
func Host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func prefix(name string, f field, p netip.Prefix) Match {
	p = p.Masked()
	text := name + "=" + p.Addr().String()
	var mask []byte
	if p.Bits() < p.Addr().BitLen() {
		text += "/" + strconv.Itoa(p.Bits())
		mask = prefixMask(f.size, p.Bits())
	}
	return match(text, f, p.Addr().AsSlice(), mask)
}

// ARPOp matches an ARP operation (1 request, 2 reply).
func ARPOp(op uint16) Match {
	return match("arp_op="+strconv.Itoa(int(op)), fARPOp, be16(nil, op), nil)
}

// ARPSha matches an ARP packet's sender MAC.
func ARPSha(a net.HardwareAddr) Match { return match("arp_sha="+a.String(), fARPSha, mac(a), nil) }

// ICMPv6Type matches an ICMPv6 type (134 RA, 135 NS, 136 NA).
func ICMPv6Type(t uint8) Match {
	return match("icmpv6_type="+strconv.Itoa(int(t)), fICMPv6Type, []byte{t}, nil)
}

// ICMPv6Code matches an ICMPv6 code.
func ICMPv6Code(c uint8) Match {
	return match("icmpv6_code="+strconv.Itoa(int(c)), fICMPv6Code, []byte{c}, nil)
}

// NDTLL matches a neighbour advertisement's target link-layer address.
func NDTLL(a net.HardwareAddr) Match { return match("nd_tll="+a.String(), fNDTLL, mac(a), nil) }

// TCPDst, UDPDst and UDPSrc match a transport port (with ProtoTCP or
// ProtoUDP, or their IPv6 forms).
func TCPDst(p uint16) Match {
	return match("tcp_dst="+strconv.Itoa(int(p)), fTCPDst, be16(nil, p), nil)
}
func UDPDst(p uint16) Match {
	return match("udp_dst="+strconv.Itoa(int(p)), fUDPDst, be16(nil, p), nil)
}
func UDPSrc(p uint16) Match {
	return match("udp_src="+strconv.Itoa(int(p)), fUDPSrc, be16(nil, p), nil)
}

// TCPAck matches TCP segments with the ACK flag set (with ProtoTCP or
// ProtoTCP6): every segment of a connection after its first.
func TCPAck() Match {
	return match("tcp_flags=+ack", fTCPFlags, be16(nil, 0x010), be16(nil, 0x010))
}

// CTFlag is a connection tracking state bit.
type CTFlag struct {
	name string
	bit  uint32
}

// Connection tracking states.
var (
	CTNew         = CTFlag{"new", 0x01}
	CTEstablished = CTFlag{"est", 0x02}
	CTRelated     = CTFlag{"rel", 0x04}
	CTTracked     = CTFlag{"trk", 0x20}
)

// CTState matches packets whose connection tracking state has every flag
// set (and says nothing of the others).
func CTState(set ...CTFlag) Match {
	var v uint32
	text := "ct_state="
	for _, f := range set {
		v |= f.bit
		text += "+" + f.name
	}
	return match(text, fCTState, be32(nil, v), be32(nil, v))
}

// RegMatch matches register n holding v.
func RegMatch(n int, v uint32) Match {
	return match(fmt.Sprintf("reg%d=%d", n, v), regField(n), be32(nil, v), nil)
}

// Field is a packet or register field that actions load, move or output.
type Field struct {
	name string // NXM name, as in NXM_OF_ETH_SRC[]
	f    field
}

func (f Field) String() string { return f.name + "[]" }

// Fields of the actions ovsnet uses.
var (
	FieldEthDst   = Field{"NXM_OF_ETH_DST", field{classNXM0, 1, 6, 0}}
	FieldEthSrc   = Field{"NXM_OF_ETH_SRC", field{classNXM0, 2, 6, 0}}
	FieldARPOp    = Field{"NXM_OF_ARP_OP", field{classNXM0, 15, 2, 0}}
	FieldARPSpa   = Field{"NXM_OF_ARP_SPA", field{classNXM0, 16, 4, 0}}
	FieldARPTpa   = Field{"NXM_OF_ARP_TPA", field{classNXM0, 17, 4, 0}}
	FieldARPSha   = Field{"NXM_NX_ARP_SHA", field{classNXM1, 17, 6, 0}}
	FieldARPTha   = Field{"NXM_NX_ARP_THA", field{classNXM1, 18, 6, 0}}
	FieldIPv6Src  = Field{"NXM_NX_IPV6_SRC", field{classNXM1, 19, 16, 0}}
	FieldIPv6Dst  = Field{"NXM_NX_IPV6_DST", field{classNXM1, 20, 16, 0}}
	FieldNDTarget = Field{"NXM_NX_ND_TARGET", field{classNXM1, 23, 16, 0}}
	FieldNDTLL    = Field{"NXM_NX_ND_TLL", field{classNXM1, 25, 6, 0}}
)

// Reg is register n as a field.
func Reg(n int) Field { return Field{fmt.Sprintf("NXM_NX_REG%d", n), regField(n)} }

func regField(n int) field { return field{classNXM1, uint8(n), 4, 7} }

// Action is one action of a flow.
type Action struct {
	text string // as ovs-ofctl writes it
	wire []byte
}

// String is the action as ovs-ofctl writes it.
func (a Action) String() string { return a.text }

// Drop is the empty action list, written out.
func Drop() Action { return Action{text: "drop"} }

// Output sends the packet to port n; Local to the bridge's own port; In
// back where it came from; OutputField to the port in a register.
func Output(n uint32) Action { return Action{"output:" + strconv.FormatUint(uint64(n), 10), output(n)} }
func Local() Action          { return Action{"local", output(portLocal)} }
func In() Action             { return Action{"in_port", output(portInPort)} }
func OutputField(f Field) Action {
	b := nx(nxastOutputReg, 24)
	b = be16(b, uint16(f.f.size*8-1)) // whole field: offset 0, n_bits-1
	b = be32(b, f.f.header(false))
	b = be16(b, 0)
	return Action{"output:" + f.String(), append(b, 0, 0, 0, 0, 0, 0)}
}

// Resubmit goes on in table t.
func Resubmit(t uint8) Action {
	b := nx(nxastResubmitTbl, 16)
	b = be16(b, 0xfff8) // OFPP_IN_PORT: the packet's own
	return Action{"resubmit(," + strconv.Itoa(int(t)) + ")", append(b, t, 0, 0, 0)}
}

// Clone runs acts on a copy of the packet; the packet itself goes on
// unchanged with the actions after the clone.
func Clone(acts ...Action) Action {
	var texts []string
	var nested []byte
	for _, a := range acts {
		texts = append(texts, a.text)
		nested = append(nested, a.wire...)
	}
	b := nx(nxastClone, 16+len(nested))
	b = append(b, 0, 0, 0, 0, 0, 0)
	return Action{"clone(" + strings.Join(texts, ",") + ")", append(b, nested...)}
}

// Load sets the whole of field f to v.
func Load(f Field, v uint64) Action {
	bits := f.f.size * 8
	b := nx(nxastRegLoad, 24)
	b = be16(b, uint16(bits-1))
	b = be32(b, f.f.header(false))
	return Action{fmt.Sprintf("load:%#x->%s", v, f), be64(b, v)}
}

// Move copies field src into field dst (of the same width).
func Move(src, dst Field) Action {
	b := nx(nxastRegMove, 24)
	b = be16(b, uint16(src.f.size*8))
	b = be16(b, 0)
	b = be16(b, 0)
	b = be32(b, src.f.header(false))
	return Action{"move:" + src.String() + "->" + dst.String(), be32(b, dst.f.header(false))}
}

// Set-field actions.
func SetEthSrc(a net.HardwareAddr) Action { return setField(a.String(), "eth_src", fEthSrc, mac(a)) }
func SetIPv6Src(a netip.Addr) Action      { return setField(a.String(), "ipv6_src", fIPv6Src, a.AsSlice()) }
func SetICMPv6Type(t uint8) Action {
	return setField(strconv.Itoa(int(t)), "icmpv6_type", fICMPv6Type, []byte{t})
}
func SetNDOptionsType(t uint8) Action {
	return setField(strconv.Itoa(int(t)), "nd_options_type", fNDOptionsType, []byte{t})
}
func SetNDReserved(v uint32) Action {
	return setField(fmt.Sprintf("%#x", v), "nd_reserved", fNDReserved, be32(nil, v))
}

func setField(value, name string, f field, v []byte) Action {
	b := be16(nil, 25) // OFPAT_SET_FIELD
	b = be16(b, 0)
	b = be32(b, f.header(false))
	b = append(b, v...)
	b = pad8(b)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return Action{"set_field:" + value + "->" + name, b}
}

// CTCommit commits the packet's connection in conntrack zone zone;
// CTTable sends the packet through zone zone, on to table t.
func CTCommit(zone uint16) Action {
	return Action{fmt.Sprintf("ct(commit,zone=%d)", zone), ct(1, zone, 0xff)}
}
func CTTable(zone uint16, t uint8) Action {
	return Action{fmt.Sprintf("ct(table=%d,zone=%d)", t, zone), ct(0, zone, t)}
}

func ct(flags, zone uint16, table uint8) []byte {
	b := nx(nxastCT, 24)
	b = be16(b, flags)
	b = be32(b, 0) // zone_src: none, zone is immediate
	b = be16(b, zone)
	b = append(b, table, 0, 0, 0)
	return be16(b, 0) // alg
}
