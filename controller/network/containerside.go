package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
)

// ContainerSide is a netlink handle in the container's namespace and the
// container's side of interface pi there (found by its MAC: a runtime may
// have renamed it); name is how the user named the container ("": the
// intent's names). The caller closes the handle. ErrNotRunning when the
// container or its interface is not there.
func ContainerSide(ctx context.Context, pi intent.Port, name string) (*netlink.Handle, netlink.Link, error) {
	path, err := netnsOf(ctx, pi, name)
	if err != nil {
		return nil, nil, err
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open container %s's namespace %s: %w", pi.Container, path, err)
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
		if net.HardwareAddr(l.Attrs().HardwareAddr).String() == pi.MAC.String() {
			return h, l, nil
		}
	}
	h.Close()
	return nil, nil, fmt.Errorf("%w: container %s has no interface with MAC %s", ErrNotRunning, pi.Container, pi.MAC)
}

// netnsOf is the container's network namespace: the one ovsnet attached
// it in, else (a runtime's endpoint, or a container that restarted) the
// one its runtime reports now.
func netnsOf(ctx context.Context, pi intent.Port, name string) (string, error) {
	if pi.Netns != "" {
		if _, err := os.Stat(pi.Netns); err == nil {
			return pi.Netns, nil
		}
	}
	for _, ref := range []string{name, pi.RuntimeName, pi.Container} {
		if ref == "" {
			continue
		}
		if t, err := containers.Resolve(ctx, ref); err == nil {
			return t.Netns, nil
		}
	}
	return "", fmt.Errorf("%w: container %s has no network namespace", ErrNotRunning, pi.Container)
}

// ErrNotRunning is wrapped when the container's side of the interface is
// not there to bend.
var ErrNotRunning = errors.New("the container is not running")
