// Package publish is the operations on a container's published ports
// (`ovsnet publish`, `unpublish`, `port`, and the Docker driver's -p): the
// container named on a network, its interface that publishes (the first
// with an IPv4 address), and the host's NAT (hostnat) changed for it.
package publish

import (
	"context"
	"fmt"
	"strings"

	"github.com/ovsnet/ovsnet/controller/hostnat"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// target is the container interface on bridge that publishing uses:
// the first with an IPv4 address.
func target(ctx context.Context, h *network.Host, bridge, container string) (*vswitchd.Interface, *vswitchd.Bridge, error) {
	br, ifs, _, err := h.ContainerPorts(ctx, bridge, container, "")
	if err != nil {
		return nil, nil, err
	}
	if len(ifs) == 0 {
		// A runtime's endpoint, by its container's name.
		if ifs, err = h.DB.FindInterfaces(ctx, intent.NamedOn(bridge, container)); err != nil {
			return nil, nil, err
		}
	}
	for i := range ifs {
		if _, ok := natplan.IfaceIPv4(ifs[i]); ok {
			return &ifs[i], br, nil
		}
	}
	if len(ifs) == 0 {
		return nil, nil, fmt.Errorf("container %s has no interface on %s (see ovsnet show %s)", container, bridge, bridge)
	}
	return nil, nil, fmt.Errorf("container %s has no IPv4 address on %s, so no port of it can be published", container, bridge)
}

// Add adds port mappings for CONTAINER on BRIDGE. A host port already
// published (same protocol and port on the same or every address) or bound
// by a host process is refused; no HOST_PORT picks a free one.
func Add(ctx context.Context, h *network.Host, bridge, container string, specs []string) ([]hostnat.PortMapping, error) {
	tr := steptime.New()
	defer tr.Done("publish")
	var req []nat.Mapping
	for _, s := range specs {
		m, err := nat.ParseMapping(s)
		if err != nil {
			return nil, err
		}
		req = append(req, m)
	}
	n, err := h.Network(ctx, bridge)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	ifc, _, err := target(ctx, h, n.Bridge(), container)
	if err != nil {
		return nil, err
	}
	tr.Step("find container")
	nb, ok, err := n.NATBridge(ctx) // an OVN network: this chassis' gateway
	if err != nil {
		return nil, err
	}
	if !ok || !nb.NAT {
		return nil, fmt.Errorf("bridge %s is not in NAT mode (--nat=true with an IPv4 subnet): its containers are reachable directly, nothing to publish", bridge)
	}
	ms, err := h.NAT().Publish(ctx, nb, *ifc, req)
	tr.Step("reserve and add rules")
	return ms, err
}

// publishedBy is CONTAINER's interface on BRIDGE that publishes, and what
// it publishes.
func publishedBy(ctx context.Context, h *network.Host, bridge, container string) (*vswitchd.Interface, []nat.Mapping, error) {
	n, err := h.Network(ctx, bridge)
	if err != nil {
		return nil, nil, err
	}
	n.Close()
	ifc, _, err := target(ctx, h, n.Bridge(), container)
	if err != nil {
		return nil, nil, err
	}
	ms, err := intent.Published(network.IfaceRow(*ifc), ifc.ExternalIDs)
	return ifc, ms, err
}

// Remove removes port mappings of CONTAINER on BRIDGE (matched by
// container port and protocol, and host port when given).
func Remove(ctx context.Context, h *network.Host, bridge, container string, specs []string) ([]hostnat.PortMapping, error) {
	ifc, cur, err := publishedBy(ctx, h, bridge, container)
	if err != nil {
		return nil, err
	}
	var gone, keep []nat.Mapping
	for _, m := range cur {
		hit := false
		for _, s := range specs {
			r, err := nat.ParseMapping(s)
			if err != nil {
				return nil, err
			}
			hit = hit || (r.ContainerPort == m.ContainerPort && r.Proto == m.Proto && (r.HostPort == 0 || r.HostPort == m.HostPort) &&
				(r.HostIP.IsUnspecified() || r.HostIP == m.HostIP))
		}
		if hit {
			gone = append(gone, m)
		} else {
			keep = append(keep, m)
		}
	}
	if len(gone) == 0 {
		return nil, fmt.Errorf("container %s publishes none of %s on %s (see ovsnet port %s %s)", container, strings.Join(specs, " "), bridge, bridge, container)
	}
	if err := h.NAT().Release(ctx, *ifc, gone, keep); err != nil {
		return nil, err
	}
	return hostnat.Mappings(*ifc, gone), nil
}

// List lists CONTAINER's published ports on BRIDGE (only those of one
// container port when filter is PORT[/proto]).
func List(ctx context.Context, h *network.Host, bridge, container, filter string) ([]hostnat.PortMapping, error) {
	ifc, ms, err := publishedBy(ctx, h, bridge, container)
	if err != nil {
		return nil, err
	}
	if filter != "" {
		f, err := nat.ParseMapping(filter)
		if err != nil {
			return nil, err
		}
		var keep []nat.Mapping
		for _, m := range ms {
			if m.ContainerPort == f.ContainerPort && (m.Proto == f.Proto) {
				keep = append(keep, m)
			}
		}
		if len(keep) == 0 {
			return nil, fmt.Errorf("no public port '%s' published for %s", filter, container)
		}
		ms = keep
	}
	return hostnat.Mappings(*ifc, ms), nil
}
