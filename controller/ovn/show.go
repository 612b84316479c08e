package ovn

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/show"

	"github.com/ovsnet/ovsnet/controller/ovn/nb"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// networks is the OVN networks (all, or the one named only) of the
// northbound database this host joined, each with its containers on
// every chassis: this host's from their interfaces (local), the others'
// from their logical ports. Nothing when the host is not a chassis; an
// unreachable database is one entry saying so.
func networks(ctx context.Context, h *network.Host, only string, local map[string]network.PortView) ([]show.BridgeView, error) {
	c, err := chassis(ctx, h)
	if err != nil || !c.Joined || c.NB == "" {
		return nil, err
	}
	nbc, err := ovsdb.ConnectNorthbound(ctx, c.NB)
	if err != nil {
		return []show.BridgeView{{Name: "OVN " + c.NB, Datapath: show.DatapathOVN, Ports: []network.PortView{}, Errors: []string{err.Error()}}}, nil
	}
	defer nbc.Close()
	lss, err := ovsdb.Select[ovnnb.LogicalSwitch](ctx, nbc, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.Ownership(""))},
		"_uuid", "name", "external_ids", "ports")
	if err != nil {
		return nil, err
	}
	var out []show.BridgeView
	for _, ls := range lss {
		if only != "" && ls.Name != only {
			continue
		}
		ports, err := nb.SwitchPorts(ctx, nbc, ls)
		if err != nil {
			return nil, err
		}
		b := ovnBridge(ls, ports, local, c.SystemID)
		if err := routing(ctx, nbc, &b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// routing fills in network b's router, its gateway and b's services.
func routing(ctx context.Context, nbc *ovsdb.Client, b *show.BridgeView) error {
	lr, _, err := nb.RouterOf(ctx, nbc, b.Name)
	if err != nil || lr == nil {
		return err
	}
	b.Router = lr.Name
	gw, has, err := nb.RouterGatewayAddress(ctx, nbc, *lr)
	if err != nil {
		return err
	}
	if has {
		b.Egress = gw.Addr().String()
	}
	lbs, err := nb.ServicesOn(ctx, nbc, b.Name)
	for _, lb := range lbs {
		b.Services = append(b.Services, lb.ExternalIDs[intent.KeyService]+" "+lb.ExternalIDs[intent.KeyServiceVIP])
	}
	sort.Strings(b.Services)
	return err
}

// ovnBridge is OVN network ls as show reports it.
func ovnBridge(ls ovnnb.LogicalSwitch, ports []ovnnb.LogicalSwitchPort, local map[string]network.PortView, me string) show.BridgeView {
	bi := intent.DecodeBridge(ls.Name, ls.ExternalIDs)
	sb := show.BridgeView{Name: ls.Name, Datapath: show.DatapathOVN, Ovsnet: true, MTU: bi.MTU, ICC: bi.ICC, Ports: []network.PortView{}}
	if sb.MTU == 0 {
		sb.MTU = DefaultMTU
	}
	sb.Subnets, sb.Gateways, _ = bi.Strings()
	for _, e := range bi.Errs {
		sb.Errors = append(sb.Errors, e.Error())
	}
	bits := map[bool]int{true: 32, false: 128} // by Is4
	for _, s := range bi.Subnets {
		bits[s.Prefix.Addr().Is4()] = s.Prefix.Bits()
	}
	for _, lsp := range ports {
		if !nb.IsContainerPort(ls.Name, lsp) {
			continue
		}
		p, ok := local[lsp.Name]
		if !ok || lsp.ExternalIDs[intent.KeyOVNChassis] != me {
			p = remotePort(lsp, bits)
		}
		p.Bridge, p.Chassis = ls.Name, lsp.ExternalIDs[intent.KeyOVNChassis]
		if lsp.Up == nil || !*lsp.Up {
			p.State = "down (OVN has not bound it)"
		}
		sb.Ports = append(sb.Ports, p)
	}
	sb.Links = show.Links(bi.Links, sb.Ports)
	sort.Slice(sb.Ports, func(x, y int) bool {
		return fmt.Sprint(sb.Ports[x].Container, "\x00", sb.Ports[x].Iface) < fmt.Sprint(sb.Ports[y].Container, "\x00", sb.Ports[y].Iface)
	})
	return sb
}

// remotePort is a logical switch port of another chassis (or one this
// host has no interface for) as show reports it; bits are the subnets'
// lengths by family (Is4).
func remotePort(lsp ovnnb.LogicalSwitchPort, bits map[bool]int) network.PortView {
	p := network.PortView{Container: lsp.ExternalIDs[intent.KeyContainerID], Iface: lsp.ExternalIDs[intent.KeyContainerIface],
		Type: "remote", OVSPort: lsp.Name, State: "up"}
	for _, a := range nb.Addrs(lsp) {
		p.Addresses = append(p.Addresses, netip.PrefixFrom(a, bits[a.Is4()]).String())
	}
	if len(lsp.Addresses) > 0 {
		if f := strings.Fields(lsp.Addresses[0]); len(f) > 0 {
			p.MAC = f[0]
		}
	}
	return p
}
