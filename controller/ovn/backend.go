package ovn

import (
	"context"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/show"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Backend is OVN as network's Backend: the networks of the northbound
// database this host joined (ovn join --nb), their ports' logical side
// on detach, and their part of show.
type Backend struct{}

// Open is OVN network name (nil if this host is no chassis ovsnet joined
// with a northbound database, or that database has no ovsnet network so
// named), holding its northbound connection until closed.
func (Backend) Open(ctx context.Context, h *network.Host, name string) (network.Network, error) {
	n, err := openNetwork(ctx, h, name)
	if n == nil {
		return nil, err // not a nil *ovnNetwork in an interface
	}
	return n, err
}

// Detach removes the logical switch ports of the OVN ports among ifs.
func (Backend) Detach(ctx context.Context, h *network.Host, ifs []vswitchd.Interface) error {
	return detach(ctx, h, ifs)
}

// Show is the OVN networks (all, or the one named only).
func (Backend) Show(ctx context.Context, h *network.Host, only string, local map[string]network.PortView) ([]show.BridgeView, error) {
	return networks(ctx, h, only, local)
}

// chassis is this host's OVN settings, as ovn join left them (an encap
// address that does not decode is ovn-controller's to report).
func chassis(ctx context.Context, h *network.Host) (intent.Chassis, error) {
	root, err := h.DB.RootExternalIDs(ctx)
	if err != nil {
		return intent.Chassis{}, err
	}
	c, _ := intent.DecodeChassis(root)
	return c, nil
}
