package attach

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VXLAN is a kernel VXLAN device of a bridge spanning hosts: one per
// bridge, its remotes forwarding entries (all-zero MAC: where broadcasts
// and unknown unicast go; the kernel learns each remote MAC's host).
type VXLAN struct {
	Name  string
	VNI   uint32
	Local netip.Addr // this host's underlay address
	Dev   string     // the underlay device
	MTU   int
}

// VXLANPort is the UDP port of the kernel's VXLAN devices (IANA's).
const VXLANPort = 4789

// EnsureVXLAN makes the device if it is missing and sets it up; made says
// whether it made it. One that exists with another VNI or local address
// is an error naming it.
func EnsureVXLAN(v VXLAN) (made bool, err error) {
	if l, err := netlink.LinkByName(v.Name); err == nil {
		x, ok := l.(*netlink.Vxlan)
		if !ok || x.VxlanId != int(v.VNI) || !x.SrcAddr.Equal(net.IP(v.Local.AsSlice())) {
			return false, fmt.Errorf("link %s exists and is not VXLAN %d from %s: delete it (ip link del %s)", v.Name, v.VNI, v.Local, v.Name)
		}
		return false, netlink.LinkSetUp(l)
	}
	dev, err := netlink.LinkByName(v.Dev)
	if err != nil {
		return false, fmt.Errorf("underlay device %s: %w", v.Dev, err)
	}
	x := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: v.Name, MTU: v.MTU}, VxlanId: int(v.VNI),
		VtepDevIndex: dev.Attrs().Index, SrcAddr: net.IP(v.Local.AsSlice()), Port: VXLANPort, Learning: true}
	if err := netlink.LinkAdd(x); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return false, fmt.Errorf("the kernel has no VXLAN (modprobe vxlan): %w", err)
		}
		return false, fmt.Errorf("create VXLAN device %s (VNI %d): %w", v.Name, v.VNI, err)
	}
	noIPv6(v.Name)
	if err := netlink.LinkSetUp(x); err != nil {
		DeleteLink(v.Name)
		return false, fmt.Errorf("set %s up: %w", v.Name, err)
	}
	return true, nil
}

// SetVXLANRemote adds (or, with del, removes) remote among the hosts the
// device floods to. Adding one present, or removing one absent, is fine.
func SetVXLANRemote(name string, remote netip.Addr, del bool) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
		State: netlink.NUD_PERMANENT | netlink.NUD_NOARP, IP: net.IP(remote.AsSlice()), HardwareAddr: make(net.HardwareAddr, 6)}
	if del {
		if err := netlink.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove %s from %s: %w", remote, name, err)
		}
		return nil
	}
	if err := netlink.NeighAppend(n); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", remote, name, err)
	}
	return nil
}
