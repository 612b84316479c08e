package attach

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The underlay is the host's own network that tunnels ride on. OVS's
// userspace datapath encapsulates by itself and must own the local tunnel
// address: it has to sit on an OVS bridge, not on the kernel interface. These
// helpers move a device's addresses and routes to that bridge and back.

// Underlay is what moves from a device to the bridge that takes it over.
type Underlay struct {
	Dev    string
	MAC    net.HardwareAddr
	MTU    int
	Addrs  []netip.Prefix // global unicast addresses
	Routes []string       // "DST via GW" or "DST" (device routes), main table, not the kernel's own
}

// RouteSource returns the address the kernel would send from toward remote,
// and the device it would use.
func RouteSource(remote netip.Addr) (netip.Addr, string, error) {
	rs, err := netlink.RouteGet(remote.AsSlice())
	if err != nil || len(rs) == 0 {
		return netip.Addr{}, "", fmt.Errorf("no route to %s: add one, or give --local-ip", remote)
	}
	src, ok := netip.AddrFromSlice(rs[0].Src)
	l, lerr := netlink.LinkByIndex(rs[0].LinkIndex)
	if !ok || lerr != nil {
		return netip.Addr{}, "", fmt.Errorf("no source address toward %s: give --local-ip", remote)
	}
	return src.Unmap(), l.Attrs().Name, nil
}

// LinkOfAddr returns the link that holds address a in this netns.
func LinkOfAddr(a netip.Addr) (string, error) {
	as, err := netlinksafe.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", err
	}
	for _, ad := range as {
		if x, ok := netip.AddrFromSlice(ad.IP); ok && x.Unmap() == a {
			l, err := netlink.LinkByIndex(ad.LinkIndex)
			if err != nil {
				return "", err
			}
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("%s is not an address of this host: give --local-ip with one of its own", a)
}

// ReadUnderlay reads what would move off dev.
func ReadUnderlay(dev string) (*Underlay, error) {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("underlay device %s: %w", dev, err)
	}
	u := &Underlay{Dev: dev, MAC: l.Attrs().HardwareAddr, MTU: l.Attrs().MTU}
	as, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		p, ok := netipPrefix(a.IPNet)
		if ok && a.Scope == unix.RT_SCOPE_UNIVERSE && !p.Addr().IsLinkLocalUnicast() {
			u.Addrs = append(u.Addrs, p)
		}
	}
	rs, err := netlinksafe.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: l.Attrs().Index, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		// The kernel's prefix routes come back with the addresses.
		if r.Protocol == unix.RTPROT_KERNEL || (r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast()) {
			continue
		}
		u.Routes = append(u.Routes, routeString(r))
	}
	return u, nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), ok
}

func routeString(r netlink.Route) string {
	dst := "default"
	if r.Dst != nil {
		if p, ok := netipPrefix(r.Dst); ok && p.Bits() > 0 {
			dst = p.String()
		}
	}
	if r.Gw != nil {
		return dst + " via " + r.Gw.String()
	}
	return dst
}

func parseRoute(s string, link int) (*netlink.Route, error) {
	dst, gw, _ := strings.Cut(s, " via ")
	r := &netlink.Route{LinkIndex: link, Table: unix.RT_TABLE_MAIN}
	if g := strings.TrimSpace(gw); g != "" {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("bad stored route %q", s)
		}
		r.Gw = a.AsSlice()
	}
	if dst != "default" {
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			return nil, fmt.Errorf("bad stored route %q", s)
		}
		r.Dst = prefixToIPNet(p)
	} else if len(r.Gw) == 16 {
		r.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return r, nil
}

// PutUnderlay puts u's addresses and routes on dev (up, with u's MTU):
// idempotent, so it also restores them after ovs-vswitchd re-created dev.
func PutUnderlay(u *Underlay, dev string) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("underlay: %s: %w", dev, err)
	}
	if u.MTU > 0 && l.Attrs().MTU != u.MTU {
		if err := netlink.LinkSetMTU(l, u.MTU); err != nil {
			return fmt.Errorf("underlay: MTU of %s: %w", dev, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("underlay: set %s up: %w", dev, err)
	}
	for _, a := range u.Addrs {
		if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: prefixToIPNet(a)}); err != nil {
			return fmt.Errorf("underlay: address %s on %s: %w", a, dev, err)
		}
	}
	for _, s := range u.Routes {
		r, err := parseRoute(s, l.Attrs().Index)
		if err != nil {
			return err
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("underlay: route %s on %s: %w", s, dev, err)
		}
	}
	return nil
}

// TakeUnderlay removes u's addresses from dev (its routes go with them, or
// have moved) once they are on the bridge, and stops dev from answering
// ARP for them itself: OVS reads dev's packets, the kernel would too.
func TakeUnderlay(u *Underlay, dev string) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	for _, a := range u.Addrs {
		if err := netlink.AddrDel(l, &netlink.Addr{IPNet: prefixToIPNet(a)}); err != nil && !os.IsNotExist(err) && err != unix.EADDRNOTAVAIL {
			return fmt.Errorf("underlay: remove %s from %s: %w", a, dev, err)
		}
	}
	setSysctl("net/ipv4/conf/"+dev+"/arp_ignore", "8")
	return nil
}

// GiveBackUnderlay undoes TakeUnderlay: dev answers ARP again and gets its
// addresses and routes back.
func GiveBackUnderlay(u *Underlay) error {
	setSysctl("net/ipv4/conf/"+u.Dev+"/arp_ignore", "0")
	return PutUnderlay(u, u.Dev)
}

func setSysctl(key, v string) { os.WriteFile("/proc/sys/"+key, []byte(v), 0o644) }
