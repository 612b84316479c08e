package attach

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// PoolPeer is the name of the container end of a warm pool's veth while
// it waits in this namespace: "op" and the host end's 12 hex digits.
func PoolPeer(host string) string { return "op" + host[2:] }

// CreatePoolVeth makes a warm pool's veth: host end up (its OVS port), the
// container end (PoolPeer) with the port's MAC and MTU, down and without
// addresses, so that nothing sent to the port reaches a stack until an
// attach takes that end: here (nsPath ""), to be moved into a container
// (MoveIn, Configure), or in the namespace at nsPath, where a runtime
// takes its links from (a Docker network's: the take only renames it).
func CreatePoolVeth(host, nsPath string, c Config) error {
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: host, MTU: c.MTU},
		PeerName:         PoolPeer(host),
		PeerHardwareAddr: c.MAC,
		PeerMTU:          uint32(c.MTU),
	}
	if nsPath != "" {
		nsh, err := netns.GetFromPath(nsPath)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", nsPath, err)
		}
		defer nsh.Close()
		v.PeerNamespace = netlink.NsFd(int(nsh))
	}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("create veth %s/%s: %w", host, v.PeerName, err)
	}
	fail := func(err error) error {
		DeleteLink(host)
		return err
	}
	if c.NoTxOffload { // both ends: a device keeps its features when it moves
		if err := setTxOffload(host, false); err != nil {
			return fail(err)
		}
		peer := func() error { return setTxOffload(v.PeerName, false) }
		if nsPath != "" {
			peer = func() error { return SetTxOffloadIn(nsPath, v.PeerName, false) }
		}
		if err := peer(); err != nil {
			return fail(err)
		}
	}
	sealHostEnd(host)
	if nsPath == "" {
		noIPv6(v.PeerName)
	}
	if err := netlink.LinkSetUp(v); err != nil {
		return fail(fmt.Errorf("set %s up: %w", host, err))
	}
	return nil
}

// RenameIn renames link cur in the namespace at nsPath to name (a runtime
// takes it from there by that name).
func RenameIn(nsPath, cur, name string) error {
	return withHandle(nsPath, func(h *netlink.Handle) error {
		l, err := h.LinkByName(cur)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", cur, nsPath, err)
		}
		if err := h.LinkSetName(l, name); err != nil {
			return fmt.Errorf("rename %s to %s in %s: %w", cur, name, nsPath, err)
		}
		return nil
	})
}

// MoveBack returns a detached container interface to the host, to wait
// there as a warm pool's port: the link name of kind ("veth", "tuntap")
// in the namespace at nsPath, if it has the port's MAC (its identity: the
// name may be another port's by now), is set down, renamed to hostName
// and moved into this process's namespace, which takes its addresses and
// routes away. false, with nothing changed, when there is no such link
// (the container and its devices are gone) or the name is taken here:
// the caller then deletes the port.
func MoveBack(nsPath, name, kind string, mac net.HardwareAddr, hostName string) (bool, error) {
	if !isNetns(nsPath) {
		return false, nil
	}
	if _, err := netlink.LinkByName(hostName); err == nil {
		return false, nil
	}
	host, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		return false, fmt.Errorf("open this network namespace: %w", err)
	}
	defer host.Close()
	moved := false
	err = withHandle(nsPath, func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err != nil || l.Type() != kind || l.Attrs().HardwareAddr.String() != mac.String() {
			return nil
		}
		if err := h.LinkSetDown(l); err != nil {
			return fmt.Errorf("set %s down in %s: %w", name, nsPath, err)
		}
		if err := h.LinkSetName(l, hostName); err != nil {
			return fmt.Errorf("rename %s to %s in %s: %w", name, hostName, nsPath, err)
		}
		if err := h.LinkSetNsFd(l, int(host)); err != nil {
			return fmt.Errorf("move %s out of %s: %w", hostName, nsPath, err)
		}
		moved = true
		return nil
	})
	return moved, err
}
