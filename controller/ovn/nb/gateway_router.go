package nb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ovn-org/libovsdb/model"
	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// A router's gateway is its one way out of OVN: a router port holding
// one address on the outside segment, bound to one chassis at a time by
// an HA chassis group (OVN moves it to the next chassis by priority when
// BFD finds the holder gone), a switch joining that port to the chassis'
// uplink (a localnet port on the physical network intent.UplinkNetwork),
// a default route to the outside's router, and per routed IPv4 subnet an
// SNAT to the one address. Its rows are named by the router, with a name
// longer than any network's (15), so none is ever a network's; they carry
// KeyRouterGateway, not ovsnet's ownership mark (the switch is not an
// ovsnet network).

// KeyRouterGateway marks a gateway's rows with their router's name.
const KeyRouterGateway = "ovsnet-router-gateway"

// RouterGatewayName names router's gateway rows: its router port (and so
// "cr-NAME", the chassis-resident port, in the southbound database), its
// switch and its HA chassis group.
func RouterGatewayName(router string) string { return "ovsnet-gateway-" + router }

// RouterGateway is a router's way out.
type RouterGateway struct {
	Chassis []string     `json:"chassis"`  // the chassis that may hold it, by priority (first: highest)
	Address netip.Prefix `json:"address"`  // the router's address on the outside segment
	NextHop netip.Addr   `json:"next_hop"` // the outside's router
}

// Equal says whether g and o are the same gateway.
func (g RouterGateway) Equal(o RouterGateway) bool {
	return slices.Equal(g.Chassis, o.Chassis) && g.Address == o.Address && g.NextHop == o.NextHop
}

// Check refuses a gateway OVN could not make.
func (g RouterGateway) Check() error {
	switch {
	case len(g.Chassis) == 0:
		return fmt.Errorf("a gateway needs at least one chassis (--gateway-chassis A[,B...])")
	case !g.Address.IsValid() || !g.Address.Addr().Is4():
		return fmt.Errorf("a gateway needs an IPv4 address with its prefix on the outside segment (--gateway-address 198.51.100.10/24)")
	case !g.NextHop.Is4() || !g.Address.Masked().Contains(g.NextHop) || g.NextHop == g.Address.Addr():
		return fmt.Errorf("the gateway's next hop %s must be another address in %s (--gateway-next-hop)", g.NextHop, g.Address.Masked())
	}
	return nil
}

// gatewayRows are the rows of router's gateway g, with the router port's
// and the route's UUID names for the router's columns.
func gatewayRows(router string, g RouterGateway) (rows []model.Model, port, route string) {
	name := RouterGatewayName(router)
	ext := map[string]string{KeyRouterGateway: router}
	grp := &ovnnb.HAChassisGroup{UUID: "ovsnet_hag", Name: name, ExternalIDs: ext}
	for i, c := range g.Chassis {
		hc := &ovnnb.HAChassis{UUID: fmt.Sprintf("ovsnet_hac%d", i), ChassisName: c, Priority: 100 - i, ExternalIDs: ext}
		grp.HaChassis, rows = append(grp.HaChassis, hc.UUID), append(rows, hc)
	}
	lrp := &ovnnb.LogicalRouterPort{UUID: "ovsnet_gwp", Name: name, MAC: ipam.MACFor([]netip.Prefix{netip.PrefixFrom(g.Address.Addr(), 32)}).String(),
		Networks: []string{g.Address.String()}, HaChassisGroup: &grp.UUID, ExternalIDs: ext}
	rtr := &ovnnb.LogicalSwitchPort{UUID: "ovsnet_gwr", Name: name + "-rtr", Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": name, "nat-addresses": "router"}, ExternalIDs: ext}
	out := &ovnnb.LogicalSwitchPort{UUID: "ovsnet_gwo", Name: name + "-out", Type: "localnet", Addresses: []string{"unknown"},
		Options: map[string]string{"network_name": intent.UplinkNetwork}, ExternalIDs: ext}
	ls := &ovnnb.LogicalSwitch{UUID: "ovsnet_gws", Name: name, Ports: []string{rtr.UUID, out.UUID}, ExternalIDs: ext}
	rt := &ovnnb.LogicalRouterStaticRoute{UUID: "ovsnet_gwrt", IPPrefix: "0.0.0.0/0", Nexthop: g.NextHop.String(), OutputPort: &lrp.Name, ExternalIDs: ext}
	return append(rows, grp, lrp, rtr, out, ls, rt), lrp.UUID, rt.UUID
}

// NewRouterWithGateway is the operations making router lr (its UUID a
// name to insert) with gateway g.
func NewRouterWithGateway(nb *ovsdb.Client, lr *ovnnb.LogicalRouter, g RouterGateway) ([]ovsdbops.Operation, error) {
	rows, port, route := gatewayRows(lr.Name, g)
	lr.Ports, lr.StaticRoutes = []string{port}, []string{route}
	return nb.Create(append(rows, lr)...)
}

// RouterGatewayAddress reads router lr's gateway address alone, which is
// what attaches, service placement and show need (has: lr has a gateway;
// an address that does not decode is the zero Prefix).
func RouterGatewayAddress(ctx context.Context, nb *ovsdb.Client, lr ovnnb.LogicalRouter) (addr netip.Prefix, has bool, err error) {
	lrps, err := ovsdb.Select[ovnnb.LogicalRouterPort](ctx, nb, []ovsdbops.Condition{ovsdb.NameIs(RouterGatewayName(lr.Name))}, "_uuid", "networks")
	if err != nil || len(lrps) == 0 || !slices.Contains(lr.Ports, lrps[0].UUID) {
		return netip.Prefix{}, false, err
	}
	if len(lrps[0].Networks) == 1 {
		addr, _ = netip.ParsePrefix(lrps[0].Networks[0])
	}
	return addr, true, nil
}

// ReadRouterGateway reads router lr's whole gateway (nil: it has none).
func ReadRouterGateway(ctx context.Context, nb *ovsdb.Client, lr ovnnb.LogicalRouter) (*RouterGateway, error) {
	addr, has, err := RouterGatewayAddress(ctx, nb, lr)
	if err != nil || !has {
		return nil, err
	}
	g := &RouterGateway{Address: addr}
	mine := []ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{KeyRouterGateway: lr.Name})}
	hcs, err := ovsdb.Select[ovnnb.HAChassis](ctx, nb, mine, "chassis_name", "priority")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(hcs, func(a, b ovnnb.HAChassis) int { return b.Priority - a.Priority })
	for _, hc := range hcs {
		g.Chassis = append(g.Chassis, hc.ChassisName)
	}
	rts, err := ovsdb.Select[ovnnb.LogicalRouterStaticRoute](ctx, nb, mine, "nexthop")
	if err == nil && len(rts) == 1 {
		g.NextHop, _ = netip.ParseAddr(rts[0].Nexthop)
	}
	return g, err
}

// DeleteRouterGateway is the operations removing router's gateway rows,
// in the transaction deleting the router (its route and NATs go with it):
// the switch, the HA chassis group, and the router port, which refers to
// the group (OVSDB checks references before it collects garbage).
func DeleteRouterGateway(ctx context.Context, nb *ovsdb.Client, router string) ([]ovsdbops.Operation, error) {
	name := RouterGatewayName(router)
	where := []ovsdbops.Condition{ovsdb.NameIs(name)}
	var ops []ovsdbops.Operation
	var errs []error
	del := func(m model.Model) {
		op, err := nb.Where(m).Delete()
		ops, errs = append(ops, op...), append(errs, err)
	}
	lss, err := ovsdb.Select[ovnnb.LogicalSwitch](ctx, nb, where, "_uuid")
	for _, r := range lss {
		del(&ovnnb.LogicalSwitch{UUID: r.UUID})
	}
	lrps, err2 := ovsdb.Select[ovnnb.LogicalRouterPort](ctx, nb, where, "_uuid")
	for _, r := range lrps {
		del(&ovnnb.LogicalRouterPort{UUID: r.UUID})
	}
	grps, err3 := ovsdb.Select[ovnnb.HAChassisGroup](ctx, nb, where, "_uuid")
	for _, r := range grps {
		del(&ovnnb.HAChassisGroup{UUID: r.UUID})
	}
	return ops, errors.Join(append(errs, err, err2, err3)...)
}

// GatewayNATs is the operations giving router lr, for each IPv4 subnet of
// network net, an SNAT to its gateway's address (to) (add), or removing
// the network's (!add). IPv6 is routed, not translated.
func GatewayNATs(ctx context.Context, nb *ovsdb.Client, lr ovnnb.LogicalRouter, to netip.Addr, net string, subs []ipam.Subnet, add bool) ([]ovsdbops.Operation, error) {
	r := &ovnnb.LogicalRouter{UUID: lr.UUID}
	if !add {
		nats, err := ovsdb.Select[ovnnb.NAT](ctx, nb, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{KeyRouterGateway: lr.Name, intent.KeyOVNNetwork: net})}, "_uuid")
		if err != nil || len(nats) == 0 {
			return nil, err
		}
		var us []string
		for _, n := range nats {
			us = append(us, n.UUID)
		}
		return nb.Where(r).Mutate(r, model.Mutation{Field: &r.Nat, Mutator: ovsdbops.MutateOperationDelete, Value: us})
	}
	var rows []model.Model
	var us []string
	for i, s := range subs {
		if !s.Prefix.Addr().Is4() {
			continue
		}
		n := &ovnnb.NAT{UUID: fmt.Sprintf("ovsnet_nat%d", i), Type: ovnnb.NATTypeSNAT, LogicalIP: s.Prefix.String(), ExternalIP: to.String(),
			ExternalIDs: map[string]string{KeyRouterGateway: lr.Name, intent.KeyOVNNetwork: net}}
		rows, us = append(rows, n), append(us, n.UUID)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ops, err := nb.Create(rows...)
	if err != nil {
		return nil, err
	}
	m, err := nb.Where(r).Mutate(r, model.Mutation{Field: &r.Nat, Mutator: ovsdbops.MutateOperationInsert, Value: us})
	return append(ops, m...), err
}
