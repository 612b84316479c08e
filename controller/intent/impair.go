package intent

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Impairment is what a lab bends a container interface's traffic with
// (`ovsnet impair`): netem on the container's side of the interface, on
// what the container sends. The zero value bends nothing.
type Impairment struct {
	Delay  time.Duration // added to every packet
	Jitter time.Duration // the delay varies by up to this much (needs Delay)
	Loss   float64       // percent of packets dropped, 0..100
	Rate   uint64        // bits a second the interface sends at most; 0: no bound
}

// KeyImpair is an interface's impairment:
// "delay=50ms,jitter=10ms,loss=1.5,rate=10000000" (fields that are zero
// left out).
const KeyImpair = "ovsnet-impair"

// IsZero says whether im bends nothing.
func (im Impairment) IsZero() bool { return im == Impairment{} }

// Encode is the impairment's value for KeyImpair.
func (im Impairment) Encode() string {
	var f []string
	if im.Delay > 0 {
		f = append(f, "delay="+im.Delay.String())
	}
	if im.Jitter > 0 {
		f = append(f, "jitter="+im.Jitter.String())
	}
	if im.Loss > 0 {
		f = append(f, "loss="+strconv.FormatFloat(im.Loss, 'f', -1, 64))
	}
	if im.Rate > 0 {
		f = append(f, "rate="+strconv.FormatUint(im.Rate, 10))
	}
	return strings.Join(f, ",")
}

// String is the impairment in words, for show.
func (im Impairment) String() string {
	var f []string
	if im.Delay > 0 {
		d := "delay " + im.Delay.String()
		if im.Jitter > 0 {
			d += " ± " + im.Jitter.String()
		}
		f = append(f, d)
	}
	if im.Loss > 0 {
		f = append(f, "loss "+strconv.FormatFloat(im.Loss, 'f', -1, 64)+"%")
	}
	if im.Rate > 0 {
		f = append(f, "rate "+FormatRate(im.Rate))
	}
	return strings.Join(f, ", ")
}

// FormatRate is bits a second in tc's words (10mbit).
func FormatRate(bps uint64) string {
	switch {
	case bps%1_000_000_000 == 0:
		return strconv.FormatUint(bps/1_000_000_000, 10) + "gbit"
	case bps%1_000_000 == 0:
		return strconv.FormatUint(bps/1_000_000, 10) + "mbit"
	case bps%1_000 == 0:
		return strconv.FormatUint(bps/1_000, 10) + "kbit"
	}
	return strconv.FormatUint(bps, 10) + "bit"
}

// Check says what is wrong with im, if anything.
func (im Impairment) Check() error {
	switch {
	case im.Delay < 0 || im.Jitter < 0:
		return fmt.Errorf("a delay or jitter below 0")
	case im.Delay > time.Hour || im.Jitter > time.Hour:
		return fmt.Errorf("a delay or jitter over an hour (netem counts in 32 bits of microseconds)")
	case im.Jitter > 0 && im.Delay == 0:
		return fmt.Errorf("a jitter without a delay (netem varies the delay)")
	case im.Loss < 0 || im.Loss > 100:
		return fmt.Errorf("a loss of %v%%: want 0..100", im.Loss)
	case im.Rate > 0 && im.Rate < 8:
		return fmt.Errorf("a rate of %d bit/s: want 8 or more (netem counts bytes)", im.Rate)
	}
	return nil
}

// DecodeImpairment reads an interface's impairment; ok is false when it
// has none. One that does not decode is an error: its container's
// interface is left as it is (reconcile neither adds nor removes netem).
func DecodeImpairment(row string, ext map[string]string) (im Impairment, ok bool, err error) {
	v, ok := ext[KeyImpair]
	if !ok {
		return im, false, nil
	}
	bad := &Error{Row: row, Key: KeyImpair, Value: v, Want: "delay=DURATION,jitter=DURATION,loss=PERCENT,rate=BITS, each optional",
		Then: "its container's interface is left as it is until then"}
	for _, f := range splitList(v) {
		k, val, _ := strings.Cut(f, "=")
		var perr error
		switch k {
		case "delay":
			im.Delay, perr = time.ParseDuration(val)
		case "jitter":
			im.Jitter, perr = time.ParseDuration(val)
		case "loss":
			im.Loss, perr = strconv.ParseFloat(val, 64)
		case "rate":
			im.Rate, perr = strconv.ParseUint(val, 10, 64)
		default:
			perr = fmt.Errorf("unknown field")
		}
		if perr != nil {
			return Impairment{}, true, bad
		}
	}
	if im.Check() != nil || im.IsZero() {
		return Impairment{}, true, bad
	}
	return im, true, nil
}
