package attach

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// PoolPeer is the name of the container end of a warm pool's veth while
// it waits in this namespace: "op" and the host end's 12 hex digits.
func PoolPeer(host string) string { return "op" + host[2:] }

// CreatePoolVeth makes a warm pool's veth: host end up (its OVS port), the
// container end (PoolPeer) here too with the port's MAC and MTU, down and
// without addresses, so that nothing sent to the port reaches a stack
// until an attach moves that end into a container (MoveIn, Configure).
func CreatePoolVeth(host string, c Config) error {
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: host, MTU: c.MTU},
		PeerName:         PoolPeer(host),
		PeerHardwareAddr: c.MAC,
		PeerMTU:          uint32(c.MTU),
	}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("create veth %s/%s: %w", host, v.PeerName, err)
	}
	fail := func(err error) error {
		DeleteLink(host)
		return err
	}
	if c.NoTxOffload { // both ends: a device keeps its features when it moves
		for _, dev := range []string{host, v.PeerName} {
			if err := setTxOffload(dev, false); err != nil {
				return fail(err)
			}
		}
	}
	sealHostEnd(host)
	noIPv6(v.PeerName)
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
