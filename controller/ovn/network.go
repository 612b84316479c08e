package ovn

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"

	"github.com/ovn-org/libovsdb/model"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// An OVN network is a Logical_Switch in the northbound database, one for
// every host: OVN's own IPAM hands out its addresses (other_config:subnet,
// the gateway excluded), so hosts need no ranges of their own.

// Network is an OVN network as `ovsnet network` reports it.
type Network struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`
	Subnet6 string `json:"subnet6,omitempty"`
	Gateway string `json:"gateway"`
	Ports   int    `json:"ports"`
	ICC     bool   `json:"icc"`
	NAT     bool   `json:"nat"`
	NB      string `json:"northbound"`
}

// NetworkOptions are `ovsnet network create`'s.
type NetworkOptions struct {
	Name, NB string
	Subnet   string // IPv4 CIDR
	Subnet6  string // IPv6 CIDR, optional
	Gateway  string // default: the subnet's first host
	ICC      bool   // containers reach each other without links
	NAT      bool   // containers reach the outside, masqueraded by their hosts, and may publish ports
}

// NB is the northbound database to use: nb, or the one `ovn join --nb`
// recorded on this host.
func NB(ctx context.Context, h *network.Host, nb string) (string, error) {
	if nb != "" {
		return nb, nil
	}
	c, err := chassis(ctx, h)
	if err != nil || c.NB != "" {
		return c.NB, err
	}
	return "", fmt.Errorf("no northbound database: give --ovn tcp:CENTRAL:6641, or record one with ovsnet ovn join --nb")
}

// SB is the southbound database this host joined.
func SB(ctx context.Context, h *network.Host) (string, error) {
	c, err := chassis(ctx, h)
	if err != nil || c.Remote != "" {
		return c.Remote, err
	}
	return "", fmt.Errorf("no southbound database: give --sb tcp:CENTRAL:6642, or run this on a chassis (ovsnet ovn join)")
}

// switchOf is the network's Logical_Switch settings: OVN's IPAM keys and
// ovsnet's intent (the bridge codec's subnet, gateway, icc and nat keys);
// subs is the IPv4 subnet, then the IPv6 one if any.
func switchOf(name string, subs []ipam.Subnet, icc, nat bool) *ovnnb.LogicalSwitch {
	ext := intent.Settings{Subnets: subs, ICC: &icc, NAT: &nat}.Encode()
	for k, v := range intent.Ownership("") {
		ext[k] = v
	}
	// OVN's IPAM keys for IPv4 (what ovn-nbctl shows); IPv6 is ovsnet's
	// alone (OVN's ipv6_prefix wants a /64 and hands out EUI-64 addresses).
	oc := map[string]string{"subnet": subs[0].Prefix.String(), "exclude_ips": subs[0].Gateway.String()}
	return &ovnnb.LogicalSwitch{Name: name, ExternalIDs: ext, OtherConfig: oc}
}

// CreateNetwork makes the network's Logical_Switch; one of that name with
// the same subnet is left as it is (created false), one with another, or
// not ovsnet's, is an error.
func CreateNetwork(ctx context.Context, o NetworkOptions) (created bool, err error) {
	if err := attach.CheckName("network", o.Name); err != nil {
		return false, err
	}
	var gws []string
	if o.Gateway != "" {
		gws = []string{o.Gateway}
	}
	given := []string{o.Subnet}
	if o.Subnet6 != "" {
		given = append(given, o.Subnet6)
	}
	if p, err := netip.ParsePrefix(o.Subnet); err != nil || !p.Addr().Is4() {
		return false, fmt.Errorf("--subnet %s: OVN networks take an IPv4 subnet (and --subnet6 an IPv6 one)", o.Subnet)
	}
	if p, err := netip.ParsePrefix(o.Subnet6); o.Subnet6 != "" && (err != nil || !p.Addr().Is6()) {
		return false, fmt.Errorf("--subnet6 %s is not an IPv6 subnet", o.Subnet6)
	}
	subs, err := ipam.ParseSubnets(given, gws)
	if err != nil {
		return false, err
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, o.NB)
	if err != nil {
		return false, err
	}
	defer nbc.Close()
	want := switchOf(o.Name, subs, o.ICC, o.NAT)
	have, err := nb.LogicalSwitches(ctx, nbc, o.Name)
	if err != nil {
		return false, err
	}
	if len(have) > 0 {
		ls := have[0]
		if !intent.Owned(ls.ExternalIDs) {
			return false, fmt.Errorf("logical switch %s exists and is not ovsnet's: choose another name", o.Name)
		}
		if ls.OtherConfig["subnet"] != want.OtherConfig["subnet"] || ls.OtherConfig["exclude_ips"] != want.OtherConfig["exclude_ips"] ||
			ls.ExternalIDs[intent.KeySubnet] != want.ExternalIDs[intent.KeySubnet] {
			return false, fmt.Errorf("network %s exists with subnet %s (gateway %s), asked %s (gateway %s): remove it first (ovsnet network rm %s)",
				o.Name, ls.ExternalIDs[intent.KeySubnet], ls.OtherConfig["exclude_ips"], want.ExternalIDs[intent.KeySubnet], want.OtherConfig["exclude_ips"], o.Name)
		}
		if bi := intent.DecodeBridge(o.Name, ls.ExternalIDs); bi.ICC != o.ICC || bi.NAT != o.NAT {
			return false, fmt.Errorf("network %s exists with --icc=%v --nat=%v: remove it first (ovsnet network rm %s)", o.Name, bi.ICC, bi.NAT, o.Name)
		}
		_, err := nb.SyncIsolation(ctx, nbc, o.Name) // finishes a create cut short
		return false, err
	}
	// The switch, its port group, and with NAT the gateway every chassis
	// binds (a localport on the switch), in one transaction.
	rows := []model.Model{nb.NewPortGroup(o.Name, nil)}
	if o.NAT {
		var gws []netip.Addr
		for _, s := range subs {
			gws = append(gws, s.Gateway)
		}
		gw := nb.NewGatewayPort(o.Name, gws)
		want.Ports, rows = []string{gw.UUID}, append(rows, gw)
	}
	ops, err := nbc.Create(append(rows, want)...)
	if err != nil {
		return false, err
	}
	if err := nbc.Run(ctx, ops); err != nil {
		return false, err
	}
	_, err = nb.SyncIsolation(ctx, nbc, o.Name)
	return true, err
}

// ListNetworks lists ovsnet's OVN networks, by name.
func ListNetworks(ctx context.Context, nbEndpoint string) ([]Network, error) {
	nbc, err := ovsdb.ConnectNorthbound(ctx, nbEndpoint)
	if err != nil {
		return nil, err
	}
	defer nbc.Close()
	lss, err := ovsdb.Select[ovnnb.LogicalSwitch](ctx, nbc, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.Ownership(""))},
		"_uuid", "name", "external_ids", "other_config", "ports")
	if err != nil {
		return nil, err
	}
	out := []Network{}
	for _, ls := range lss {
		n, err := nb.ContainerPortCount(ctx, nbc, ls)
		if err != nil {
			return nil, err
		}
		out = append(out, Network{Name: ls.Name, Subnet: ls.OtherConfig["subnet"], Subnet6: subnet6(ls), Gateway: ls.OtherConfig["exclude_ips"], Ports: n,
			ICC: intent.DecodeBridge(ls.Name, ls.ExternalIDs).ICC, NAT: intent.DecodeBridge(ls.Name, ls.ExternalIDs).NAT, NB: nbEndpoint})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveNetwork deletes the network's Logical_Switch; one with ports is
// refused (detach its containers first), one that is not ovsnet's too.
func RemoveNetwork(ctx context.Context, nbEndpoint, name string) error {
	nbc, err := ovsdb.ConnectNorthbound(ctx, nbEndpoint)
	if err != nil {
		return err
	}
	defer nbc.Close()
	have, err := nb.LogicalSwitches(ctx, nbc, name)
	if err != nil {
		return err
	}
	var ops []ovsdbops.Operation
	for _, ls := range have {
		switch {
		case !intent.Owned(ls.ExternalIDs):
			return fmt.Errorf("logical switch %s is not ovsnet's: remove it with ovn-nbctl ls-del", name)
		case len(ls.Ports) > 0:
			ps, err := nb.SwitchPorts(ctx, nbc, ls)
			if err != nil {
				return err
			}
			if n := len(slices.DeleteFunc(slices.Clone(ps), func(p ovnnb.LogicalSwitchPort) bool { return !nb.IsContainerPort(name, p) })); n > 0 {
				return fmt.Errorf("network %s still has %d port(s): detach its containers first", name, n)
			}
			if svcs, err := servicesOn(ctx, nbc, name); err != nil || len(svcs) > 0 {
				return cmp.Or(err, fmt.Errorf("network %s has services (%s): remove them first (ovsnet service rm NAME)", name, strings.Join(svcs, ", ")))
			}
			if slices.ContainsFunc(ps, nb.IsRouterPort) {
				r, err := routerName(ctx, nbc, name)
				if err != nil {
					return err
				}
				return fmt.Errorf("network %s is on router %s: take it off first (ovsnet router detach %s %s)", name, r, r, name)
			}
		}
		sw := &ovnnb.LogicalSwitch{UUID: ls.UUID}
		del, err := nbc.Where(sw).Delete()
		if err != nil {
			return err
		}
		ops = append(ops, del...)
	}
	if len(ops) == 0 {
		return fmt.Errorf("no OVN network %s at %s (ovsnet network ls lists them)", name, nbEndpoint)
	}
	// Its port group, and with it its ACLs.
	pgs, err := ovsdb.Select[ovnnb.PortGroup](ctx, nbc, []ovsdbops.Condition{ovsdb.NameIs(nb.PortGroupName(name))}, "_uuid")
	if err != nil {
		return err
	}
	for _, g := range pgs {
		del, err := nbc.Where(&ovnnb.PortGroup{UUID: g.UUID}).Delete()
		if err != nil {
			return err
		}
		ops = append(ops, del...)
	}
	return nbc.Run(ctx, ops)
}

// subnet6 is the network's IPv6 subnet, or "".
func subnet6(ls ovnnb.LogicalSwitch) string {
	for _, s := range intent.DecodeBridge(ls.Name, ls.ExternalIDs).Subnets {
		if s.Prefix.Addr().Is6() {
			return s.Prefix.String()
		}
	}
	return ""
}

// peerList says which networks share a router, for an error.
func peerList(peers []string) string {
	if len(peers) == 0 {
		return ""
	}
	return " (with " + strings.Join(peers, ", ") + ")"
}
