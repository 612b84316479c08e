package attach

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Splice joins a kernel device back to back with the tap of an OVS
// internal port: what the device receives, OVS reads from the tap's queue;
// what OVS writes to the tap leaves through the device, untouched. A
// kernel VXLAN device reaches ovs-vswitchd this way rather than as an
// ordinary port, whose packet socket drops segments past a receive buffer
// (net.core.rmem_default, the host's and not a namespace's to raise) that
// holds three 64 KB segments.
//
// Dev's tc ingress redirects to the tap's egress. The tap's own ingress
// is OVS's (ovs-vswitchd deletes an ingress qdisc there whenever it sets
// the port's policing), so what OVS writes is taken from the tap by Via, a
// macvlan in passthru mode over it, whose ingress redirects to Dev.
type Splice struct {
	Dev string // the kernel device
	Tap string // the OVS internal port
	Via string // ovsnet's macvlan over Tap
}

// Ensure makes the splice, or mends it: changed says something was
// missing (a port deleted and added again gets a new tap, and its macvlan
// goes with the old; the tap itself outlives an ovs-vswitchd restart).
// Dev and Tap must exist; all three end up set up, with no IPv6 of their
// own.
func (s Splice) Ensure() (changed bool, err error) {
	dev, err := netlink.LinkByName(s.Dev)
	if err != nil {
		return false, fmt.Errorf("splice %s to %s: %w", s.Dev, s.Tap, err)
	}
	tap, err := netlink.LinkByName(s.Tap)
	if err != nil {
		return false, fmt.Errorf("splice %s to %s: %w", s.Dev, s.Tap, err)
	}
	via, made, err := s.via(tap)
	if err != nil {
		return false, err
	}
	changed = made
	for _, p := range [][2]netlink.Link{{dev, tap}, {via, dev}} {
		c, err := redirect(p[0], p[1])
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	// A macvlan takes the multicast it subscribes to, through a queue of
	// its own; all of it, with allmulti (IPv6 neighbour solicitations).
	if err := netlink.LinkSetAllmulticastOn(via); err != nil {
		return changed, fmt.Errorf("set allmulti on %s: %w", s.Via, err)
	}
	for _, l := range []netlink.Link{tap, via, dev} {
		noIPv6(l.Attrs().Name) // conduits: no addresses of their own
		if err := netlink.LinkSetUp(l); err != nil {
			return changed, fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
		}
	}
	return changed, nil
}

// via is s's macvlan over tap, made (made true) if it is missing or over
// another device.
func (s Splice) via(tap netlink.Link) (l netlink.Link, made bool, err error) {
	if l, err := netlink.LinkByName(s.Via); err == nil {
		if m, ok := l.(*netlink.Macvlan); ok && m.Mode == netlink.MACVLAN_MODE_PASSTHRU && m.ParentIndex == tap.Attrs().Index {
			return l, false, nil
		}
		if err := netlink.LinkDel(l); err != nil {
			return nil, false, fmt.Errorf("remove %s, not a passthru macvlan over %s: %w", s.Via, s.Tap, err)
		}
	}
	m := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: s.Via, ParentIndex: tap.Attrs().Index}, Mode: netlink.MACVLAN_MODE_PASSTHRU}
	if err := netlink.LinkAdd(m); err != nil {
		return nil, false, fmt.Errorf("add macvlan %s over %s (the kernel needs macvlan): %w", s.Via, s.Tap, err)
	}
	l, err = netlink.LinkByName(s.Via)
	if err != nil {
		return nil, false, err
	}
	return l, true, nil
}

// ingressParent is the handle of a device's ingress qdisc.
var ingressParent = netlink.MakeHandle(0xffff, 0)

// redirect makes from's ingress send everything to to's egress, unless
// it does already (changed false).
func redirect(from, to netlink.Link) (changed bool, err error) {
	if fs, err := netlink.FilterList(from, ingressParent); err == nil && len(fs) == 1 {
		if u, ok := fs[0].(*netlink.U32); ok && u.RedirIndex == to.Attrs().Index {
			return false, nil
		}
	}
	name := from.Attrs().Name
	q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: from.Attrs().Index, Handle: ingressParent, Parent: netlink.HANDLE_INGRESS}}
	// A fresh qdisc: its filters, stale ones included, go with the old.
	if err := netlink.QdiscDel(q); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return false, fmt.Errorf("remove %s's ingress qdisc: %w", name, err)
	}
	if err := netlink.QdiscAdd(q); err != nil {
		return false, fmt.Errorf("add an ingress qdisc to %s (the kernel needs sch_ingress): %w", name, err)
	}
	f := &netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: from.Attrs().Index, Parent: ingressParent, Priority: 1, Protocol: unix.ETH_P_ALL},
		RedirIndex: to.Attrs().Index}
	if err := netlink.FilterAdd(f); err != nil {
		netlink.QdiscDel(q)
		return false, fmt.Errorf("redirect %s to %s (the kernel needs cls_u32 and act_mirred): %w", name, to.Attrs().Name, err)
	}
	return true, nil
}
