package capture

import (
	"encoding/binary"
	"io"

	"github.com/ovsnet/ovsnet/flows"
)

// Format is how a capture is written.
type Format string

const (
	// PcapNG (the default) writes one interface, the captured one, and
	// marks each packet the pipeline dropped with a comment saying why
	// (Wireshark shows it as pkt_comment; tcpdump -r reads the file).
	PcapNG Format = "pcapng"
	// Pcap is the classic format, for tools that read nothing else: it has
	// no room for marks.
	Pcap Format = "pcap"
)

// writer writes a capture's packets in one format.
type writer interface {
	header(iface string) error
	record(r record) error
}

// pcapWriter writes classic pcap: microsecond timestamps, Ethernet. The
// formats are a few fixed headers each; gopacket's pcapgo would link
// gopacket/layers, whose init runs at every start of the one binary (the
// CNI plugin's too).
type pcapWriter struct{ w io.Writer }

func (p pcapWriter) header(string) error {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], 1) // LINKTYPE_ETHERNET
	_, err := p.w.Write(h[:])
	return err
}

func (p pcapWriter) record(r record) error {
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(r.at.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(r.at.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(r.data)))
	binary.LittleEndian.PutUint32(h[12:], uint32(r.orig))
	if _, err := p.w.Write(h[:]); err != nil {
		return err
	}
	_, err := p.w.Write(r.data)
	return err
}

// pcapngWriter writes pcapng (little-endian): a section header, one
// interface description, an enhanced packet block per packet.
type pcapngWriter struct{ w io.Writer }

// pcapng block types and option codes.
const (
	blockSection   = 0x0a0d0d0a
	blockInterface = 1
	blockPacket    = 6
	optEnd         = 0
	optComment     = 1
	optShbUserAppl = 4
	optIfName      = 2
)

// option is one pcapng option: code, length, value padded to 4 bytes.
func option(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, pad4(len(v)))...)
}

func pad4(n int) int { return (4 - n%4) % 4 }

// block writes a block of type typ around body (options included).
func (p pcapngWriter) block(typ uint32, body []byte) error {
	n := uint32(12 + len(body))
	b := binary.LittleEndian.AppendUint32(nil, typ)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	b = binary.LittleEndian.AppendUint32(b, n)
	_, err := p.w.Write(b)
	return err
}

func (p pcapngWriter) header(iface string) error {
	shb := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d) // byte-order magic
	shb = binary.LittleEndian.AppendUint16(shb, 1)
	shb = binary.LittleEndian.AppendUint16(shb, 0)
	shb = binary.LittleEndian.AppendUint64(shb, ^uint64(0)) // section length: not known
	shb = option(shb, optShbUserAppl, []byte("ovsnet capture"))
	shb = option(shb, optEnd, nil)
	if err := p.block(blockSection, shb); err != nil {
		return err
	}
	idb := binary.LittleEndian.AppendUint16(nil, 1) // LINKTYPE_ETHERNET
	idb = binary.LittleEndian.AppendUint16(idb, 0)
	idb = binary.LittleEndian.AppendUint32(idb, snaplen)
	idb = option(idb, optIfName, []byte(iface))
	idb = option(idb, optEnd, nil)
	return p.block(blockInterface, idb) // timestamps in microseconds, the default
}

func (p pcapngWriter) record(r record) error {
	ts := uint64(r.at.UnixMicro())
	b := binary.LittleEndian.AppendUint32(nil, 0) // interface 0
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(r.orig))
	b = append(b, r.data...)
	b = append(b, make([]byte, pad4(len(r.data)))...)
	if r.why != 0 {
		b = option(b, optComment, []byte(DropComment(r.why)))
		b = option(b, optEnd, nil)
	}
	return p.block(blockPacket, b)
}

// DropComment is the comment on a packet the pipeline dropped.
func DropComment(why flows.DropReason) string {
	return "dropped by ovsnet's pipeline: " + why.String()
}
