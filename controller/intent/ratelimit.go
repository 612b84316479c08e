package intent

import (
	"fmt"

	"github.com/ovsnet/ovsnet/attach"
	"strconv"
	"strings"
)

// RateLimit caps a container interface's traffic, in the words of CNI's
// bandwidth capability: ingress is what the container receives, egress
// what it sends; rates in bits a second, bursts in bits (0: no cap that
// way, or the default burst).
type RateLimit struct {
	IngressRate, IngressBurst uint64
	EgressRate, EgressBurst   uint64
}

// KeyRate is an interface's rate limit: "ingress=RATE/BURST,egress=RATE/BURST"
// (bits a second and bits; a direction with no cap left out).
const KeyRate = "ovsnet-rate"

// Ingress is r's cap on what the container receives, as a shaper.
func (r RateLimit) Ingress() attach.Shaper {
	return attach.Shaper{Rate: r.IngressRate, Burst: r.IngressBurst}
}

// Egress is r's cap on what the container sends, as a shaper.
func (r RateLimit) Egress() attach.Shaper {
	return attach.Shaper{Rate: r.EgressRate, Burst: r.EgressBurst}
}

// IsZero says whether r caps nothing.
func (r RateLimit) IsZero() bool { return r == RateLimit{} }

// WithBursts is r with every capped direction's burst set: a default of a
// tenth of a second at the rate, at least 512 kbit (a few of the 64 KiB
// segments offloads make), when none was given.
func (r RateLimit) WithBursts() RateLimit {
	def := func(rate, burst uint64) uint64 {
		if rate == 0 || burst != 0 {
			return burst
		}
		return max(rate/10, 512_000)
	}
	r.IngressBurst, r.EgressBurst = def(r.IngressRate, r.IngressBurst), def(r.EgressRate, r.EgressBurst)
	return r
}

// Check says what is wrong with r, if anything.
func (r RateLimit) Check() error {
	for _, d := range []struct {
		way         string
		rate, burst uint64
	}{{"ingress", r.IngressRate, r.IngressBurst}, {"egress", r.EgressRate, r.EgressBurst}} {
		switch {
		case d.rate == 0 && d.burst != 0:
			return fmt.Errorf("an %s burst without an %s rate", d.way, d.way)
		case d.rate != 0 && d.rate < 8000:
			return fmt.Errorf("an %s rate of %d bit/s: want 8kbit or more", d.way, d.rate)
		case d.rate/8 >= 1<<32:
			return fmt.Errorf("an %s rate of %s: want under 34gbit", d.way, FormatRate(d.rate))
		case d.burst != 0 && (d.burst < 8*1500 || d.burst/8 >= 1<<31):
			return fmt.Errorf("an %s burst of %d bits: want from 12000 (one packet) to 16 Gbit", d.way, d.burst)
		}
	}
	return nil
}

// Encode is r's value for KeyRate.
func (r RateLimit) Encode() string {
	var f []string
	if r.IngressRate > 0 {
		f = append(f, fmt.Sprintf("ingress=%d/%d", r.IngressRate, r.IngressBurst))
	}
	if r.EgressRate > 0 {
		f = append(f, fmt.Sprintf("egress=%d/%d", r.EgressRate, r.EgressBurst))
	}
	return strings.Join(f, ",")
}

// String is r in words, for show.
func (r RateLimit) String() string {
	var f []string
	if r.IngressRate > 0 {
		f = append(f, "in "+FormatRate(r.IngressRate))
	}
	if r.EgressRate > 0 {
		f = append(f, "out "+FormatRate(r.EgressRate))
	}
	return strings.Join(f, ", ")
}

// ParseRate reads a rate in tc's words (10mbit, 500kbit, 1gbit, 8000bit)
// or bits a second.
func ParseRate(s string) (uint64, error) {
	num, mult := strings.ToLower(s), uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("rate %q: want a rate such as 10mbit, 500kbit, 1gbit or bits a second", s)
	}
	return v * mult, nil
}

// DecodeRateLimit reads an interface's rate limit; ok is false when it has
// none. One that does not decode is an error: the interface's queues are
// left as they are.
func DecodeRateLimit(row string, ext map[string]string) (r RateLimit, ok bool, err error) {
	v, ok := ext[KeyRate]
	if !ok {
		return r, false, nil
	}
	bad := &Error{Row: row, Key: KeyRate, Value: v, Want: "ingress=RATE/BURST,egress=RATE/BURST (bits a second, bits), each optional",
		Then: "its queues are left as they are until then"}
	for _, f := range splitList(v) {
		way, val, _ := strings.Cut(f, "=")
		rs, bs, _ := strings.Cut(val, "/")
		rate, rerr := strconv.ParseUint(rs, 10, 64)
		burst, berr := strconv.ParseUint(bs, 10, 64)
		if rerr != nil || berr != nil || rate == 0 || burst == 0 {
			return RateLimit{}, true, bad
		}
		switch way {
		case "ingress":
			r.IngressRate, r.IngressBurst = rate, burst
		case "egress":
			r.EgressRate, r.EgressBurst = rate, burst
		default:
			return RateLimit{}, true, bad
		}
	}
	if r.IsZero() || r.Check() != nil {
		return RateLimit{}, true, bad
	}
	return r, true, nil
}
