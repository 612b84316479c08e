package ovn

import (
	"context"
	"fmt"
	"sort"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Converged is what Converge did and found.
type Converged struct {
	Did, Notes []string
	Bad        []error
	// GatewaysGone: gateways were removed, whose NAT rules the caller
	// brings to the topology now without them.
	GatewaysGone bool
}

// Converge brings the northbound rows this chassis answers for to their
// intent: the port group and ACLs of every OVN network it has ports on
// (put back if edited by hand), and no logical port of its making that no
// local interface plugs (its row lost: removed by hand, a wiped OVSDB).
// local is this host's ovsnet interfaces on the integration bridge. The
// caller holds the host lock exclusively: no attach is between its logical
// port and its interface. An unreachable northbound database is a note:
// OVN keeps running on what it has.
func Converge(ctx context.Context, h *network.Host, local []vswitchd.Interface) (Converged, error) {
	var r Converged
	c, err := chassis(ctx, h)
	if err != nil || !c.Joined || c.NB == "" || c.SystemID == "" {
		return r, err
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, c.NB)
	if err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("OVN's northbound database %s unreachable, its rows not checked: %v", c.NB, err))
		return r, nil
	}
	defer nbc.Close()
	plugged, nets := map[string]bool{}, map[string]bool{}
	for _, i := range local {
		plugged[i.ExternalIDs[intent.KeyIfaceID]] = true
		if _, gw := i.ExternalIDs[intent.KeyOVNGateway]; !gw {
			nets[i.ExternalIDs[intent.KeyOVNNetwork]] = true
		}
	}
	did, err := dropIdleGateways(ctx, h, c.IntegrationBridge, local, nets)
	r.Did, r.GatewaysGone = append(r.Did, did...), len(did) > 0
	if err != nil {
		return r, err
	}
	mine, err := ovsdb.Select[ovnnb.LogicalSwitchPort](ctx, nbc, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{intent.KeyOVNChassis: c.SystemID})},
		"_uuid", "name", "external_ids")
	if err != nil {
		return r, err
	}
	stray := map[string][]string{}
	for _, p := range mine {
		if net := p.ExternalIDs[intent.KeyOVNNetwork]; intent.Owned(p.ExternalIDs) && !plugged[p.Name] && net != "" {
			stray[net] = append(stray[net], p.Name)
		}
	}
	for net, names := range stray {
		if err := nb.DropPorts(ctx, nbc, net, names); err != nil {
			return r, err
		}
		r.Did = append(r.Did, fmt.Sprintf("removed %d logical port(s) of OVN network %s that no interface here plugs", len(names), net))
		nets[net] = true
	}
	return r, r.syncNetworks(ctx, nbc, nets)
}

// syncNetworks syncs the isolation and services of networks nets, in
// name order.
func (r *Converged) syncNetworks(ctx context.Context, nbc *ovsdb.Client, nets map[string]bool) error {
	var names []string
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s, err := nb.SyncIsolation(ctx, nbc, n)
		if err != nil {
			return err
		}
		r.Bad = append(r.Bad, s.Bad...)
		if s.Changed {
			r.Did = append(r.Did, "brought OVN network "+n+"'s port group and ACLs to its intent")
		}
		changed, err := syncServices(ctx, nbc, n)
		if err != nil {
			return err
		}
		if changed {
			r.Did = append(r.Did, "brought the services of OVN network "+n+" to its containers' addresses")
		}
	}
	return nil
}

// dropIdleGateways removes this chassis' gateways on networks it has no
// container on any more (nets: those it has).
func dropIdleGateways(ctx context.Context, h *network.Host, bridge string, local []vswitchd.Interface, nets map[string]bool) ([]string, error) {
	var uuids, did []string
	for _, i := range local {
		net := i.ExternalIDs[intent.KeyOVNNetwork]
		if _, gw := i.ExternalIDs[intent.KeyOVNGateway]; !gw || nets[net] {
			continue
		}
		p, err := h.DB.PortOn(ctx, bridge, i.UUID)
		if err != nil || p == nil {
			return did, err
		}
		uuids, did = append(uuids, p.UUID), append(did, fmt.Sprintf("removed gateway %s of OVN network %s: no container here uses it", i.Name, net))
	}
	if len(uuids) == 0 {
		return nil, nil
	}
	_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.DeletePorts(bridge, uuids...) })
	return did, err
}
