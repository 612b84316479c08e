package ovn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/trace"

	"github.com/ovsnet/ovsnet/controller/ovn/nb"
	"github.com/ovsnet/ovsnet/nat"

	"github.com/ovn-org/libovsdb/model"
	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Attaching to an OVN network: the same engine, another allocator. The
// network is a logical switch in OVN's northbound database; each port is
// a logical switch port there (its address and MAC as `addresses` and
// `port_security`, so OVN drops what the container sends from any other)
// and an OVS port on the chassis' integration bridge whose iface-id names
// it; ovn-controller binds the two and programs every flow, so the engine
// waits for OVN to report the port up instead of installing flows.

// DefaultMTU is an OVN network's containers' MTU unless the network
// says otherwise: a 1,500-byte underlay less Geneve's overhead with room
// for its options.
const DefaultMTU = 1400

// ovnNetwork is an OVN network: a logical switch in the northbound
// database, its ports on this chassis' integration bridge.
type ovnNetwork struct {
	h       *network.Host
	nb      *ovsdb.Client
	chassis intent.Chassis // this host's, as ovnNetwork read it
	name    string
	subs    []ipam.Subnet // IPv4, and IPv6 if the network has it
	mtu     int
	ls      ovnnb.LogicalSwitch
	pg      *ovnnb.PortGroup // nil: the commit makes it
	nat     bool             // masquerade the network's traffic leaving a host

	hasGW, gwHere, gwAdded bool // the network's localport; this chassis' gateway; added by this attach
}

// openNetwork is the OVN network name if this host is a chassis ovsnet
// joined with a northbound database that has an ovsnet network so named,
// else nil (and no error: Network reports the missing network). It holds
// its connection to the northbound database until closed: one per
// operation.
func openNetwork(ctx context.Context, h *network.Host, name string) (*ovnNetwork, error) {
	c, err := chassis(ctx, h)
	if err != nil || !c.Joined || c.NB == "" {
		return nil, err
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, c.NB)
	if err != nil {
		return nil, err
	}
	a := &ovnNetwork{h: h, nb: nbc, chassis: c, name: name}
	if err := a.read(ctx); err != nil || a.ls.UUID == "" {
		nbc.Close()
		return nil, err
	}
	return a, nil
}

// read reads the network's logical switch and its settings.
func (a *ovnNetwork) read(ctx context.Context) error {
	lss, err := nb.LogicalSwitches(ctx, a.nb, a.name)
	if err != nil || len(lss) == 0 || !intent.Owned(lss[0].ExternalIDs) {
		return err
	}
	a.ls = lss[0]
	if a.pg, err = nb.PortGroup(ctx, a.nb, a.name); err != nil {
		return err
	}
	bi := intent.DecodeBridge(a.name, a.ls.ExternalIDs)
	if bi.SubnetsErr != nil || len(bi.Subnets) == 0 || len(bi.Subnets) > 2 || !bi.Subnets[0].Prefix.Addr().Is4() {
		return fmt.Errorf("OVN network %s: its subnets do not decode as an IPv4 one and at most an IPv6 one (%v): recreate it", a.name, bi.SubnetsErr)
	}
	a.subs, a.mtu, a.nat = bi.Subnets, bi.MTU, bi.NAT
	if a.mtu == 0 {
		a.mtu = DefaultMTU
	}
	return nil
}

// Start: OVN's flows are ovn-controller's, nothing to prepare.
func (a *ovnNetwork) Start(*network.AttachRun) {}

// Ensure: an OVN network is made once, in the northbound database (ovsnet
// network create), never by an attach.
func (a *ovnNetwork) Ensure(context.Context, network.BridgeOptions) error { return nil }

// Check makes the run's bridge the integration bridge and refuses what
// OVN networks do not take yet.
func (a *ovnNetwork) Check(ctx context.Context, r *network.AttachRun) error {
	c := a.chassis
	br, err := r.Host().DB.GetBridge(ctx, c.IntegrationBridge)
	if err == nil && br == nil {
		err = fmt.Errorf("no integration bridge %s: is ovn-controller running? (ovsnet ovn status)", c.IntegrationBridge)
	}
	if err != nil {
		return err
	}
	if err := a.readGateway(ctx, r.Host().DB); err != nil {
		return err
	}
	if err := r.UsePorts(br, a.subs, a.mtu, a.gatewayNAT()); err != nil {
		return err
	}
	for _, it := range r.Items() {
		o := it.Options()
		switch {
		case !it.AnyAddress():
			return fmt.Errorf("OVN network %s hands out addresses itself: use --ip without a value", a.name)
		case len(o.Publish) > 0 && !(a.hasGW && a.nat):
			return fmt.Errorf("OVN network %s was made with --nat=false: its containers are reachable directly, nothing to publish", a.name)
		case o.VLAN != 0:
			return fmt.Errorf("OVN network %s is one broadcast domain across chassis, with no VLANs: use another network", a.name)
		}
		// Unique in the northbound database: containers of the same
		// name on two chassis are two ports.
		it.SetHostName(attach.HostName(a.name+"@"+c.SystemID, o.Container, o.Iface))
	}
	return nil
}

// Allocate takes the lowest free addresses of the network and makes the
// items' logical switch ports, guarded by the switch's ports as read: a
// chassis that got in first makes this one read again.
func (a *ovnNetwork) Allocate(ctx context.Context, r *network.AttachRun, _ bool) (map[string]string, error) {
	for attempt := 0; ; attempt++ {
		used, err := a.used(ctx)
		if err != nil {
			return nil, err
		}
		routed, err := a.routed(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range r.Items() {
			// OVS 3.1's userspace Geneve cannot encapsulate offloaded
			// packets: the container computes its own checksums.
			l := network.Logical{Network: a.name, NoTxOffload: r.Datapath() == datapath.Netdev}
			for _, s := range a.subs {
				p, err := ipam.Allocate(s, used)
				if err != nil {
					return nil, err
				}
				used[p.Addr()], l.Addrs = it.HostName(), append(l.Addrs, p)
				if a.hasGW || routed { // the default routes: out through this host, or to the router
					l.Gateways = append(l.Gateways, s.Gateway)
				}
			}
			r.Assign(it, l)
		}
		err = a.commit(ctx, r)
		if !errors.Is(err, ovsdb.ErrConflict) || attempt >= ovsdb.MaxAttempts {
			return nil, err
		}
		if err := a.read(ctx); err != nil {
			return nil, err
		}
	}
}

// routed says whether the network is on a router (its switch, as read,
// has the port to one): the commit is guarded by the switch's ports, so a
// router attached meanwhile makes the attach read again.
func (a *ovnNetwork) routed(ctx context.Context) (bool, error) {
	ps, err := ovsdb.Select[ovnnb.LogicalSwitchPort](ctx, a.nb, []ovsdbops.Condition{ovsdb.NameIs(nb.RouterSwitchPortName(a.name))}, "_uuid")
	return err == nil && len(ps) > 0 && slices.Contains(a.ls.Ports, ps[0].UUID), err
}

// used is the addresses the network's ports hold, and its gateway: one
// read of the logical switch ports (they do not name their switch), kept
// to the switch's.
func (a *ovnNetwork) used(ctx context.Context) (map[netip.Addr]string, error) {
	used := map[netip.Addr]string{nb.HealthCheckSource(a.subs[0].Prefix): "services' health checks"}
	for _, s := range a.subs {
		used[s.Gateway] = "the gateway"
	}
	ps, err := nb.SwitchPorts(ctx, a.nb, a.ls)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		for _, x := range nb.Addrs(p) {
			used[x] = p.Name
		}
	}
	return used, nil
}

// commit makes the items' logical switch ports in one transaction that
// waits for the switch's ports to be as read, and puts them in the
// network's port group: isolated (icc=false) from their first packet.
func (a *ovnNetwork) commit(ctx context.Context, r *network.AttachRun) error {
	var ops []ovsdbops.Operation
	var ids []string
	for i, it := range r.Items() {
		addr := it.MAC().String()
		for _, p := range it.Addrs() {
			addr += " " + p.Addr().String()
		}
		lsp := &ovnnb.LogicalSwitchPort{UUID: "ovsnet_lsp" + strconv.Itoa(i), Name: it.HostName(), Addresses: []string{addr}, PortSecurity: []string{addr},
			ExternalIDs: map[string]string{intent.KeyOwner: intent.OwnerOvsnet, intent.KeyContainerID: it.Options().Container, intent.KeyContainerIface: it.Options().Iface,
				intent.KeyOVNNetwork: a.name, intent.KeyOVNChassis: a.chassis.SystemID}}
		op, err := a.nb.Create(lsp)
		if err != nil {
			return err
		}
		ops, ids = append(ops, op...), append(ids, lsp.UUID)
	}
	ls := &ovnnb.LogicalSwitch{UUID: a.ls.UUID, Ports: a.ls.Ports}
	zero := 0
	wait, err := a.nb.Where(ls).Wait(ovsdbops.WaitConditionEqual, &zero, ls, &ls.Ports)
	if err != nil {
		return err
	}
	mut, err := a.nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdbops.MutateOperationInsert, Value: ids})
	if err != nil {
		return err
	}
	group, err := a.joinGroup(ids)
	if err != nil {
		return err
	}
	return a.nb.Run(ctx, append(append(append(wait, ops...), mut...), group...))
}

// joinGroup puts ports ids in the network's port group, making the group
// if the network has none (a second maker loses on its unique name).
func (a *ovnNetwork) joinGroup(ids []string) ([]ovsdbops.Operation, error) {
	if a.pg == nil {
		return a.nb.Create(nb.NewPortGroup(a.name, ids))
	}
	pg := &ovnnb.PortGroup{UUID: a.pg.UUID}
	return a.nb.Where(pg).Mutate(pg, model.Mutation{Field: &pg.Ports, Mutator: ovsdbops.MutateOperationInsert, Value: ids})
}

func (a *ovnNetwork) Name() string   { return a.name }
func (a *ovnNetwork) Bridge() string { return a.chassis.IntegrationBridge }
func (a *ovnNetwork) Close()         { a.nb.Close() }

// Allocator: the network allocates from its logical switch, for one port
// or many.
func (a *ovnNetwork) Allocator(int, bool) network.Allocator { return a }

// Holds: the network's ports on the integration bridge say so.
func (a *ovnNetwork) Holds(ifc vswitchd.Interface) bool {
	return ifc.ExternalIDs[intent.KeyOVNNetwork] == a.name
}

func (a *ovnNetwork) Trace(ctx context.Context, o trace.Options) (*trace.Result, error) {
	return traceNetwork(ctx, a.h, a, o)
}

func (a *ovnNetwork) NATBridge(ctx context.Context) (nat.Bridge, bool, error) {
	return gatewayNATOf(ctx, a.h, a.name)
}

func (a *ovnNetwork) Refuse(what network.Setting) error {
	switch what {
	case network.SettingVLAN:
		return fmt.Errorf("%s is an OVN network: it is one broadcast domain across chassis, with no VLANs; put containers that must not meet on another network (ovsnet network create) or isolate them (--icc=false)", a.name)
	case network.SettingFloodLimit:
		return fmt.Errorf("%s is an OVN network: its flows are ovn-controller's, and ovsnet bounds no floods there", a.name)
	case network.SettingDefaultRate:
		return fmt.Errorf("%s is an OVN network: it keeps no per-host defaults; cap its containers one by one (add-port --rate, ovsnet qos %s CONTAINER)", a.name, a.name)
	case network.SettingDropMarks:
		return fmt.Errorf("%s is an OVN network: what its logical flows drop is in a capture unmarked (ovsnet trace %s says why one is dropped)", a.name, a.name)
	}
	return nil
}

// Guard: the allocation's guard was the switch's, in its own database;
// the rows' transaction also adds this chassis' gateway if it has none.
func (a *ovnNetwork) Guard(tx *ovsdb.Tx, r *network.AttachRun, _ map[string]string) {
	a.addGateway(tx, r.Bridge())
}

// Plug waits until OVN reports every item's logical switch port up:
// ovn-controller bound it to this chassis and programmed its flows.
func (a *ovnNetwork) Plug(ctx context.Context, r *network.AttachRun) error {
	// The links naming the new ports' containers: their ACLs now; the
	// services naming them: their addresses.
	if _, err := nb.SyncIsolation(ctx, a.nb, a.name); err != nil {
		return err
	}
	if _, err := syncServices(ctx, a.nb, a.name); err != nil {
		return err
	}
	if err := bringUpGateway(ctx, r.Host(), a); err != nil {
		return err
	}
	ms := int(network.LinkTimeout.Milliseconds())
	var ops []ovsdbops.Operation
	for _, it := range r.Items() {
		ops = append(ops, ovsdbops.Operation{Op: ovsdbops.OperationWait, Table: ovnnb.LogicalSwitchPortTable, Where: []ovsdbops.Condition{ovsdb.NameIs(it.HostName())},
			Columns: []string{"up"}, Until: string(ovsdbops.WaitConditionEqual), Rows: []ovsdbops.Row{{"up": true}}, Timeout: &ms})
	}
	if err := a.nb.Run(ctx, ops); err != nil {
		if errors.Is(err, ovsdb.ErrConflict) {
			return fmt.Errorf("OVN did not report the port(s) up within %s: is ovn-controller running and its chassis in the southbound database? (ovsnet ovn status)", network.LinkTimeout)
		}
		return err
	}
	return nil
}

// Undo removes the items' logical switch ports.
func (a *ovnNetwork) Undo(ctx context.Context, r *network.AttachRun) error {
	var names []string
	for _, it := range r.Items() {
		names = append(names, it.HostName())
	}
	return nb.DropPorts(ctx, a.nb, a.name, names)
}

// detach removes the logical switch ports of the OVN ports among
// ifs (their rows on the integration bridge say which): the part of a
// detach that is OVN's.
func detach(ctx context.Context, h *network.Host, ifs []vswitchd.Interface) error {
	byNet := map[string][]string{}
	for _, i := range ifs {
		if network.IsLogical(i) {
			net := i.ExternalIDs[intent.KeyOVNNetwork]
			byNet[net] = append(byNet[net], i.ExternalIDs[intent.KeyIfaceID])
		}
	}
	if len(byNet) == 0 {
		return nil
	}
	c, err := chassis(ctx, h)
	if err != nil {
		return err
	}
	if c.NB == "" {
		return fmt.Errorf("the logical switch ports of OVN ports stay: no northbound database recorded (ovsnet ovn join --nb)")
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, c.NB)
	if err != nil {
		return err
	}
	defer nbc.Close()
	var errs []error
	for net, names := range byNet {
		// Then no link's ACL names the ports' addresses, which another
		// port may hold next.
		if err := nb.DropPorts(ctx, nbc, net, names); err != nil {
			errs = append(errs, err)
			continue
		}
		_, err := nb.SyncIsolation(ctx, nbc, net)
		_, serr := syncServices(ctx, nbc, net)
		errs = append(errs, err, serr)
	}
	return errors.Join(errs...)
}
