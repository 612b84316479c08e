package ovn

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/ovn-org/libovsdb/model"
	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// Router is a logical router between OVN networks, as `ovsnet router`
// reports it.
type Router struct {
	Name     string            `json:"name"`
	Networks []string          `json:"networks"`
	Gateway  *nb.RouterGateway `json:"gateway,omitempty"`
	NB       string            `json:"northbound"`
}

// routerOf reads router name, which must be ovsnet's.
func routerOf(ctx context.Context, nbc *ovsdb.Client, name string) (*ovnnb.LogicalRouter, error) {
	lrs, err := nb.LogicalRouters(ctx, nbc, name)
	switch {
	case err != nil:
		return nil, err
	case len(lrs) == 0:
		return nil, fmt.Errorf("no router %s (ovsnet router ls lists them; ovsnet router create %s makes it)", name, name)
	case !intent.Owned(lrs[0].ExternalIDs):
		return nil, fmt.Errorf("logical router %s is not ovsnet's: choose another name", name)
	}
	return &lrs[0], nil
}

// RouterOptions are `ovsnet router create`'s.
type RouterOptions struct {
	Name    string
	NB      string            // the northbound database
	SB      string            // the southbound database, to check gateway chassis by (needed with Gateway)
	Gateway *nb.RouterGateway // its way out (nil: none, it routes between its networks only)
}

// CreateRouter makes router o.Name, with its gateway if o.Gateway says;
// one of that name already ovsnet's, with the same gateway, is left as
// it is (created false); with another, it is refused.
func CreateRouter(ctx context.Context, o RouterOptions) (created bool, err error) {
	if err := attach.CheckName("router", o.Name); err != nil {
		return false, err
	}
	if o.Gateway != nil {
		if err := o.Gateway.Check(); err != nil {
			return false, err
		}
		if o.Gateway.Chassis, err = gatewayChassis(ctx, o.SB, o.Gateway.Chassis); err != nil {
			return false, err
		}
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, o.NB)
	if err != nil {
		return false, err
	}
	defer nbc.Close()
	lrs, err := nb.LogicalRouters(ctx, nbc, o.Name)
	if err != nil {
		return false, err
	}
	if len(lrs) > 0 {
		return false, sameRouter(ctx, nbc, lrs[0], o.Gateway)
	}
	lr := &ovnnb.LogicalRouter{UUID: "ovsnet_lr", Name: o.Name, ExternalIDs: intent.Ownership("")}
	var ops []ovsdbops.Operation
	if o.Gateway != nil {
		ops, err = nb.NewRouterWithGateway(nbc, lr, *o.Gateway)
	} else {
		ops, err = nbc.Create(lr)
	}
	if err != nil {
		return false, err
	}
	return true, nbc.Run(ctx, ops)
}

// sameRouter refuses router lr if it is not ovsnet's or has another
// gateway than gw.
func sameRouter(ctx context.Context, nbc *ovsdb.Client, lr ovnnb.LogicalRouter, gw *nb.RouterGateway) error {
	if !intent.Owned(lr.ExternalIDs) {
		return fmt.Errorf("logical router %s exists and is not ovsnet's: choose another name", lr.Name)
	}
	has, err := nb.ReadRouterGateway(ctx, nbc, lr)
	switch {
	case err != nil:
		return err
	case has == nil && gw == nil:
		return nil
	case has == nil:
		return fmt.Errorf("router %s exists without a gateway: a gateway is given at create (ovsnet router rm %s first)", lr.Name, lr.Name)
	case gw == nil || !has.Equal(*gw):
		return fmt.Errorf("router %s exists with another gateway (%s via %s on %s): ovsnet router rm %s first to change it", lr.Name, has.Address, has.NextHop, strings.Join(has.Chassis, ","), lr.Name)
	}
	return nil
}

// ListRouters lists ovsnet's routers and their networks, by name.
func ListRouters(ctx context.Context, endpoint string) ([]Router, error) {
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	defer nbc.Close()
	lrs, err := ovsdb.Select[ovnnb.LogicalRouter](ctx, nbc, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.Ownership(""))}, "_uuid", "name", "ports")
	if err != nil {
		return nil, err
	}
	out := []Router{}
	for _, lr := range lrs {
		nets, err := nb.RouterNetworks(ctx, nbc, lr, "")
		if err != nil {
			return nil, err
		}
		sort.Strings(nets)
		gw, err := nb.ReadRouterGateway(ctx, nbc, lr)
		if err != nil {
			return nil, err
		}
		out = append(out, Router{Name: lr.Name, Networks: append([]string{}, nets...), Gateway: gw, NB: endpoint})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveRouter deletes router name; one with networks is refused.
func RemoveRouter(ctx context.Context, endpoint, name string) error {
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return err
	}
	defer nbc.Close()
	lr, err := routerOf(ctx, nbc, name)
	if err != nil {
		return err
	}
	nets, err := nb.RouterNetworks(ctx, nbc, *lr, "")
	if err != nil {
		return err
	}
	if len(nets) > 0 {
		sort.Strings(nets)
		return fmt.Errorf("router %s still routes %s: detach them first (ovsnet router detach %s NETWORK)", name, strings.Join(nets, ", "), name)
	}
	ops, err := nbc.Where(&ovnnb.LogicalRouter{UUID: lr.UUID}).Delete()
	if err != nil {
		return err
	}
	gw, err := nb.DeleteRouterGateway(ctx, nbc, name)
	if err != nil {
		return err
	}
	return nbc.Run(ctx, append(ops, gw...))
}

// routedNetwork is an OVN network as router attach and detach read it.
type routedNetwork struct {
	ls         ovnnb.LogicalSwitch
	ports      []ovnnb.LogicalSwitchPort
	containers int
	nat        bool   // it has a gateway on every host (--nat)
	router     string // the router it is on; "": none
	routerPort string // the router's port on it (UUID)
}

// readRouted reads network name and the router it is on.
func readRouted(ctx context.Context, nbc *ovsdb.Client, name string) (*routedNetwork, error) {
	lss, err := nb.LogicalSwitches(ctx, nbc, name)
	switch {
	case err != nil:
		return nil, err
	case len(lss) == 0:
		return nil, fmt.Errorf("no OVN network %s (ovsnet network ls lists them)", name)
	case !intent.Owned(lss[0].ExternalIDs):
		return nil, fmt.Errorf("logical switch %s is not ovsnet's", name)
	}
	n := &routedNetwork{ls: lss[0]}
	if n.ports, err = nb.SwitchPorts(ctx, nbc, n.ls); err != nil {
		return nil, err
	}
	for _, p := range n.ports {
		switch {
		case p.Name == nb.GatewayPortName(name):
			n.nat = true
		case nb.IsContainerPort(name, p):
			n.containers++
		}
	}
	lr, port, err := nb.RouterOf(ctx, nbc, name)
	if lr != nil {
		n.router, n.routerPort = lr.Name, port
	}
	return n, err
}

// routedOps guard a router attach or detach by the switch's ports as
// read (a container attached meanwhile makes it read again) and add or
// remove the router's port and the switch's peer.
func routedOps(nbc *ovsdb.Client, n *routedNetwork, lr *ovnnb.LogicalRouter, lrp *ovnnb.LogicalRouterPort, lsp *ovnnb.LogicalSwitchPort, add bool) ([]ovsdbops.Operation, error) {
	zero := 0
	sw := &ovnnb.LogicalSwitch{UUID: n.ls.UUID, Ports: n.ls.Ports}
	ops, err := nbc.Where(sw).Wait(ovsdbops.WaitConditionEqual, &zero, sw, &sw.Ports)
	if err != nil {
		return nil, err
	}
	mutator := ovsdbops.MutateOperationDelete
	if add {
		mutator = ovsdbops.MutateOperationInsert
		more, err := nbc.Create(lrp, lsp)
		if err != nil {
			return nil, err
		}
		ops = append(ops, more...)
	}
	r := &ovnnb.LogicalRouter{UUID: lr.UUID}
	m1, err := nbc.Where(r).Mutate(r, model.Mutation{Field: &r.Ports, Mutator: mutator, Value: []string{lrp.UUID}})
	if err != nil {
		return nil, err
	}
	m2, err := nbc.Where(sw).Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: mutator, Value: []string{lsp.UUID}})
	return append(append(ops, m1...), m2...), err
}

// AttachRouter puts network net on router name: the router's port takes
// the network's gateway addresses, and its containers' default routes
// lead to it. Already there is no change (attached false). A network with
// NAT, with containers, or on another router is refused.
//
// addr, if valid, is the router's address on the network instead of its
// gateway: it becomes the network's gateway (for IPv4; its containers,
// attached after, take it as their default route), and stays so.
func AttachRouter(ctx context.Context, endpoint, name, net string, addr netip.Addr) (attached bool, err error) {
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return false, err
	}
	defer nbc.Close()
	err = ovsdb.OnConflict(func() error {
		attached, err = attachRouter(ctx, nbc, name, net, addr)
		return err
	})
	if err != nil || !attached {
		return false, err
	}
	if _, err = nb.SyncIsolation(ctx, nbc, net); err != nil {
		return true, err
	}
	// The router's services, on every switch of it: this one's too now.
	peers, err := nb.RoutedPeers(ctx, nbc, net)
	for _, p := range append(peers, net) {
		if err == nil {
			_, err = syncServices(ctx, nbc, p)
		}
	}
	return true, err
}

func attachRouter(ctx context.Context, nbc *ovsdb.Client, name, net string, addr netip.Addr) (bool, error) {
	lr, err := routerOf(ctx, nbc, name)
	if err != nil {
		return false, err
	}
	n, err := readRouted(ctx, nbc, net)
	if err != nil {
		return false, err
	}
	bi := intent.DecodeBridge(net, n.ls.ExternalIDs)
	switch {
	case n.router == name && (!addr.IsValid() || slices.ContainsFunc(bi.Subnets, func(s ipam.Subnet) bool { return s.Gateway == addr })):
		return false, nil
	case n.router == name:
		return false, fmt.Errorf("network %s is on router %s with gateway %s, not %s: detach it first to change the router's address", net, name, bi.Subnets[0].Gateway, addr)
	case n.router != "":
		return false, fmt.Errorf("network %s is on router %s: a network is on one router (ovsnet router detach %s %s first)", net, n.router, n.router, net)
	case n.nat:
		return false, fmt.Errorf("network %s has NAT: its containers leave through the host each runs on, by a gateway holding %s's gateway address on every host, which the router's port would take; a router has no way out of OVN: route networks made with --nat=false", net, net)
	case n.containers > 0:
		return false, fmt.Errorf("network %s has %d container port(s): a container's routes are set when it attaches, so put a network on its router before its containers (detach them, attach the network, attach them again)", net, n.containers)
	case bi.SubnetsErr != nil || len(bi.Subnets) == 0:
		return false, fmt.Errorf("network %s's subnets do not decode, so its gateway is not known: %v", net, bi.SubnetsErr)
	}
	regw, err := regateway(nbc, n, &bi, addr)
	if err != nil {
		return false, err
	}
	lrp, lsp := nb.NewRouterPorts(net, bi.Subnets)
	ops, err := routedOps(nbc, n, lr, lrp, lsp, true)
	if err != nil {
		return false, err
	}
	ops = append(ops, regw...)
	nats, err := gatewayNATs(ctx, nbc, lr, net, bi.Subnets, true)
	if err != nil {
		return false, err
	}
	return true, nbc.Run(ctx, append(ops, nats...))
}

// DetachRouter takes network net off router name, its ACLs and those of
// the networks left on the router with it. Not on it is an error; a
// network with containers is refused (their default routes lead to it).
func DetachRouter(ctx context.Context, endpoint, name, net string) error {
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return err
	}
	defer nbc.Close()
	peers, err := nb.RoutedPeers(ctx, nbc, net)
	if err != nil {
		return err
	}
	err = ovsdb.OnConflict(func() error { return detachRouter(ctx, nbc, name, net) })
	if err != nil {
		return err
	}
	for _, p := range append([]string{net}, peers...) {
		if _, err := nb.SyncIsolation(ctx, nbc, p); err != nil {
			return err
		}
	}
	for _, p := range peers { // their services leave net's switch
		if _, err := syncServices(ctx, nbc, p); err != nil {
			return err
		}
	}
	return nil
}

func detachRouter(ctx context.Context, nbc *ovsdb.Client, name, net string) error {
	lr, err := routerOf(ctx, nbc, name)
	if err != nil {
		return err
	}
	n, err := readRouted(ctx, nbc, net)
	if err != nil {
		return err
	}
	if svcs, err := servicesOn(ctx, nbc, net); err != nil || len(svcs) > 0 {
		return cmp.Or(err, fmt.Errorf("network %s has services (%s), reached through its router: remove them first (ovsnet service rm NAME)", net, strings.Join(svcs, ", ")))
	}
	switch {
	case n.router != name:
		return fmt.Errorf("network %s is not on router %s (ovsnet router ls)", net, name)
	case n.containers > 0:
		return fmt.Errorf("network %s has %d container port(s), whose default routes lead to router %s: detach them first", net, n.containers, name)
	}
	lsps := slices.DeleteFunc(slices.Clone(n.ports), func(p ovnnb.LogicalSwitchPort) bool { return p.Name != nb.RouterSwitchPortName(net) })
	if len(lsps) == 0 {
		return fmt.Errorf("network %s's router ports are half gone: ovn-nbctl show %s", net, name)
	}
	ops, err := routedOps(nbc, n, lr, &ovnnb.LogicalRouterPort{UUID: n.routerPort}, &lsps[0], false)
	if err != nil {
		return err
	}
	nats, err := gatewayNATs(ctx, nbc, lr, net, nil, false)
	if err != nil {
		return err
	}
	return nbc.Run(ctx, append(ops, nats...))
}

// regateway is the operations making addr (if valid) network n's IPv4
// gateway, in bi too, so that the router's port takes it: the switch's
// gateway key and OVN's excluded address. It must be a host address of
// the subnet that its health checks do not use.
func regateway(nbc *ovsdb.Client, n *routedNetwork, bi *intent.Bridge, addr netip.Addr) ([]ovsdbops.Operation, error) {
	if !addr.IsValid() || addr == bi.Subnets[0].Gateway {
		return nil, nil
	}
	sub := bi.Subnets[0].Prefix
	last := nb.HealthCheckSource(sub).Next()
	switch {
	case !sub.Contains(addr) || addr == sub.Masked().Addr() || addr == last:
		return nil, fmt.Errorf("--address %s is not a host address of network %s's subnet %s", addr, bi.Name, sub)
	case addr == nb.HealthCheckSource(sub):
		return nil, fmt.Errorf("--address %s is where network %s's service health checks come from: choose another", addr, bi.Name)
	}
	bi.Subnets[0].Gateway = addr
	ext := maps.Clone(n.ls.ExternalIDs)
	maps.Copy(ext, intent.Settings{Subnets: bi.Subnets}.Encode())
	oc := maps.Clone(n.ls.OtherConfig)
	if oc == nil {
		oc = map[string]string{}
	}
	oc["exclude_ips"] = addr.String()
	ls := &ovnnb.LogicalSwitch{UUID: n.ls.UUID, ExternalIDs: ext, OtherConfig: oc}
	return nbc.Where(ls).Update(ls, &ls.ExternalIDs, &ls.OtherConfig)
}

// gatewayNATs is the operations adding (or removing) network net's SNAT
// on router lr's gateway; none if lr has no gateway.
func gatewayNATs(ctx context.Context, nbc *ovsdb.Client, lr *ovnnb.LogicalRouter, net string, subs []ipam.Subnet, add bool) ([]ovsdbops.Operation, error) {
	addr, has, err := nb.RouterGatewayAddress(ctx, nbc, *lr)
	if err != nil || !has {
		return nil, err
	}
	if add && !addr.IsValid() { // fail closed: no translation to an unknown address
		return nil, fmt.Errorf("router %s's gateway port %s has no address ovsnet can read: make the router again (ovsnet router rm %s; ovsnet router create %s --gateway-...)", lr.Name, nb.RouterGatewayName(lr.Name), lr.Name, lr.Name)
	}
	return nb.GatewayNATs(ctx, nbc, *lr, addr.Addr(), net, subs, add)
}

// routerName is the router network net is on; "": none.
func routerName(ctx context.Context, nbc *ovsdb.Client, net string) (string, error) {
	lr, _, err := nb.RouterOf(ctx, nbc, net)
	if lr == nil {
		return "", err
	}
	return lr.Name, err
}
