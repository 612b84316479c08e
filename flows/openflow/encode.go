package openflow

import (
	"encoding/binary"
	"sort"
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

// Match fields, with their emit order in a match (prerequisites first).
var (
	fInPort        = field{classOXM, 0, 4, 0}
	fVLANTCI       = field{classNXM0, 4, 2, 1}
	fEthDst        = field{classOXM, 3, 6, 1}
	fEthSrc        = field{classOXM, 4, 6, 1}
	fEthType       = field{classOXM, 5, 2, 2}
	fIPProto       = field{classOXM, 10, 1, 3}
	fIPv4Src       = field{classOXM, 11, 4, 4}
	fIPv4Dst       = field{classOXM, 12, 4, 4}
	fTCPDst        = field{classOXM, 14, 2, 5}
	fUDPSrc        = field{classOXM, 15, 2, 5}
	fUDPDst        = field{classOXM, 16, 2, 5}
	fARPOp         = field{classOXM, 21, 2, 4}
	fARPSpa        = field{classOXM, 22, 4, 4}
	fARPTpa        = field{classOXM, 23, 4, 4}
	fARPSha        = field{classOXM, 24, 6, 4}
	fIPv6Src       = field{classOXM, 26, 16, 4}
	fIPv6Dst       = field{classOXM, 27, 16, 4}
	fICMPv6Type    = field{classOXM, 29, 1, 5}
	fICMPv6Code    = field{classOXM, 30, 1, 5}
	fNDTarget      = field{classOXM, 31, 16, 6}
	fNDTLL         = field{classOXM, 33, 6, 6}
	fTCPFlags      = field{classNXM1, 34, 2, 5}
	fCTState       = field{classNXM1, 105, 4, 7}
	fNDReserved    = field{classErics, 1, 4, 0}
	fNDOptionsType = field{classErics, 2, 1, 0}
)

type matchEntry struct {
	f           field
	value, mask []byte
}

// FlowMod encodes f as an OpenFlow 1.4 "add" flow mod with transaction id
// xid, from its typed matches and actions.
func FlowMod(f *Flow, xid uint32) []byte {
	m := encodeMatch(f.Match)
	var acts []byte
	for _, a := range f.Actions {
		acts = append(acts, a.wire...)
	}
	b := make([]byte, 0, 56+len(m)+len(acts)+16)
	b = flowModHeader(b, xid, f.Cookie, 0, f.Table, cmdAdd, 0, f.Priority)
	b = append(b, m...)
	if f.Meter != 0 {
		b = append(b, meterInstruction(f.Meter)...)
	}
	if len(acts) > 0 {
		b = be16(b, 4) // OFPIT_APPLY_ACTIONS
		b = be16(b, uint16(8+len(acts)))
		b = append(b, 0, 0, 0, 0)
		b = append(b, acts...)
	}
	return finish(b)
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
	return AggregateCookieRequest(table, 0, 0, xid)
}

// TableAll selects every table in a request.
const TableAll = 0xff

// AggregateCookieRequest asks for the flow count of table (TableAll:
// every table) among the flows whose cookie matches cookie under mask.
func AggregateCookieRequest(table uint8, cookie, mask uint64, xid uint32) []byte {
	b := header(nil, typeMultiReq, xid)
	b = be16(b, mpAggregate)
	b = append(b, 0, 0, 0, 0, 0, 0) // flags, pad
	b = append(b, table, 0, 0, 0)
	b = be32(b, portAny)
	b = be32(b, groupAny)
	b = append(b, 0, 0, 0, 0)
	b = be64(b, cookie)
	b = be64(b, mask)
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

func encodeMatch(ms []Match) []byte {
	var es []matchEntry
	for _, m := range ms {
		es = append(es, m.entries...)
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
	return pad8(b)
}

func prefixMask(size, plen int) []byte {
	m := make([]byte, size)
	for i := 0; i < plen && i < size*8; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// Nicira action subtypes.
const (
	nxVendor         = 0x00002320
	nxastRegMove     = 6
	nxastRegLoad     = 7
	nxastResubmitTbl = 14
	nxastOutputReg   = 15
	nxastCT          = 35
	nxastClone       = 42
)

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
