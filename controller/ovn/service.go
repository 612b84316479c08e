package ovn

import (
	"cmp"
	"context"
	"errors"
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
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// A service is an OVN load balancer on a routed network's switch: its
// address (outside the network's subnets: its containers send to it
// through their default route, the router, and the switch's load balancer
// takes it on the way) spread over containers of the network by name, each
// checked by OVN's service monitor, which takes a backend that stops
// answering out of the rotation. The backends are intent by container
// name (intent.Service, on the row); the addresses are derived from the
// containers' logical ports whenever the service or its network changes.

// Health checks: every healthCheckInterval seconds, a backend out after
// healthCheckFailures misses, back after one answer.
const (
	healthCheckInterval = "2"
	healthCheckTimeout  = "1"
	healthCheckFailures = "2"
)

// ServiceView is a service as `ovsnet service ls` reports it.
type ServiceView struct {
	Name     string   `json:"name"`
	Network  string   `json:"network"`
	VIP      string   `json:"vip"`
	Backends []string `json:"backends"` // CONTAINER:PORT, as given
	Serving  []string `json:"serving"`  // ADDRESS:PORT, in the load balancer now
	Missing  []string `json:"not_attached,omitempty"`
	Errors   []string `json:"intent_errors,omitempty"`
}

// ServiceOptions are `ovsnet service create`'s.
type ServiceOptions struct {
	Name, Network, VIP string
	Backends           []string // CONTAINER:PORT
}

// derived is a service's load balancer as its intent and the network's
// ports make it.
type derived struct {
	vips, mappings map[string]string
	serving        []string
	missing        []string
}

// derive works out service s's vips and health-check mappings from the
// logical ports of its network (ports; subnet, its IPv4 subnet).
func derive(s intent.Service, ports []ovnnb.LogicalSwitchPort, subnet netip.Prefix) derived {
	d := derived{vips: map[string]string{}, mappings: map[string]string{}}
	src := nb.HealthCheckSource(subnet).String()
	for _, b := range s.Backends {
		i := slices.IndexFunc(ports, func(p ovnnb.LogicalSwitchPort) bool {
			return p.ExternalIDs[intent.KeyContainerID] == b.Container && len(nb.Addrs(p)) > 0 && nb.Addrs(p)[0].Is4()
		})
		if i < 0 {
			d.missing = append(d.missing, b.Container)
			continue
		}
		a := nb.Addrs(ports[i])[0]
		d.serving = append(d.serving, netip.AddrPortFrom(a, b.Port).String())
		d.mappings[a.String()] = ports[i].Name + ":" + src
	}
	if len(d.serving) > 0 {
		d.vips[s.VIP.String()] = strings.Join(d.serving, ",")
	}
	return d
}

// serviceNetwork reads the network a service is on: its switch, ports
// and IPv4 subnet.
func serviceNetwork(ctx context.Context, nbc *ovsdb.Client, name string) (*routedNetwork, netip.Prefix, error) {
	n, err := readRouted(ctx, nbc, name)
	if err != nil {
		return nil, netip.Prefix{}, err
	}
	bi := intent.DecodeBridge(name, n.ls.ExternalIDs)
	if bi.SubnetsErr != nil || len(bi.Subnets) == 0 {
		return nil, netip.Prefix{}, fmt.Errorf("network %s's subnets do not decode: %v", name, bi.SubnetsErr)
	}
	return n, bi.Subnets[0].Prefix, nil
}

// CreateService makes service o.Name on its network; the same service
// again changes nothing (created false).
func CreateService(ctx context.Context, endpoint string, o ServiceOptions) (created bool, err error) {
	s, err := parseService(o)
	if err != nil {
		return false, err
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return false, err
	}
	defer nbc.Close()
	have, err := nb.Services(ctx, nbc, s.Name)
	if err != nil {
		return false, err
	}
	if len(have) > 0 {
		if maps.Equal(have[0].ExternalIDs, s.Encode()) {
			return false, nil
		}
		return false, fmt.Errorf("service %s exists with other settings: change its backends (ovsnet service add-backend|del-backend) or remove it first", s.Name)
	}
	n, subnet, err := serviceNetwork(ctx, nbc, s.Network)
	if err != nil {
		return false, err
	}
	if err := checkServiceNetwork(s, n, subnet); err != nil {
		return false, err
	}
	d := derive(s, n.ports, subnet)
	if len(d.missing) > 0 {
		return false, notAttached(s, d.missing)
	}
	proto := s.Proto
	hc := &ovnnb.LoadBalancerHealthCheck{UUID: "ovsnet_hc", Vip: s.VIP.String(), ExternalIDs: intent.Ownership(""),
		Options: map[string]string{"interval": healthCheckInterval, "timeout": healthCheckTimeout, "failure_count": healthCheckFailures, "success_count": "1"}}
	lb := &ovnnb.LoadBalancer{UUID: "ovsnet_lb", Name: "ovsnet-svc-" + s.Name, Protocol: &proto, Vips: d.vips, IPPortMappings: d.mappings,
		HealthCheck: []string{hc.UUID}, ExternalIDs: s.Encode()}
	ops, err := nbc.Create(hc, lb)
	if err != nil {
		return false, err
	}
	p, err := placeOf(ctx, nbc, s)
	if err != nil {
		return false, err
	}
	mut, err := placeOps(ctx, nbc, lb.UUID, p)
	if err != nil {
		return false, err
	}
	if err := nbc.Run(ctx, append(ops, mut...)); err != nil {
		return false, err
	}
	_, err = nb.SyncIsolation(ctx, nbc, s.Network)
	return true, err
}

// placement is where a service's load balancer goes: the switch of every
// network of its network's router (by name), so that the router's other
// networks reach it through their own switch, and the router itself (by
// UUID) when the service's address is the router's gateway address
// (published through the gateway, where the router port takes it from the
// outside).
type placement struct{ networks, routers []string }

// placeOf is service s's placement.
func placeOf(ctx context.Context, nbc *ovsdb.Client, s intent.Service) (placement, error) {
	p := placement{networks: []string{s.Network}}
	lr, _, err := nb.RouterOf(ctx, nbc, s.Network)
	if err != nil || lr == nil {
		return p, err
	}
	nets, err := nb.RouterNetworks(ctx, nbc, *lr, s.Network)
	if err != nil {
		return p, err
	}
	p.networks = append(p.networks, nets...)
	gw, _, err := nb.RouterGatewayAddress(ctx, nbc, *lr)
	if gw.IsValid() && gw.Addr() == s.VIP.Addr() {
		p.routers = append(p.routers, lr.UUID)
	}
	return p, err
}

// placeOps puts load balancer lb (a UUID, or a name for one inserted in
// the same transaction) on the switches and routers of p that lack it and
// takes it off those that have it and are not in p.
func placeOps(ctx context.Context, nbc *ovsdb.Client, lb string, p placement) ([]ovsdbops.Operation, error) {
	lss, err := ovsdb.Select[ovnnb.LogicalSwitch](ctx, nbc, nil, "_uuid", "name", "load_balancer")
	if err != nil {
		return nil, err
	}
	lrs, err := ovsdb.Select[ovnnb.LogicalRouter](ctx, nbc, nil, "_uuid", "load_balancer")
	if err != nil {
		return nil, err
	}
	var ops []ovsdbops.Operation
	var errs []error
	move := func(has, want bool, m model.Model, field *[]string) {
		if has == want {
			return
		}
		mutator := map[bool]ovsdbops.Mutator{true: ovsdbops.MutateOperationInsert, false: ovsdbops.MutateOperationDelete}[want]
		op, err := nbc.Where(m).Mutate(m, model.Mutation{Field: field, Mutator: mutator, Value: []string{lb}})
		ops, errs = append(ops, op...), append(errs, err)
	}
	for _, ls := range lss {
		sw := &ovnnb.LogicalSwitch{UUID: ls.UUID}
		move(slices.Contains(ls.LoadBalancer, lb), slices.Contains(p.networks, ls.Name), sw, &sw.LoadBalancer)
	}
	for _, lr := range lrs {
		r := &ovnnb.LogicalRouter{UUID: lr.UUID}
		move(slices.Contains(lr.LoadBalancer, lb), slices.Contains(p.routers, lr.UUID), r, &r.LoadBalancer)
	}
	return ops, errors.Join(errs...)
}

// parseService checks o and makes it a service's intent.
func parseService(o ServiceOptions) (intent.Service, error) {
	s := intent.Service{Name: o.Name, Network: o.Network}
	if err := attach.CheckName("service", o.Name); err != nil {
		return s, err
	}
	var err error
	if s.VIP, s.Proto, err = intent.ParseVIP(o.VIP); err != nil {
		return s, err
	}
	if s.Backends, err = parseBackends(o.Backends); err != nil {
		return s, err
	}
	if len(s.Backends) == 0 {
		return s, fmt.Errorf("service %s has no --backend: name at least one CONTAINER:PORT", o.Name)
	}
	return s, nil
}

func parseBackends(vs []string) ([]intent.Backend, error) {
	var out []intent.Backend
	for _, v := range vs {
		b, err := intent.ParseBackend(v)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, b) {
			return nil, fmt.Errorf("backend %s named twice", b)
		}
		out = append(out, b)
	}
	return out, nil
}

// checkServiceNetwork refuses a service its network cannot carry.
func checkServiceNetwork(s intent.Service, n *routedNetwork, subnet netip.Prefix) error {
	src := nb.HealthCheckSource(subnet)
	switch {
	case n.router == "":
		return fmt.Errorf("network %s is on no router: a service's address is reached through the network's router (ovsnet router attach ROUTER %s, made with --nat=false)", s.Network, s.Network)
	case subnet.Contains(s.VIP.Addr()):
		return fmt.Errorf("service address %s is in network %s's subnet %s: give one outside it (its containers reach it through their router)", s.VIP.Addr(), s.Network, subnet)
	case slices.ContainsFunc(n.ports, func(p ovnnb.LogicalSwitchPort) bool { return slices.Contains(nb.Addrs(p), src) }):
		return fmt.Errorf("a container of network %s holds %s, where its services' health checks come from: detach it first", s.Network, src)
	}
	return nil
}

// ListServices lists ovsnet's services, by name, with the addresses each
// load balancer spreads over now.
func ListServices(ctx context.Context, endpoint string) ([]ServiceView, error) {
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	defer nbc.Close()
	lbs, err := nb.Services(ctx, nbc, "")
	if err != nil {
		return nil, err
	}
	out := []ServiceView{}
	for _, lb := range lbs {
		s, _, derr := intent.DecodeService("load balancer "+lb.Name, lb.ExternalIDs)
		v := ServiceView{Name: s.Name, Network: s.Network, VIP: lb.ExternalIDs[intent.KeyServiceVIP], Backends: []string{}, Serving: []string{}}
		for _, b := range s.Backends {
			v.Backends = append(v.Backends, b.String())
		}
		for _, bs := range lb.Vips {
			v.Serving = append(v.Serving, strings.Split(bs, ",")...)
		}
		if derr != nil {
			v.Errors = append(v.Errors, derr.Error())
		}
		if n, subnet, err := serviceNetwork(ctx, nbc, s.Network); err == nil {
			v.Missing = derive(s, n.ports, subnet).missing
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveService deletes service name: its load balancer, off every switch
// and router that has it, its health check, and its backends' ACLs.
func RemoveService(ctx context.Context, endpoint, name string) error {
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return err
	}
	defer nbc.Close()
	lbs, err := nb.Services(ctx, nbc, name)
	if err != nil {
		return err
	}
	if len(lbs) == 0 {
		return fmt.Errorf("no service %s (ovsnet service ls lists them)", name)
	}
	var ops []ovsdbops.Operation
	var nets []string
	for _, lb := range lbs {
		off, err := placeOps(ctx, nbc, lb.UUID, placement{})
		if err != nil {
			return err
		}
		del, err := nbc.Where(&ovnnb.LoadBalancer{UUID: lb.UUID}).Delete()
		if err != nil {
			return err
		}
		ops, nets = append(append(ops, off...), del...), append(nets, lb.ExternalIDs[intent.KeyOVNNetwork])
	}
	if err := nbc.Run(ctx, ops); err != nil {
		return err
	}
	for _, n := range nets { // its backends' ACLs go with it
		if _, err := nb.SyncIsolation(ctx, nbc, n); err != nil {
			return err
		}
	}
	return nil
}

// ChangeBackends adds (add) or removes backends of service name, guarded
// by its keys as read, and brings its load balancer to them. Adding one
// it has, or removing one it has not, is an error.
func ChangeBackends(ctx context.Context, endpoint, name string, add bool, backends []string) error {
	bs, err := parseBackends(backends)
	if err != nil {
		return err
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		return err
	}
	defer nbc.Close()
	return ovsdb.OnConflict(func() error {
		lbs, err := nb.Services(ctx, nbc, name)
		if err != nil || len(lbs) == 0 {
			return cmp.Or(err, fmt.Errorf("no service %s (ovsnet service ls lists them)", name))
		}
		s, _, err := intent.DecodeService("load balancer "+lbs[0].Name, lbs[0].ExternalIDs)
		if err != nil && add {
			return err
		}
		for _, b := range bs {
			has := slices.Contains(s.Backends, b)
			switch {
			case add && has:
				return fmt.Errorf("service %s has backend %s already", name, b)
			case add:
				s.Backends = append(s.Backends, b)
			case !has:
				return fmt.Errorf("service %s has no backend %s (it has %v)", name, b, s.Backends)
			default:
				s.Backends = slices.DeleteFunc(s.Backends, func(x intent.Backend) bool { return x == b })
			}
		}
		_, err = updateService(ctx, nbc, lbs[0], s, add)
		return err
	})
}

// notAttached says which backends of s are not attached to its network.
func notAttached(s intent.Service, missing []string) error {
	return fmt.Errorf("%s: not attached to network %s (ovsnet add-port %s INTERFACE CONTAINER --ip first)", strings.Join(missing, ", "), s.Network, s.Network)
}

// updateService brings load balancer lb to service s (its keys, vips and
// mappings), guarded by its keys as read; strict refuses backends that are
// not attached. changed: it wrote.
func updateService(ctx context.Context, nbc *ovsdb.Client, lb ovnnb.LoadBalancer, s intent.Service, strict bool) (changed bool, err error) {
	n, subnet, err := serviceNetwork(ctx, nbc, s.Network)
	if err != nil {
		return false, err
	}
	d := derive(s, n.ports, subnet)
	if strict && len(d.missing) > 0 {
		return false, notAttached(s, d.missing)
	}
	p, err := placeOf(ctx, nbc, s)
	if err != nil {
		return false, err
	}
	place, err := placeOps(ctx, nbc, lb.UUID, p)
	if err != nil {
		return false, err
	}
	ext := s.Encode()
	if maps.Equal(ext, lb.ExternalIDs) && maps.Equal(d.vips, lb.Vips) && maps.Equal(d.mappings, lb.IPPortMappings) && len(place) == 0 {
		return false, nil
	}
	zero := 0
	was := &ovnnb.LoadBalancer{UUID: lb.UUID, ExternalIDs: lb.ExternalIDs}
	wait, err := nbc.Where(was).Wait(ovsdbops.WaitConditionEqual, &zero, was, &was.ExternalIDs)
	if err != nil {
		return false, err
	}
	up := &ovnnb.LoadBalancer{UUID: lb.UUID, ExternalIDs: ext, Vips: d.vips, IPPortMappings: d.mappings}
	upd, err := nbc.Where(up).Update(up, &up.ExternalIDs, &up.Vips, &up.IPPortMappings)
	if err != nil {
		return false, err
	}
	if err := nbc.Run(ctx, append(append(wait, upd...), place...)); err != nil {
		return false, err
	}
	_, err = nb.SyncIsolation(ctx, nbc, s.Network) // the backends' ACLs follow the addresses
	return true, err
}

// syncServices brings the load balancers of the services on network net
// to its ports now (a backend detached, or attached again elsewhere). One
// whose keys do not decode spreads over nothing until they are mended.
func syncServices(ctx context.Context, nbc *ovsdb.Client, net string) (changed bool, err error) {
	lbs, err := nb.ServicesOn(ctx, nbc, net)
	if err != nil {
		return false, err
	}
	for _, lb := range lbs {
		var did bool
		err := ovsdb.OnConflict(func() (err error) { did, err = refreshService(ctx, nbc, lb.ExternalIDs[intent.KeyService]); return err })
		if err != nil {
			return changed, err
		}
		changed = changed || did
	}
	return changed, nil
}

// clearService takes every address off load balancer lb, a service whose
// keys do not decode.
func clearService(ctx context.Context, nbc *ovsdb.Client, lb ovnnb.LoadBalancer) (bool, error) {
	if len(lb.Vips) == 0 {
		return false, nil
	}
	up := &ovnnb.LoadBalancer{UUID: lb.UUID, Vips: map[string]string{}}
	ops, err := nbc.Where(up).Update(up, &up.Vips)
	if err != nil {
		return false, err
	}
	return true, nbc.Run(ctx, ops)
}

// refreshService reads service name and brings its load balancer to its
// network's ports, or to no address when its keys do not decode.
func refreshService(ctx context.Context, nbc *ovsdb.Client, name string) (bool, error) {
	lbs, err := nb.Services(ctx, nbc, name)
	if err != nil || len(lbs) == 0 {
		return false, err
	}
	s, ok, err := intent.DecodeService("load balancer "+lbs[0].Name, lbs[0].ExternalIDs)
	switch {
	case !ok:
		return false, nil
	case err != nil:
		return clearService(ctx, nbc, lbs[0])
	}
	return updateService(ctx, nbc, lbs[0], s, false)
}

// servicesOn names the services on network net, for a refusal.
func servicesOn(ctx context.Context, nbc *ovsdb.Client, net string) ([]string, error) {
	lbs, err := nb.ServicesOn(ctx, nbc, net)
	var names []string
	for _, lb := range lbs {
		names = append(names, lb.ExternalIDs[intent.KeyService])
	}
	sort.Strings(names)
	return names, err
}
