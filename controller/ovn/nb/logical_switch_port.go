package nb

import (
	"context"
	"net/netip"
	"strings"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// DropPorts removes ports (by name) from OVN network network's
// logical switch; ports already gone are fine.
func DropPorts(ctx context.Context, nb *ovsdb.Client, network string, names []string) error {
	var uuids []string
	for _, n := range names {
		ps, err := ovsdb.Select[ovnnb.LogicalSwitchPort](ctx, nb, []ovsdbops.Condition{ovsdb.NameIs(n)}, "_uuid")
		if err != nil {
			return err
		}
		for _, p := range ps {
			uuids = append(uuids, p.UUID)
		}
	}
	if len(uuids) == 0 {
		return nil
	}
	lss, err := LogicalSwitches(ctx, nb, network)
	if err != nil {
		return err
	}
	var ops []ovsdbops.Operation
	for _, l := range lss {
		ls := &ovnnb.LogicalSwitch{UUID: l.UUID}
		mut, err := nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdbops.MutateOperationDelete, Value: uuids})
		if err != nil {
			return err
		}
		ops = append(ops, mut...)
	}
	return nb.Run(ctx, ops)
}

// Addrs are the IP addresses in a logical switch port's addresses.
func Addrs(p ovnnb.LogicalSwitchPort) []netip.Addr {
	var out []netip.Addr
	for _, ad := range p.Addresses {
		for _, f := range strings.Fields(ad)[1:] {
			if x, err := netip.ParseAddr(f); err == nil {
				out = append(out, x)
			}
		}
	}
	return out
}

// SwitchPorts reads the logical switch ports of ls (ports do not name
// their switch: one read of them all, kept to the switch's).
func SwitchPorts(ctx context.Context, nb *ovsdb.Client, ls ovnnb.LogicalSwitch) ([]ovnnb.LogicalSwitchPort, error) {
	ps, err := allPorts(ctx, nb)
	if err != nil {
		return nil, err
	}
	return portsOf(ps, ls), nil
}

// allPorts reads every logical switch port, with what ovsnet reads of one.
func allPorts(ctx context.Context, nb *ovsdb.Client) ([]ovnnb.LogicalSwitchPort, error) {
	return ovsdb.Select[ovnnb.LogicalSwitchPort](ctx, nb, nil, "_uuid", "name", "type", "addresses", "external_ids", "up")
}

// portsOf keeps the ports of switch ls among ps (a new slice).
func portsOf(ps []ovnnb.LogicalSwitchPort, ls ovnnb.LogicalSwitch) []ovnnb.LogicalSwitchPort {
	mine := map[string]bool{}
	for _, u := range ls.Ports {
		mine[u] = true
	}
	var out []ovnnb.LogicalSwitchPort
	for _, p := range ps {
		if mine[p.UUID] {
			out = append(out, p)
		}
	}
	return out
}

// GatewayPortName is OVN network name's localport.
func GatewayPortName(name string) string { return "ovsnet-gw-" + name }

// NewGatewayPort is OVN network name's localport, with the gateway's MAC
// and addresses (IPv4 first).
func NewGatewayPort(name string, gws []netip.Addr) *ovnnb.LogicalSwitchPort {
	ext := intent.Ownership("")
	ext[intent.KeyOVNNetwork] = name
	addr := ipam.MACFor([]netip.Prefix{netip.PrefixFrom(gws[0], 32)}).String()
	for _, g := range gws {
		addr += " " + g.String()
	}
	return &ovnnb.LogicalSwitchPort{UUID: "ovsnet_gw", Name: GatewayPortName(name), Type: "localport", Addresses: []string{addr}, ExternalIDs: ext}
}

// ContainerPortCount is how many of switch ls's ports are containers'
// (its gateway and its port to a router are not).
func ContainerPortCount(ctx context.Context, nb *ovsdb.Client, ls ovnnb.LogicalSwitch) (int, error) {
	ps, err := SwitchPorts(ctx, nb, ls)
	n := 0
	for _, p := range ps {
		if IsContainerPort(ls.Name, p) {
			n++
		}
	}
	return n, err
}

// IsContainerPort says whether p, a port of network name's switch, is a
// container's: not the gateway, not the port to a router.
func IsContainerPort(name string, p ovnnb.LogicalSwitchPort) bool {
	return p.Name != GatewayPortName(name) && !IsRouterPort(p)
}
