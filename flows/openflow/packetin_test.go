package openflow

import (
	"encoding/binary"
	"testing"
)

// An OpenFlow 1.4 packet-in as ovs-vswitchd sends it: the table, cookie,
// in_port and the registers in its match, the packet after the padding.
func TestDecodePacketIn(t *testing.T) {
	b := be32(nil, noBuffer)
	b = be16(b, 5)       // total_len
	b = append(b, 1, 60) // reason: action; table 60
	b = be64(b, 0x0500000000000007)
	match := be16(nil, 1) // OFPMT_OXM
	match = be16(match, 4+8+8)
	match = be32(match, fInPort.header(false))
	match = be32(match, 3)
	match = be32(match, regField(7).header(false))
	match = be32(match, 0xb)
	b = append(b, match...)
	b = append(b, make([]byte, (len(match)+7)/8*8-len(match))...)
	b = append(b, 0, 0)
	b = append(b, "hello"...)
	p, err := decodePacketIn(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Table != 60 || p.Cookie != 0x0500000000000007 || p.InPort != 3 || p.Regs[7] != 0xb || p.TotalLen != 5 || string(p.Data) != "hello" {
		t.Fatalf("%+v", p)
	}
	binary.BigEndian.PutUint16(b[18:], 200) // a match longer than the message
	if _, err := decodePacketIn(b); err == nil {
		t.Fatal("a match overrunning the message decoded")
	}
	if a := Controller(); len(a.wire) != 16 || binary.BigEndian.Uint32(a.wire[4:]) != portController || binary.BigEndian.Uint16(a.wire[8:]) != 0xffff {
		t.Fatalf("controller action % x", a.wire)
	}
}
