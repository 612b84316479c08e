package nb

import (
	"context"
	"net/netip"
	"slices"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// A router joins OVN networks: per network a Logical_Router_Port holding
// the network's gateway addresses and MAC, and on the network's switch a
// port of type router peering with it. A network is on at most one
// router, so both are named by the network alone; the rows themselves are
// the intent (there is no key to disagree with them).

// RouterSwitchPortName is network name's switch port to its router.
func RouterSwitchPortName(name string) string { return "ovsnet-rtr-" + name }

// RouterPortName is the router's port on network name.
func RouterPortName(name string) string { return "ovsnet-lrp-" + name }

// IsRouterPort says whether p is a switch's port to a router.
func IsRouterPort(p ovnnb.LogicalSwitchPort) bool { return p.Type == "router" }

// LogicalRouters reads the Logical_Router rows called name.
func LogicalRouters(ctx context.Context, nb *ovsdb.Client, name string) ([]ovnnb.LogicalRouter, error) {
	return ovsdb.Select[ovnnb.LogicalRouter](ctx, nb, []ovsdbops.Condition{ovsdb.NameIs(name)}, "_uuid", "name", "external_ids", "ports")
}

// NewRouterPorts are the router's port on network name (subnets subs) and
// the switch's port peering with it.
func NewRouterPorts(name string, subs []ipam.Subnet) (*ovnnb.LogicalRouterPort, *ovnnb.LogicalSwitchPort) {
	ext := intent.Ownership("")
	ext[intent.KeyOVNNetwork] = name
	var gws []netip.Prefix
	var nets []string
	for _, s := range subs {
		p := netip.PrefixFrom(s.Gateway, s.Prefix.Bits())
		gws, nets = append(gws, netip.PrefixFrom(s.Gateway, s.Gateway.BitLen())), append(nets, p.String())
	}
	lrp := &ovnnb.LogicalRouterPort{UUID: "ovsnet_lrp", Name: RouterPortName(name), MAC: ipam.MACFor(gws[:1]).String(), Networks: nets, ExternalIDs: ext}
	lsp := &ovnnb.LogicalSwitchPort{UUID: "ovsnet_rtr", Name: RouterSwitchPortName(name), Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": lrp.Name}, ExternalIDs: ext}
	return lrp, lsp
}

// RouterOf finds the router network name is on: the router and its port
// on the network (nil, "" when it is on none).
func RouterOf(ctx context.Context, nb *ovsdb.Client, name string) (lr *ovnnb.LogicalRouter, port string, err error) {
	lrps, err := ovsdb.Select[ovnnb.LogicalRouterPort](ctx, nb, []ovsdbops.Condition{ovsdb.NameIs(RouterPortName(name))}, "_uuid")
	if err != nil || len(lrps) == 0 {
		return nil, "", err
	}
	lrs, err := ovsdb.Select[ovnnb.LogicalRouter](ctx, nb, nil, "_uuid", "name", "external_ids", "ports")
	if err != nil {
		return nil, "", err
	}
	for i := range lrs {
		if slices.Contains(lrs[i].Ports, lrps[0].UUID) {
			return &lrs[i], lrps[0].UUID, nil
		}
	}
	return nil, "", nil
}

// RoutedPeers are the other networks on the router of network name (none
// when it is on no router).
func RoutedPeers(ctx context.Context, nb *ovsdb.Client, name string) ([]string, error) {
	lr, _, err := RouterOf(ctx, nb, name)
	if err != nil || lr == nil {
		return nil, err
	}
	return RouterNetworks(ctx, nb, *lr, name)
}

// RouterNetworks are the networks router lr has a port on, but except.
func RouterNetworks(ctx context.Context, nb *ovsdb.Client, lr ovnnb.LogicalRouter, except string) ([]string, error) {
	ps, err := ovsdb.Select[ovnnb.LogicalRouterPort](ctx, nb, nil, "_uuid", "name", "external_ids")
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, u := range lr.Ports {
		mine[u] = true
	}
	var out []string
	for _, p := range ps {
		if n := p.ExternalIDs[intent.KeyOVNNetwork]; mine[p.UUID] && n != "" && n != except {
			out = append(out, n)
		}
	}
	return out, nil
}
