package attach

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// Shaper is a token-bucket cap on what leaves a link: Rate bits a second
// with a bucket of Burst bits; Rate 0 is no cap. What is over the rate
// waits in the queue rather than being dropped, so TCP through it runs at
// the rate.
type Shaper struct{ Rate, Burst uint64 }

// ShaperHandle is the major number of ovsnet's tbf qdiscs: a root qdisc
// with another is not ovsnet's to replace or remove.
const ShaperHandle = 0x8f

// shaperLatencyUsec is how long a packet may wait in a shaper's queue:
// what sets its length (as CNI's bandwidth plugin sets it).
const shaperLatencyUsec = 25_000

// ShapeHostEnd brings the root qdisc of link name in this namespace (a
// veth's host end, where the switch's packets leave for the container) to
// s.
func ShapeHostEnd(name string, s Shaper) (changed bool, err error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return false, err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("host end %s: %w", name, err)
	}
	return Shape(h, l, s)
}

// Shape makes l's root qdisc ovsnet's tbf for s, or, with s.Rate 0,
// removes ovsnet's tbf if it is there (another root qdisc is left alone).
// It says whether it changed anything.
func Shape(h *netlink.Handle, l netlink.Link, s Shaper) (bool, error) {
	cur, err := currentShaper(h, l)
	if err != nil {
		return false, err
	}
	if s.Rate == 0 {
		if cur == nil {
			return false, nil
		}
		return true, h.QdiscDel(cur)
	}
	want := tbf(l.Attrs().Index, s)
	if sameShaper(cur, want) {
		return false, nil
	}
	if err := h.QdiscReplace(want); err != nil {
		return false, fmt.Errorf("set a %d bit/s shaper on %s: %w", s.Rate, l.Attrs().Name, err)
	}
	return true, nil
}

// Shaped says whether l's root holds s (ovsnet's tbf for it; none for a
// zero s), changing nothing.
func Shaped(h *netlink.Handle, l netlink.Link, s Shaper) (bool, error) {
	cur, err := currentShaper(h, l)
	if err != nil || s.Rate == 0 {
		return cur == nil, err
	}
	return sameShaper(cur, tbf(l.Attrs().Index, s)), nil
}

// currentShaper is ovsnet's tbf at l's root, or nil.
func currentShaper(h *netlink.Handle, l netlink.Link) (*netlink.Tbf, error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if t, ok := q.(*netlink.Tbf); ok && q.Attrs().Parent == netlink.HANDLE_ROOT && q.Attrs().Handle == netlink.MakeHandle(ShaperHandle, 0) {
			return t, nil
		}
	}
	return nil, nil
}

func sameShaper(cur, want *netlink.Tbf) bool {
	return cur != nil && cur.Rate == want.Rate && cur.Limit == want.Limit && cur.Buffer == want.Buffer
}

// tbf is the shaper for s, its numbers worked out as tc (and CNI's
// bandwidth plugin) work them out.
func tbf(link int, s Shaper) *netlink.Tbf {
	bytes, bucket := s.Rate/8, uint32(s.Burst/8)
	buffer := uint32(float64(bucket) * float64(netlink.TIME_UNITS_PER_SEC) / float64(bytes) * netlink.TickInUsec())
	limit := uint32(float64(bytes)*shaperLatencyUsec/float64(netlink.TIME_UNITS_PER_SEC)) + bucket
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link, Handle: netlink.MakeHandle(ShaperHandle, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       bytes, Limit: limit, Buffer: buffer,
	}
}
