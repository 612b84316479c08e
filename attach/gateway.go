package attach

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ConvergeGatewayDevice brings a gateway's device in the host (a bridge's
// own port, an OVN network's gateway port) to its MTU (0: left alone), up,
// with the gateway addresses gws; it says what it changed.
func ConvergeGatewayDevice(l netlink.Link, gws []netip.Prefix, mtu int) ([]string, error) {
	name := l.Attrs().Name
	var did []string
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return did, fmt.Errorf("set MTU %d on bridge %s: %w", mtu, name, err)
		}
		did = append(did, fmt.Sprintf("set MTU %d on %s", mtu, name))
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return did, fmt.Errorf("set bridge %s up: %w", name, err)
		}
		did = append(did, fmt.Sprintf("set %s up", name))
	}
	// IPv6 addresses vanish whenever a device goes down (ovs-vswitchd may
	// toggle its taps) unless keep_addr_on_down is set on it.
	if len(gws) > 0 {
		os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/keep_addr_on_down", []byte("1"), 0o644)
	}
	have, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return did, err
	}
	for _, gw := range gws {
		present := false
		for _, a := range have {
			if a.IPNet.String() == gw.String() {
				present = true
			}
		}
		if present {
			continue
		}
		na := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(gw.Addr().AsSlice()), Mask: net.CIDRMask(gw.Bits(), gw.Addr().BitLen())}}
		if gw.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(l, na); err != nil {
			return did, fmt.Errorf("add gateway %s to bridge %s: %w", gw, name, err)
		}
		did = append(did, fmt.Sprintf("added gateway %s to %s", gw, name))
	}
	return did, nil
}
