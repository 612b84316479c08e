package attach

import (
	"cmp"
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

// Return is a detached container interface going back to wait as a
// warm pool's port: the link Name of Kind ("veth", "tuntap") in the
// namespace at From, with the port's MAC (its identity: the name may be
// another port's by now), to wait down in the namespace at To ("": this
// process's) as As.
type Return struct {
	From, Name, Kind string
	MAC              net.HardwareAddr
	To, As           string
}

// ReturnLink sets the link down, renames it and, when To is another
// namespace, moves it there, which takes its addresses and routes away
// (one a runtime has moved back already, such as Docker's, is only
// renamed). false, with nothing changed, when there is no such link (the
// container and its devices are gone) or the name is taken at To: the
// caller then deletes the port.
func ReturnLink(r Return) (bool, error) {
	to := cmp.Or(r.To, "/proc/self/ns/net")
	if !isNetns(r.From) || !isNetns(to) {
		return false, nil
	}
	if taken, err := HasLink(to, r.As); err != nil || taken {
		return false, err
	}
	dest, err := netns.GetFromPath(to)
	if err != nil {
		return false, fmt.Errorf("open netns %s: %w", to, err)
	}
	defer dest.Close()
	moved := false
	err = withHandle(r.From, func(h *netlink.Handle) error {
		l, err := h.LinkByName(r.Name)
		if err != nil || l.Type() != r.Kind || l.Attrs().HardwareAddr.String() != r.MAC.String() {
			return nil
		}
		if err := h.LinkSetDown(l); err != nil {
			return fmt.Errorf("set %s down in %s: %w", r.Name, r.From, err)
		}
		if err := h.LinkSetName(l, r.As); err != nil {
			return fmt.Errorf("rename %s to %s in %s: %w", r.Name, r.As, r.From, err)
		}
		if !sameNetns(r.From, to) {
			if err := h.LinkSetNsFd(l, int(dest)); err != nil {
				return fmt.Errorf("move %s out of %s: %w", r.As, r.From, err)
			}
		}
		moved = true
		return nil
	})
	return moved, err
}
