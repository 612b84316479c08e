package openflow

import "testing"

// offers14 reads a hello's version bitmap, or its header's version when it
// has none (OpenFlow 1.0 peers).
func TestOffers14(t *testing.T) {
	bitmap := func(bits uint32) []byte {
		return []byte{0, 1, 0, 8, byte(bits >> 24), byte(bits >> 16), byte(bits >> 8), byte(bits)}
	}
	for _, c := range []struct {
		name string
		m    message
		want bool
	}{
		{"bitmap 1.0 only", message{version: 0x01, body: bitmap(1 << 1)}, false},
		{"bitmap 1.0 to 1.5", message{version: 0x06, body: bitmap(1<<1 | 1<<4 | 1<<5 | 1<<6)}, true},
		{"bitmap 1.3 and 1.5, header 1.5", message{version: 0x06, body: bitmap(1<<4 | 1<<6)}, false},
		{"no bitmap, header 1.0", message{version: 0x01}, false},
		{"no bitmap, header 1.4", message{version: 0x05}, true},
		{"unknown element then bitmap", message{version: 0x05, body: append([]byte{0, 9, 0, 4, 0, 0, 0, 0}, bitmap(1<<1)...)}, false},
		{"truncated element", message{version: 0x05, body: []byte{0, 1, 0, 12, 0, 0}}, true},
	} {
		if got := offers14(c.m); got != c.want {
			t.Errorf("%s: offers14 = %v, want %v", c.name, got, c.want)
		}
	}
}
