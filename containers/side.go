package containers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ErrNotRunning is wrapped when a container's side of an interface is not
// there (the container is not running, or has no such interface).
var ErrNotRunning = errors.New("the container is not running")

// Side is a netlink handle in a container's network namespace and the
// interface with MAC mac there (by its MAC: a runtime may have renamed
// it). The namespace is netns if it still exists, else what the first of
// refs (names or IDs of the container) that Resolve finds says. The caller
// closes the handle.
func Side(ctx context.Context, netnsPath string, refs []string, mac net.HardwareAddr) (*netlink.Handle, netlink.Link, error) {
	path, err := netnsOf(ctx, netnsPath, refs)
	if err != nil {
		return nil, nil, err
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, nil, err
	}
	links, err := h.LinkList()
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	for _, l := range links {
		if net.HardwareAddr(l.Attrs().HardwareAddr).String() == mac.String() {
			return h, l, nil
		}
	}
	h.Close()
	return nil, nil, fmt.Errorf("%w: no interface with MAC %s in %s", ErrNotRunning, mac, path)
}

// netnsOf is netnsPath if it exists, else the namespace of the first of
// refs that resolves.
func netnsOf(ctx context.Context, netnsPath string, refs []string) (string, error) {
	if netnsPath != "" {
		if _, err := os.Stat(netnsPath); err == nil {
			return netnsPath, nil
		}
	}
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		if t, err := Resolve(ctx, ref); err == nil {
			return t.Netns, nil
		}
	}
	return "", fmt.Errorf("%w: no network namespace for %v", ErrNotRunning, refs)
}
