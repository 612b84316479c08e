// Package impair bends a container interface's traffic for a lab: a
// delay (with jitter), a loss and a rate, with netem as the root qdisc of
// the container's side of the interface, so that what it sends is bent
// before the switch sees it and the pipeline (isolation, spoof guard,
// flood bounds) still sees every packet that leaves. The impairment is
// intent (intent.Impairment on the interface's row): reconcile puts the
// qdisc back when the container's interface lost it (a restarted
// container, a `tc qdisc del`).
package impair

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Options is one `ovsnet impair`.
type Options struct {
	Network, Container, Iface string
	Impairment                intent.Impairment // zero: clear
}

// Result is the interface's impairment after Set.
type Result struct {
	Bridge     string            `json:"network"`
	Interface  string            `json:"interface"`
	Impairment intent.Impairment `json:"-"`
	Said       string            `json:"impairment"` // in words; "" when cleared
}

// Set records o's impairment on the interface and brings its container's
// qdisc to it (a zero impairment clears both). If the qdisc cannot be
// changed the record goes back to what it was.
func Set(ctx context.Context, h *network.Host, o Options) (Result, error) {
	if err := o.Impairment.Check(); err != nil {
		return Result{}, fmt.Errorf("impairment: %w", err)
	}
	ci, err := h.FindContainerIface(ctx, o.Network, o.Container, o.Iface)
	if err != nil {
		return Result{}, err
	}
	ifc := ci.Iface
	if lim, _, _ := intent.DecodeRateLimit("", ifc.ExternalIDs); lim.EgressRate > 0 && !o.Impairment.IsZero() {
		return Result{}, fmt.Errorf("%s has an egress rate limit (its shaper holds the container side's queue): impair --rate bends the rate too; clear the limit first (ovsnet qos %s %s --clear)",
			network.OwnerOf(*ifc), o.Network, o.Container)
	}
	r := Result{Bridge: ci.Bridge, Interface: ifc.Name, Impairment: o.Impairment, Said: o.Impairment.String()}
	was := ifc.ExternalIDs[intent.KeyImpair]
	if err := h.DB.SetInterfaceKey(ctx, ifc.UUID, intent.KeyImpair, o.Impairment.Encode()); err != nil {
		return r, err
	}
	if _, err := apply(ctx, *ifc, o.Impairment, o.Container); err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return r, errors.Join(err, h.DB.SetInterfaceKey(rctx, ifc.UUID, intent.KeyImpair, was))
	}
	return r, nil
}

// Converge brings the container's qdisc of an interface with an
// impairment to it, for reconcile; an interface with none, or one that
// does not decode (reported by the caller's intent check), is left alone.
// did says what changed ("" nothing).
func Converge(ctx context.Context, ifc vswitchd.Interface) (did string, err error) {
	im, ok, err := intent.DecodeImpairment(network.IfaceRow(ifc), ifc.ExternalIDs)
	if !ok || err != nil {
		return "", err
	}
	changed, err := apply(ctx, ifc, im, "")
	if errors.Is(err, containers.ErrNotRunning) {
		return "", nil // nothing to bend: the next run after it starts puts it back
	}
	if err != nil || !changed {
		return "", err
	}
	return fmt.Sprintf("put back the impairment of %s (%s)", network.OwnerOf(ifc), im), nil
}

// apply makes the root qdisc of the container's side of ifc netem as im
// says, or removes ovsnet's netem for a zero im; changed says whether it
// had to. name is how the user named the container ("": the intent's).
func apply(ctx context.Context, ifc vswitchd.Interface, im intent.Impairment, name string) (changed bool, err error) {
	pi, err := intent.DecodePort(network.IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil {
		return false, err
	}
	h, l, err := containers.Side(ctx, pi.Netns, []string{name, pi.RuntimeName, pi.Container}, pi.MAC)
	if err != nil {
		return false, err
	}
	defer h.Close()
	cur, err := rootNetem(h, l)
	if err != nil {
		return false, err
	}
	want := netemOf(l, im)
	switch {
	case im.IsZero() && cur == nil:
		return false, nil
	case im.IsZero():
		return true, h.QdiscDel(cur)
	case cur != nil && same(cur, want):
		return false, nil
	}
	if err := h.QdiscReplace(want); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, fmt.Errorf("set netem on %s in container %s: %w", l.Attrs().Name, pi.Container, ErrNoNetem)
		}
		return false, fmt.Errorf("set netem on %s in container %s: %w", l.Attrs().Name, pi.Container, err)
	}
	return true, nil
}

// ErrNoNetem is the kernel's answer when it has no netem qdisc.
var ErrNoNetem = errors.New("this kernel has no netem qdisc: modprobe sch_netem (Ubuntu ships it in linux-modules-extra-$(uname -r); a kernel built without CONFIG_NET_SCH_NETEM cannot impair)")

// handle is the major number of ovsnet's netem: a root netem with another
// is not ovsnet's to change or remove.
const handle = 0x8e

// rootNetem is l's root qdisc if it is ovsnet's netem, nil if it is
// anything else.
func rootNetem(h *netlink.Handle, l netlink.Link) (*netlink.Netem, error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if n, ok := q.(*netlink.Netem); ok && n.Attrs().Parent == netlink.HANDLE_ROOT && n.Attrs().Handle == netlink.MakeHandle(handle, 0) {
			return n, nil
		}
	}
	return nil, nil
}

// netemOf is the root netem qdisc on l for im.
func netemOf(l netlink.Link, im intent.Impairment) *netlink.Netem {
	attrs := netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(handle, 0)}
	return netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{
		Latency: uint32(im.Delay.Microseconds()), Jitter: uint32(im.Jitter.Microseconds()),
		Loss: float32(im.Loss), Rate64: im.Rate / 8,
	})
}

// same says whether the netem in place does what want does.
func same(cur, want *netlink.Netem) bool {
	return cur.Latency == want.Latency && cur.Jitter == want.Jitter && cur.Loss == want.Loss && cur.Rate64 == want.Rate64
}
