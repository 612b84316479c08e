package capture

import (
	"bytes"
	"time"

	"github.com/ovsnet/ovsnet/flows"
)

// markWait is how long a copied packet is held for word that the pipeline
// dropped it: the mirror's copy comes at once, the pipeline's word (a
// packet-in) once ovs-vswitchd's main loop sends it, which takes an
// iteration of that loop (milliseconds idle, up to a second with
// thousands of ports). A word that comes later is counted as late.
const markWait = time.Second

// Bounds on what is held: beyond them the oldest copies are written
// unmarked (a flat-out sender must not hold the capture's memory).
const (
	holdPackets = 8192
	holdBytes   = 64 << 20
)

// record is one packet the mirror copied.
type record struct {
	at   time.Time
	data []byte
	orig int              // the packet's length (data may be less)
	why  flows.DropReason // why the pipeline dropped it; 0: it did not, as far as known
}

// word is the pipeline's word that it dropped a packet.
type word struct {
	at   time.Time
	data []byte
	why  flows.DropReason
}

// marker pairs the mirror's copies with the pipeline's word of the drops
// among them (a packet-in of the same bytes), holding each copy until its
// word came or markWait passed, and giving them out in the order copied.
type marker struct {
	held      []record
	heldBytes int
	words     []word // words whose copy has not come yet
	late      int    // words that matched no copy held
}

// copied takes the mirror's copy r.
func (m *marker) copied(r record) {
	for i, w := range m.words {
		if bytes.Equal(w.data, r.data) {
			r.why = w.why
			m.words = append(m.words[:i], m.words[i+1:]...)
			break
		}
	}
	m.held = append(m.held, r)
	m.heldBytes += len(r.data)
}

// dropped takes the pipeline's word w.
func (m *marker) dropped(w word) {
	for i := range m.held {
		if r := &m.held[i]; r.why == 0 && bytes.Equal(r.data, w.data) {
			r.why = w.why
			return
		}
	}
	m.words = append(m.words, w)
}

// due gives out, in order, the copies that are done waiting at now: marked
// ones and those held markWait, and all of them when all. Words older than
// markWait are given up and counted late.
func (m *marker) due(now time.Time, all bool) []record {
	n := 0
	for n < len(m.held) {
		r := m.held[n]
		over := len(m.held)-n > holdPackets || m.heldBytes > holdBytes
		if !all && !over && r.why == 0 && now.Sub(r.at) < markWait {
			break
		}
		m.heldBytes -= len(r.data)
		n++
	}
	out := m.held[:n:n]
	m.held = m.held[n:]
	k := 0
	for _, w := range m.words {
		if !all && now.Sub(w.at) < markWait {
			m.words[k] = w
			k++
			continue
		}
		m.late++
	}
	m.words = m.words[:k]
	return out
}
