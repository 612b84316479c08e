package ratelimit

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/controller/intent"
)

// latencyUsec is how long a packet may wait in a shaper's queue: what sets
// its length (as CNI's bandwidth plugin sets it).
const latencyUsec = 25_000

// shapeHostEnd brings the root qdisc of a veth's host end (in this
// namespace) to the ingress half of lim.
func shapeHostEnd(name string, lim intent.RateLimit) (bool, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return false, err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("host end %s: %w", name, err)
	}
	return shape(h, l, lim.IngressRate, lim.IngressBurst)
}

// shape makes l's root qdisc ovsnet's tbf at rate bits a second with a
// bucket of burst bits, or, with rate 0, removes ovsnet's tbf if it is
// there (another root qdisc is left alone). It says whether it changed
// anything.
func shape(h *netlink.Handle, l netlink.Link, rate, burst uint64) (bool, error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return false, err
	}
	var cur *netlink.Tbf
	for _, q := range qs {
		if t, ok := q.(*netlink.Tbf); ok && q.Attrs().Parent == netlink.HANDLE_ROOT && q.Attrs().Handle == netlink.MakeHandle(handle, 0) {
			cur = t
		}
	}
	if rate == 0 {
		if cur == nil {
			return false, nil
		}
		return true, h.QdiscDel(cur)
	}
	want := tbf(l.Attrs().Index, rate, burst)
	if cur != nil && cur.Rate == want.Rate && cur.Limit == want.Limit && cur.Buffer == want.Buffer {
		return false, nil
	}
	if err := h.QdiscReplace(want); err != nil {
		return false, fmt.Errorf("set a %s shaper on %s: %w", intent.FormatRate(rate), l.Attrs().Name, err)
	}
	return true, nil
}

// tbf is the shaper for rate bits a second and a bucket of burst bits, its
// numbers worked out as tc (and CNI's bandwidth plugin) work them out.
func tbf(link int, rate, burst uint64) *netlink.Tbf {
	bytes, bucket := rate/8, uint32(burst/8)
	buffer := uint32(float64(bucket) * float64(netlink.TIME_UNITS_PER_SEC) / float64(bytes) * netlink.TickInUsec())
	limit := uint32(float64(bytes)*latencyUsec/float64(netlink.TIME_UNITS_PER_SEC)) + bucket
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link, Handle: netlink.MakeHandle(handle, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       bytes, Limit: limit, Buffer: buffer,
	}
}
