package attach

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GRETap is a kernel gretap device: Ethernet over GRE to one remote host,
// with a key (present on the wire even when 0, as OVS's GRE ports send it).
type GRETap struct {
	Name          string
	Key           uint32
	Local, Remote netip.Addr // the two hosts' underlay addresses
	Dev           string     // the underlay device
	MTU           int
}

// EnsureGRETap makes the device if it is missing and sets it up; made
// says whether it made it. A link of that name that is not this tunnel is
// an error naming it.
func EnsureGRETap(g GRETap) (made bool, err error) {
	local, remote := net.IP(g.Local.AsSlice()), net.IP(g.Remote.AsSlice())
	if l, err := netlink.LinkByName(g.Name); err == nil {
		x, ok := l.(*netlink.Gretap)
		if !ok || x.IKey != g.Key || x.OKey != g.Key || !x.Local.Equal(local) || !x.Remote.Equal(remote) {
			return false, fmt.Errorf("link %s exists and is not a gretap from %s to %s with key %d: delete it (ip link del %s)", g.Name, g.Local, g.Remote, g.Key, g.Name)
		}
		return false, netlink.LinkSetUp(l)
	}
	dev, err := netlink.LinkByName(g.Dev)
	if err != nil {
		return false, fmt.Errorf("underlay device %s: %w", g.Dev, err)
	}
	x := &netlink.Gretap{LinkAttrs: netlink.LinkAttrs{Name: g.Name, MTU: g.MTU}, Local: local, Remote: remote,
		IKey: g.Key, OKey: g.Key, IFlags: greKey, OFlags: greKey, Link: uint32(dev.Attrs().Index), PMtuDisc: 1, Ttl: 64}
	if err := netlink.LinkAdd(x); err != nil {
		switch {
		case errors.Is(err, unix.EOPNOTSUPP):
			return false, fmt.Errorf("the kernel has no gretap devices (modprobe ip_gre, or `tunnel add --device ovs`): %w", err)
		case errors.Is(err, unix.EEXIST):
			return false, fmt.Errorf("create gretap device %s: the kernel already has a GRE tunnel from %s to %s with key %d (ip -d link show type gretap): %w", g.Name, g.Local, g.Remote, g.Key, err)
		}
		return false, fmt.Errorf("create gretap device %s (to %s, key %d): %w", g.Name, g.Remote, g.Key, err)
	}
	noIPv6(g.Name)
	if err := netlink.LinkSetUp(x); err != nil {
		DeleteLink(g.Name)
		return false, fmt.Errorf("set %s up: %w", g.Name, err)
	}
	return true, nil
}

// greKey is GRE's key-present flag (GRE_KEY in linux/if_tunnel.h): set
// by hand, since the netlink library sets it only for a nonzero key.
const greKey = 0x2000
