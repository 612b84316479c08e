package openflow

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/digitalocean/go-openvswitch/ovs"
)

// OpenFlow 1.4 (wire version 5) message types used here.
const (
	version        = 5
	typeHello      = 0
	typeError      = 1
	typeEchoReq    = 2
	typeEchoReply  = 3
	typeFlowMod    = 14
	typeMultiReq   = 18
	typeMultiRep   = 19
	typeBarrierReq = 20
	typeBarrierRep = 21
	typeBundleCtl  = 33
	typeBundleAdd  = 34
)

// Flow-mod commands.
const (
	cmdAdd    = 0
	cmdDelete = 3
)

const (
	portInPort = 0xfffffff8
	portNormal = 0xfffffffa
	portFlood  = 0xfffffffb
	portAll    = 0xfffffffc
	portLocal  = 0xfffffffe
	portAny    = 0xffffffff
	noBuffer   = 0xffffffff
	tableAll   = 0xff
	groupAny   = 0xffffffff

	mpAggregate = 2 // OFPMP_AGGREGATE
)

// field is a match or action field: its OXM/NXM header fields and width.
type field struct {
	class uint16
	num   uint8
	size  int // bytes
	rank  int // emit order in a match: prerequisites first
}

func (f field) header(masked bool) uint32 {
	h := uint32(f.class)<<16 | uint32(f.num)<<9 | uint32(f.size)
	if masked {
		h = uint32(f.class)<<16 | uint32(f.num)<<9 | 1<<8 | uint32(2*f.size)
	}
	return h
}

const (
	classNXM0  = 0x0000 // NXM_OF_*
	classNXM1  = 0x0001 // NXM_NX_*
	classOXM   = 0x8000 // OpenFlow basic
	classErics = 0x1000 // ERICOXM_OF_* (nd_reserved, nd_options_type)
)

// Match fields by ovs-ofctl name.
var matchFields = map[string]field{
	"in_port":     {classOXM, 0, 4, 0},
	"vlan_tci":    {classNXM0, 4, 2, 1},
	"dl_dst":      {classOXM, 3, 6, 1},
	"dl_src":      {classOXM, 4, 6, 1},
	"eth_type":    {classOXM, 5, 2, 2},
	"ip_proto":    {classOXM, 10, 1, 3},
	"nw_src":      {classOXM, 11, 4, 4},
	"nw_dst":      {classOXM, 12, 4, 4},
	"tcp_src":     {classOXM, 13, 2, 5},
	"tcp_dst":     {classOXM, 14, 2, 5},
	"udp_src":     {classOXM, 15, 2, 5},
	"udp_dst":     {classOXM, 16, 2, 5},
	"icmp_type":   {classOXM, 19, 1, 5},
	"arp_op":      {classOXM, 21, 2, 4},
	"arp_spa":     {classOXM, 22, 4, 4},
	"arp_tpa":     {classOXM, 23, 4, 4},
	"arp_sha":     {classOXM, 24, 6, 4},
	"arp_tha":     {classOXM, 25, 6, 4},
	"ipv6_src":    {classOXM, 26, 16, 4},
	"ipv6_dst":    {classOXM, 27, 16, 4},
	"icmpv6_type": {classOXM, 29, 1, 5},
	"nd_target":   {classOXM, 31, 16, 6},
	"nd_tll":      {classOXM, 33, 6, 6},
	"ct_state":    {classNXM1, 105, 4, 7},
}

// Fields named in load/move/output actions, as NXM_*[] and set_field names.
var regFields = map[string]field{
	"NXM_OF_IN_PORT":   {classNXM0, 0, 2, 0},
	"NXM_OF_ETH_DST":   {classNXM0, 1, 6, 0},
	"NXM_OF_ETH_SRC":   {classNXM0, 2, 6, 0},
	"NXM_OF_ARP_OP":    {classNXM0, 15, 2, 0},
	"NXM_OF_ARP_SPA":   {classNXM0, 16, 4, 0},
	"NXM_OF_ARP_TPA":   {classNXM0, 17, 4, 0},
	"NXM_NX_ARP_SHA":   {classNXM1, 17, 6, 0},
	"NXM_NX_ARP_THA":   {classNXM1, 18, 6, 0},
	"NXM_NX_IPV6_SRC":  {classNXM1, 19, 16, 0},
	"NXM_NX_IPV6_DST":  {classNXM1, 20, 16, 0},
	"NXM_NX_ND_TARGET": {classNXM1, 23, 16, 0},
	"NXM_NX_ND_SLL":    {classNXM1, 24, 6, 0},
	"NXM_NX_ND_TLL":    {classNXM1, 25, 6, 0},
}

var setFields = map[string]field{
	"eth_src":         {classOXM, 4, 6, 0},
	"eth_dst":         {classOXM, 3, 6, 0},
	"ipv6_src":        {classOXM, 26, 16, 0},
	"ipv6_dst":        {classOXM, 27, 16, 0},
	"icmpv6_type":     {classOXM, 29, 1, 0},
	"nd_reserved":     {classErics, 1, 4, 0},
	"nd_options_type": {classErics, 2, 1, 0},
}

func init() {
	for i := 0; i < 16; i++ {
		f := field{classNXM1, uint8(i), 4, 7}
		matchFields[fmt.Sprintf("reg%d", i)] = f
		regFields[fmt.Sprintf("NXM_NX_REG%d", i)] = f
	}
}

// protocols: ovs-ofctl shorthand -> eth_type, ip_proto.
var protocols = map[ovs.Protocol][2]int{
	"arp": {0x0806, -1}, "ip": {0x0800, -1}, "ipv6": {0x86dd, -1},
	"icmp": {0x0800, 1}, "tcp": {0x0800, 6}, "udp": {0x0800, 17},
	"icmp6": {0x86dd, 58}, "tcp6": {0x86dd, 6}, "udp6": {0x86dd, 17},
}

type matchEntry struct {
	f           field
	value, mask []byte
}

// FlowMod encodes f as an OpenFlow 1.4 "add" flow mod with transaction id
// xid. It understands the matches and actions ovsnet's pipeline uses and
// fails with the offending text on anything else, rather than guessing.
func FlowMod(f *ovs.Flow, xid uint32) ([]byte, error) {
	m, err := encodeMatch(f)
	if err != nil {
		return nil, err
	}
	acts, err := encodeActions(f.Actions)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 56+len(m)+len(acts)+8)
	b = flowModHeader(b, xid, f.Cookie, 0, uint8(f.Table), cmdAdd, uint16(f.IdleTimeout), uint16(f.Priority))
	b = append(b, m...)
	if len(acts) > 0 {
		b = be16(b, 4) // OFPIT_APPLY_ACTIONS
		b = be16(b, uint16(8+len(acts)))
		b = append(b, 0, 0, 0, 0)
		b = append(b, acts...)
	}
	return finish(b), nil
}

// DeleteByCookie encodes a non-strict delete, in every table, of the flows
// whose cookie matches cookie under mask.
func DeleteByCookie(cookie, mask uint64, xid uint32) []byte {
	b := flowModHeader(nil, xid, cookie, mask, tableAll, cmdDelete, 0, 0)
	b = append(b, 0, 1, 0, 4, 0, 0, 0, 0) // empty OXM match
	return finish(b)
}

func flowModHeader(b []byte, xid uint32, cookie, mask uint64, table, cmd uint8, idle, prio uint16) []byte {
	b = header(b, typeFlowMod, xid)
	b = be64(b, cookie)
	b = be64(b, mask)
	b = append(b, table, cmd)
	b = be16(b, idle)
	b = be16(b, 0) // hard timeout
	b = be16(b, prio)
	b = be32(b, noBuffer)
	b = be32(b, portAny)
	b = be32(b, portAny) // out_group: OFPG_ANY
	b = be16(b, 0)       // flags
	b = be16(b, 0)       // importance
	return b
}

// AggregateRequest asks for the number of flows in table (and their packet
// and byte counts): OFPMP_AGGREGATE, all ports, all cookies.
func AggregateRequest(table uint8, xid uint32) []byte {
	b := header(nil, typeMultiReq, xid)
	b = be16(b, mpAggregate)
	b = append(b, 0, 0, 0, 0, 0, 0) // flags, pad
	b = append(b, table, 0, 0, 0)
	b = be32(b, portAny)
	b = be32(b, groupAny)
	b = append(b, 0, 0, 0, 0)
	b = be64(b, 0)                        // cookie
	b = be64(b, 0)                        // cookie mask: any
	b = append(b, 0, 1, 0, 4, 0, 0, 0, 0) // empty OXM match
	return finish(b)
}

// aggregateFlowCount reads flow_count from an OFPMP_AGGREGATE reply's body
// (the message after its 8-byte header).
func aggregateFlowCount(body []byte) (int, bool) {
	if len(body) < 32 || binary.BigEndian.Uint16(body) != mpAggregate {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(body[24:])), true
}

func header(b []byte, typ uint8, xid uint32) []byte {
	b = append(b, version, typ, 0, 0)
	return be32(b, xid)
}

// finish writes the message length into its header.
func finish(b []byte) []byte {
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func pad8(b []byte) []byte {
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func encodeMatch(f *ovs.Flow) ([]byte, error) {
	var es []matchEntry
	add := func(name string, v, m []byte) {
		es = append(es, matchEntry{matchFields[name], v, m})
	}
	ethType, ipProto := -1, -1
	if f.Protocol != "" {
		p, ok := protocols[f.Protocol]
		if !ok {
			return nil, fmt.Errorf("openflow: protocol %q not supported", f.Protocol)
		}
		ethType, ipProto = p[0], p[1]
		add("eth_type", be16(nil, uint16(ethType)), nil)
		if ipProto >= 0 {
			add("ip_proto", []byte{byte(ipProto)}, nil)
		}
	}
	switch {
	case f.InPort == ovs.PortLOCAL:
		add("in_port", be32(nil, portLocal), nil)
	case f.InPort != 0:
		add("in_port", be32(nil, uint32(f.InPort)), nil)
	}
	for _, m := range f.Matches {
		t, err := m.MarshalText()
		if err != nil {
			return nil, err
		}
		key, val, ok := strings.Cut(string(t), "=")
		if !ok {
			return nil, fmt.Errorf("openflow: match %q not supported", t)
		}
		// ovs-ofctl's aliases that depend on the protocol.
		switch {
		case ethType == 0x0806 && key == "nw_src":
			key = "arp_spa"
		case ethType == 0x0806 && key == "nw_dst":
			key = "arp_tpa"
		case key == "tp_src" || key == "tp_dst":
			pre := map[int]string{6: "tcp", 17: "udp"}[ipProto]
			if pre == "" {
				return nil, fmt.Errorf("openflow: %s needs tcp or udp", t)
			}
			key = pre + key[2:]
		case key == "icmp_type" && ethType == 0x86dd:
			key = "icmpv6_type"
		}
		fd, ok := matchFields[key]
		if !ok {
			return nil, fmt.Errorf("openflow: match field %q not supported", key)
		}
		var v, mk []byte
		if key == "ct_state" {
			v, mk, err = ctState(val)
		} else {
			v, mk, err = value(fd, val)
		}
		if err != nil {
			return nil, fmt.Errorf("openflow: %s: %w", t, err)
		}
		add(key, v, mk)
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].f.rank < es[j].f.rank })
	var body []byte
	for _, e := range es {
		body = be32(body, e.f.header(e.mask != nil))
		body = append(body, e.value...)
		body = append(body, e.mask...)
	}
	b := be16(nil, 1) // OFPMT_OXM
	b = be16(b, uint16(4+len(body)))
	b = append(b, body...)
	return pad8(b), nil
}

// value parses a field value as ovs-ofctl writes it: MAC, IPv4 or IPv6
// address with an optional /prefix or /mask, or a number with an optional
// /mask. An all-ones mask is dropped.
func value(f field, s string) (v, mask []byte, err error) {
	vs, ms, hasMask := strings.Cut(s, "/")
	if v, err = parseValue(f, vs); err != nil {
		return nil, nil, err
	}
	if !hasMask {
		return v, nil, nil
	}
	if plen, err := strconv.Atoi(ms); err == nil && (f.size == 4 || f.size == 16) && strings.ContainsAny(vs, ".:") {
		mask = prefixMask(f.size, plen)
	} else if mask, err = parseValue(f, ms); err != nil {
		return nil, nil, err
	}
	full := true
	for i := range mask {
		v[i] &= mask[i]
		full = full && mask[i] == 0xff
	}
	if full {
		mask = nil
	}
	return v, mask, nil
}

func prefixMask(size, plen int) []byte {
	m := make([]byte, size)
	for i := 0; i < plen && i < size*8; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

func parseValue(f field, s string) ([]byte, error) {
	if f.size == 6 && strings.Count(s, ":") == 5 {
		hw, err := net.ParseMAC(s)
		if err != nil {
			return nil, err
		}
		return []byte(hw), nil
	}
	if (f.size == 4 && strings.Contains(s, ".")) || (f.size == 16 && strings.Contains(s, ":")) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		return a.AsSlice(), nil
	}
	n, ok := new(big.Int).SetString(s, 0)
	if !ok || n.Sign() < 0 || n.BitLen() > f.size*8 {
		return nil, fmt.Errorf("bad value %q for a %d-byte field", s, f.size)
	}
	return n.FillBytes(make([]byte, f.size)), nil
}

var ctBits = map[string]uint32{"new": 0x01, "est": 0x02, "rel": 0x04, "rpl": 0x08, "inv": 0x10, "trk": 0x20, "snat": 0x40, "dnat": 0x80}

// ctState parses +trk+est-new style flags into value and mask.
func ctState(s string) (v, m []byte, err error) {
	var val, mask uint32
	for len(s) > 0 {
		sign := s[0]
		if sign != '+' && sign != '-' {
			return nil, nil, fmt.Errorf("ct_state flags must start with + or -")
		}
		end := strings.IndexAny(s[1:], "+-")
		if end < 0 {
			end = len(s) - 1
		}
		bit, ok := ctBits[s[1:1+end]]
		if !ok {
			return nil, nil, fmt.Errorf("unknown ct_state flag %q", s[1:1+end])
		}
		mask |= bit
		if sign == '+' {
			val |= bit
		}
		s = s[1+end:]
	}
	return be32(nil, val), be32(nil, mask), nil
}

// Nicira action subtypes.
const (
	nxVendor         = 0x00002320
	nxastRegMove     = 6
	nxastRegLoad     = 7
	nxastResubmitTbl = 14
	nxastOutputReg   = 15
	nxastCT          = 35
)

func encodeActions(as []ovs.Action) ([]byte, error) {
	var b []byte
	for _, a := range as {
		t, err := a.MarshalText()
		if err != nil {
			return nil, err
		}
		s := string(t)
		var enc []byte
		switch {
		case s == "drop":
			continue
		case s == "in_port":
			enc = output(portInPort)
		case s == "local":
			enc = output(portLocal)
		case s == "normal":
			enc = output(portNormal)
		case s == "flood":
			enc = output(portFlood)
		case s == "all":
			enc = output(portAll)
		case strings.HasPrefix(s, "output:"):
			enc, err = outputAction(s[len("output:"):])
		case strings.HasPrefix(s, "resubmit("):
			enc, err = resubmit(s)
		case strings.HasPrefix(s, "load:"):
			enc, err = load(s[len("load:"):])
		case strings.HasPrefix(s, "move:"):
			enc, err = move(s[len("move:"):])
		case strings.HasPrefix(s, "set_field:"):
			enc, err = setField(s[len("set_field:"):])
		case strings.HasPrefix(s, "ct(") && strings.HasSuffix(s, ")"):
			enc, err = ct(s[3 : len(s)-1])
		default:
			err = fmt.Errorf("not supported")
		}
		if err != nil {
			return nil, fmt.Errorf("openflow: action %q: %w", s, err)
		}
		b = append(b, enc...)
	}
	return b, nil
}

func output(port uint32) []byte {
	b := be16(nil, 0) // OFPAT_OUTPUT
	b = be16(b, 16)
	b = be32(b, port)
	b = be16(b, 0) // max_len: only meaningful toward the controller
	return append(b, 0, 0, 0, 0, 0, 0)
}

func nx(subtype uint16, length int) []byte {
	b := be16(nil, 0xffff)
	b = be16(b, uint16(length))
	b = be32(b, nxVendor)
	return be16(b, subtype)
}

func outputAction(s string) ([]byte, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return output(uint32(n)), nil
	}
	f, ofs, nbits, err := subfield(s)
	if err != nil {
		return nil, err
	}
	b := nx(nxastOutputReg, 24)
	b = be16(b, uint16(ofs<<6|(nbits-1)))
	b = be32(b, f.header(false))
	b = be16(b, 0)
	return append(b, 0, 0, 0, 0, 0, 0), nil
}

// subfield parses NAME[] or NAME[a..b] or NAME[a].
func subfield(s string) (f field, ofs, nbits int, err error) {
	name, rng, ok := strings.Cut(s, "[")
	if !ok || !strings.HasSuffix(rng, "]") {
		return f, 0, 0, fmt.Errorf("field %q: want NAME[] or NAME[a..b]", s)
	}
	f, ok = regFields[name]
	if !ok {
		return f, 0, 0, fmt.Errorf("field %q not supported", name)
	}
	rng = strings.TrimSuffix(rng, "]")
	if rng == "" {
		return f, 0, f.size * 8, nil
	}
	lo, hi, two := strings.Cut(rng, "..")
	if !two {
		hi = lo
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || l > h || h >= f.size*8 {
		return f, 0, 0, fmt.Errorf("bad bit range in %q", s)
	}
	return f, l, h - l + 1, nil
}

func resubmit(s string) ([]byte, error) {
	inner := strings.TrimSuffix(strings.TrimPrefix(s, "resubmit("), ")")
	ps, ts, ok := strings.Cut(inner, ",")
	if !ok {
		return nil, fmt.Errorf("want resubmit(PORT,TABLE)")
	}
	port, table := uint16(0xfff8), uint8(0xff) // OFPP_IN_PORT, current table
	if ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			return nil, err
		}
		port = uint16(n)
	}
	if ts != "" {
		n, err := strconv.ParseUint(ts, 10, 8)
		if err != nil {
			return nil, err
		}
		table = uint8(n)
	}
	b := nx(nxastResubmitTbl, 16)
	b = be16(b, port)
	return append(b, table, 0, 0, 0), nil
}

func load(s string) ([]byte, error) {
	vs, dst, ok := strings.Cut(s, "->")
	if !ok {
		return nil, fmt.Errorf("want VALUE->FIELD[]")
	}
	f, ofs, nbits, err := subfield(dst)
	if err != nil {
		return nil, err
	}
	n, ok := new(big.Int).SetString(vs, 0)
	if !ok || n.Sign() < 0 || n.BitLen() > nbits || nbits > 64 {
		return nil, fmt.Errorf("value %q does not fit %d bits", vs, nbits)
	}
	b := nx(nxastRegLoad, 24)
	b = be16(b, uint16(ofs<<6|(nbits-1)))
	b = be32(b, f.header(false))
	return be64(b, n.Uint64()), nil
}

func move(s string) ([]byte, error) {
	src, dst, ok := strings.Cut(s, "->")
	if !ok {
		return nil, fmt.Errorf("want SRC[]->DST[]")
	}
	sf, sofs, sbits, err := subfield(src)
	if err != nil {
		return nil, err
	}
	df, dofs, dbits, err := subfield(dst)
	if err != nil {
		return nil, err
	}
	if sbits != dbits {
		return nil, fmt.Errorf("moving %d bits into %d", sbits, dbits)
	}
	b := nx(nxastRegMove, 24)
	b = be16(b, uint16(sbits))
	b = be16(b, uint16(sofs))
	b = be16(b, uint16(dofs))
	b = be32(b, sf.header(false))
	return be32(b, df.header(false)), nil
}

func setField(s string) ([]byte, error) {
	vs, name, ok := strings.Cut(s, "->")
	if !ok {
		return nil, fmt.Errorf("want VALUE->FIELD")
	}
	f, ok := setFields[name]
	if !ok {
		return nil, fmt.Errorf("field %q not supported", name)
	}
	v, err := parseValue(f, vs)
	if err != nil {
		return nil, err
	}
	b := be16(nil, 25) // OFPAT_SET_FIELD
	b = be16(b, 0)
	b = be32(b, f.header(false))
	b = append(b, v...)
	b = pad8(b)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b, nil
}

// ct encodes ct(commit,zone=N,table=T): the arguments ovsnet uses.
func ct(args string) ([]byte, error) {
	var flags, zone uint16
	table := uint8(0xff) // NX_CT_RECIRC_NONE
	for _, a := range strings.Split(args, ",") {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "commit":
			flags |= 1
		case "force":
			flags |= 1 | 2
		case "zone":
			n, err := strconv.ParseUint(v, 0, 16)
			if err != nil {
				return nil, fmt.Errorf("zone %q: %w", v, err)
			}
			zone = uint16(n)
		case "table":
			n, err := strconv.ParseUint(v, 0, 8)
			if err != nil {
				return nil, fmt.Errorf("table %q: %w", v, err)
			}
			table = uint8(n)
		default:
			return nil, fmt.Errorf("ct argument %q not supported", a)
		}
	}
	b := nx(nxastCT, 24)
	b = be16(b, flags)
	b = be32(b, 0) // zone_src: none, zone is immediate
	b = be16(b, zone)
	b = append(b, table, 0, 0, 0)
	return be16(b, 0), nil // alg
}
