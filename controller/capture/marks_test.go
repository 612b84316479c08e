package capture

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/flows"
)

func rec(at time.Time, s string) record { return record{at: at, data: []byte(s), orig: len(s)} }

// The pipeline's word marks its packet whichever comes first; a copy
// without word waits markWait, a word without copy is counted late, and
// copies come out in the order copied.
func TestMarker(t *testing.T) {
	t0 := time.Now()
	m := &marker{}
	m.copied(rec(t0, "a"))
	m.copied(rec(t0, "b"))
	m.dropped(word{at: t0, data: []byte("b"), why: flows.DropNoLink})
	if got := m.due(t0.Add(time.Millisecond), false); len(got) != 0 {
		t.Fatalf("a marked copy came out ahead of an older unmarked one: %v", got)
	}
	m.dropped(word{at: t0, data: []byte("c"), why: flows.DropSpoofed}) // before its copy
	m.copied(rec(t0, "c"))
	got := m.due(t0.Add(markWait), false)
	if len(got) != 3 || got[0].why != 0 || got[1].why != flows.DropNoLink || got[2].why != flows.DropSpoofed {
		t.Fatalf("due after markWait: %+v", got)
	}
	m.dropped(word{at: t0, data: []byte("x")})
	if m.due(t0.Add(markWait/2), false); m.late != 0 {
		t.Fatal("a word given up before markWait")
	}
	if m.due(t0.Add(markWait), false); m.late != 1 || len(m.words) != 0 {
		t.Fatalf("a word without copy: late %d, waiting %d", m.late, len(m.words))
	}
	m.copied(rec(t0, "d"))
	if got := m.due(t0, true); len(got) != 1 {
		t.Fatalf("all: %v", got)
	}
	// Beyond the bound, the oldest go unmarked at once.
	for i := 0; i < holdPackets+2; i++ {
		m.copied(rec(t0, "e"))
	}
	if got := m.due(t0, false); len(got) != 2 || len(m.held) != holdPackets {
		t.Fatalf("over the bound: %d out, %d held", len(got), len(m.held))
	}
}

// A pcapng file: section, interface (named), and a packet with its drop
// comment; a packet not dropped has no options.
func TestPcapNG(t *testing.T) {
	var b bytes.Buffer
	w := pcapngWriter{&b}
	if err := w.header("veth1"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 123456000)
	w.record(record{at: t0, data: []byte("abcde"), orig: 9, why: flows.DropNoLink})
	w.record(record{at: t0, data: []byte("abcd"), orig: 4})
	le := binary.LittleEndian
	var blocks [][]byte
	for p := b.Bytes(); len(p) > 0; {
		n := int(le.Uint32(p[4:]))
		if n%4 != 0 || le.Uint32(p[n-4:]) != uint32(n) {
			t.Fatalf("block of length %d misframed", n)
		}
		blocks, p = append(blocks, p[:n]), p[n:]
	}
	if len(blocks) != 4 || le.Uint32(blocks[0]) != blockSection || le.Uint32(blocks[1]) != blockInterface || !bytes.Contains(blocks[1], []byte("veth1")) {
		t.Fatalf("%d blocks", len(blocks))
	}
	p := blocks[2]
	ts := uint64(le.Uint32(p[12:]))<<32 | uint64(le.Uint32(p[16:]))
	if le.Uint32(p) != blockPacket || ts != uint64(t0.UnixMicro()) || le.Uint32(p[20:]) != 5 || le.Uint32(p[24:]) != 9 || string(p[28:33]) != "abcde" {
		t.Fatalf("packet block % x", p)
	}
	opt := p[36:]
	if code, n := le.Uint16(opt), int(le.Uint16(opt[2:])); code != optComment || string(opt[4:4+n]) != DropComment(flows.DropNoLink) {
		t.Fatalf("comment option % x", opt)
	}
	if len(blocks[3]) != 28+4+4 {
		t.Fatalf("an undropped packet's block is %d bytes, want no options", len(blocks[3]))
	}
}

// The capture's filter, run in Go on the pipeline's word, takes what the
// socket's filter takes.
func TestFilterVM(t *testing.T) {
	prog, err := parseFilter("6\n40 0 0 12\n21 0 3 2048\n48 0 0 23\n21 0 1 1\n6 0 0 262144\n6 0 0 0\n") // icmp
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{filter: filterVM(prog)}
	if s.filter == nil {
		t.Fatal("x/net/bpf cannot run tcpdump's icmp program")
	}
	frame := func(ethType uint16, proto byte) []byte {
		b := make([]byte, 42)
		binary.BigEndian.PutUint16(b[12:], ethType)
		b[23] = proto
		return b
	}
	if !s.takes(frame(0x0800, 1)) || s.takes(frame(0x0800, 6)) || s.takes(frame(0x0806, 1)) {
		t.Fatal("the filter takes other packets than ICMP")
	}
	if !(&Session{}).takes(frame(0x0806, 0)) {
		t.Fatal("no filter left a packet out")
	}
}
