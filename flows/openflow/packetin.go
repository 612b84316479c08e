package openflow

import (
	"encoding/binary"
	"fmt"
	"time"
)

// OpenFlow 1.4 messages of a packet-in listener.
const (
	typeSetConfig = 9
	typePacketIn  = 10

	portController = 0xfffffffd
	noBufferLen    = 0xffff // OFPCML_NO_BUFFER: the whole packet
)

// Controller hands the packet, whole, to the connections listening for
// packet-ins (Listen). It does not output it anywhere.
func Controller() Action {
	b := be16(nil, 0) // OFPAT_OUTPUT
	b = be16(b, 16)
	b = be32(b, portController)
	b = be16(b, noBufferLen)
	return Action{"CONTROLLER:65535", append(b, 0, 0, 0, 0, 0, 0)}
}

// PacketIn is one packet a flow handed to the listeners.
type PacketIn struct {
	Table    uint8
	Cookie   uint64
	InPort   uint32
	Regs     map[int]uint32 // the registers that were not zero
	TotalLen int            // the packet's length (Data may be less)
	Data     []byte
}

// Listener is a connection to one bridge that receives its packet-ins.
type Listener struct{ c *Conn }

// Listen connects to bridge and asks for its packet-ins: ovs-vswitchd
// sends a connection on its management socket (a "service" connection)
// none until it sets a miss_send_len. Every listener gets every packet-in
// of the bridge; the cookie says whose flow sent it.
func Listen(bridge string) (*Listener, error) {
	c, err := Dial(bridge)
	if err != nil {
		return nil, err
	}
	c.xid++
	b := header(nil, typeSetConfig, c.xid)
	b = be16(b, 0) // flags: OFPC_FRAG_NORMAL
	b = be16(b, noBufferLen)
	if err := c.write(finish(b)); err != nil {
		c.Close()
		return nil, c.wrap(err)
	}
	c.c.SetDeadline(time.Time{}) // a listener waits as long as it must
	return &Listener{c: c}, nil
}

// Close ends the listener; a Next under way returns an error.
func (l *Listener) Close() error { return l.c.Close() }

// Next returns the next packet-in, answering the bridge's echo requests
// meanwhile. An error from the bridge (it refused OpenFlow 1.4, or the
// set-config) or the connection's end is an error.
func (l *Listener) Next() (PacketIn, error) {
	for {
		m, err := l.c.read()
		if err != nil {
			return PacketIn{}, l.c.wrap(err)
		}
		switch m.typ {
		case typeHello:
			l.c.helloDue = false
			if !offers14(m) {
				return PacketIn{}, l.c.errNoOF14(fmt.Sprintf("its hello offers OpenFlow versions up to wire version %d", m.version))
			}
		case typeError:
			if l.c.helloDue {
				return PacketIn{}, l.c.errNoOF14(m.errorText())
			}
			return PacketIn{}, fmt.Errorf("bridge %s refused the packet-in listener: %s", l.c.bridge, m.errorText())
		case typeEchoReq:
			if err := l.c.write(finish(append(header(nil, typeEchoReply, m.xid), m.body...))); err != nil {
				return PacketIn{}, l.c.wrap(err)
			}
		case typePacketIn:
			p, err := decodePacketIn(m.body)
			if err != nil {
				return PacketIn{}, fmt.Errorf("bridge %s: %w", l.c.bridge, err)
			}
			return p, nil
		}
	}
}

// decodePacketIn reads an OpenFlow 1.4 packet-in's body: buffer_id,
// total_len, reason, table_id, cookie, an OXM match (padded to 8 bytes),
// 2 bytes of padding, the packet.
func decodePacketIn(b []byte) (PacketIn, error) {
	if len(b) < 20 {
		return PacketIn{}, fmt.Errorf("packet-in of %d bytes", len(b))
	}
	p := PacketIn{TotalLen: int(binary.BigEndian.Uint16(b[4:])), Table: b[7], Cookie: binary.BigEndian.Uint64(b[8:]), Regs: map[int]uint32{}}
	m := b[16:]
	mlen := int(binary.BigEndian.Uint16(m[2:]))
	padded := (mlen + 7) / 8 * 8
	if binary.BigEndian.Uint16(m) != 1 || mlen < 4 || padded+2 > len(m) {
		return PacketIn{}, fmt.Errorf("packet-in with a match of type %d, length %d in %d bytes", binary.BigEndian.Uint16(m), mlen, len(m))
	}
	for o := m[4:mlen]; len(o) >= 4; {
		h := binary.BigEndian.Uint32(o)
		n := int(h & 0xff)
		if 4+n > len(o) {
			return PacketIn{}, fmt.Errorf("packet-in match field %#x of %d bytes in %d", h, n, len(o)-4)
		}
		class, num, hasMask, v := uint16(h>>16), uint8(h>>9&0x7f), h&0x100 != 0, o[4:4+n]
		switch {
		case class == classOXM && num == 0 && n == 4:
			p.InPort = binary.BigEndian.Uint32(v)
		case class == classNXM1 && num < 16 && (n == 4 || hasMask && n == 8):
			p.Regs[int(num)] = binary.BigEndian.Uint32(v)
		}
		o = o[4+n:]
	}
	p.Data = m[padded+2:]
	return p, nil
}
