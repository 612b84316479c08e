// Package show reads what `show` reports: each bridge (or OVN network)
// with its settings, containers, warm pool, links and tunnels, and the
// state of each device as the kernel sees it. It reads and never changes;
// package view draws what it returns.
package show

import (
	"cmp"
	"context"
	"sort"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/dockernet"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Networks are the networks that are not this host's bridges (OVN's,
// ovn.Backend), as show reports them.
type Networks interface {
	// Show is the networks (all, or the one named only), with this
	// host's ports among them as local has them, by logical port.
	Show(ctx context.Context, h *network.Host, only string, local map[string]network.PortView) ([]BridgeView, error)
}

// Read returns the bridges (all, or the one named) with their containers,
// and the networks of others (nil: none).
func Read(ctx context.Context, h *network.Host, only string, others Networks) ([]BridgeView, error) {
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return nil, err
	}
	out := []BridgeView{}
	local := map[string]network.PortView{} // this host's OVN ports, by logical port
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if only != "" && b.Name != only {
			continue
		}
		bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
		sb := BridgeView{Name: b.Name, Datapath: datapath.Of(b), Ovsnet: bi.Owned, MTU: bi.MTU, ICC: bi.ICC, NAT: bi.NAT,
			Ports: []network.PortView{}, Tunnels: bi.Tunnels}
		sb.Subnets, sb.Gateways, sb.IPRanges = bi.Strings()
		sb.RateLimit = bi.Rate.String()
		if d := bi.Docker; d.ID != "" {
			sb.Docker = &Docker{ID: d.ID, Name: d.Name, VLAN: d.VLAN, Internal: d.Internal}
		}
		if bi.SubnetsErr != nil {
			sb.Subnets, sb.Gateways, sb.IPRanges = intent.StoredSubnets(b.ExternalIDs)
		}
		if bi.Underlay != nil {
			sb.UnderlayOf = bi.Underlay.Dev
		}
		if b.Name == intent.UplinkBridge {
			if sb.UplinkOf, err = uplinkOf(ctx, h); err != nil {
				return nil, err
			}
		}
		for _, e := range bi.Errs {
			sb.Errors = append(sb.Errors, e.Error())
		}
		ifs, ports := topo.BridgeInterfaces(b)
		ifs, ports = ovnLocal(b.Name, ifs, ports, local)
		addInterfaces(&sb, ifs, ports)
		sb.Links = Links(bi.Links, sb.Ports)
		sb.Mirrors = bi.Mirrors
		sort.Slice(sb.Ports, func(x, y int) bool {
			if sb.Ports[x].Container != sb.Ports[y].Container {
				return sb.Ports[x].Container < sb.Ports[y].Container
			}
			return sb.Ports[x].Iface < sb.Ports[y].Iface
		})
		sort.Strings(sb.OtherPorts)
		sort.Slice(sb.Pool, func(x, y int) bool { return sb.Pool[x].OVSPort < sb.Pool[y].OVSPort })
		out = append(out, sb)
	}
	var ovn []BridgeView
	if others != nil {
		if ovn, err = others.Show(ctx, h, only, local); err != nil {
			return nil, err
		}
	}
	if out = append(out, ovn...); only != "" && len(out) == 0 {
		// A Docker network's name: its bridge or OVN network.
		if alias, err := dockernet.Lookup(ctx, h.DB, only); err != nil || alias != "" && alias != only {
			if err != nil {
				return nil, err
			}
			return Read(ctx, h, alias, others)
		}
		return nil, network.NoBridge(only)
	}
	sort.Slice(out, func(x, y int) bool { return out[x].Name < out[y].Name })
	return out, nil
}

// addInterfaces sorts a bridge's interfaces into its containers, its
// warm pool, its tunnels' states and its other ports.
func addInterfaces(sb *BridgeView, ifs []vswitchd.Interface, ports []vswitchd.Port) {
	state := map[string]string{}
	for _, ifc := range ifs {
		state[ifc.Name] = mesh.IfaceState(ifc)
	}
	for k := range sb.Tunnels {
		sb.Tunnels[k].State = cmp.Or(state[sb.Tunnels[k].Port], "missing")
	}
	for j, ifc := range ifs {
		ref := intent.RefOf(ifc.ExternalIDs)
		switch {
		case intent.IsTunnelPort(ifc.ExternalIDs):
		case ref.Owned && ref.Pooled:
			p := network.ShownPort(sb.Name, ifc, ports[j])
			p.State = pooledState(ifc)
			sb.Pool = append(sb.Pool, p)
		case ref.Container == "" && ifc.Name != sb.Name:
			sb.OtherPorts = append(sb.OtherPorts, ifc.Name)
		case ref.Container != "":
			sb.Ports = append(sb.Ports, network.ShownPort(sb.Name, ifc, ports[j]))
		}
	}
}

// pooledState is the state of a pool's port's waiting end, in the host or
// a runtime's namespace ("down" until taken), or "missing".
func pooledState(i vswitchd.Interface) string {
	dev := i.Name
	if i.Type == "" {
		dev = attach.PoolPeer(i.Name)
	}
	st, err := attach.HostLinkState(dev)
	if ns := i.ExternalIDs[intent.KeyPoolNetns]; ns != "" {
		st, err = attach.LinkState(ns, dev)
	}
	if err != nil {
		return "missing"
	}
	return st
}

// ovnLocal splits this host's OVN ports off a bridge's interfaces: they
// are shown with their networks, by logical port name.
func ovnLocal(bridge string, ifs []vswitchd.Interface, ports []vswitchd.Port, local map[string]network.PortView) ([]vswitchd.Interface, []vswitchd.Port) {
	var keepI []vswitchd.Interface
	var keepP []vswitchd.Port
	for j, i := range ifs {
		if network.IsLogical(i) {
			local[i.ExternalIDs[intent.KeyIfaceID]] = network.ShownPort(bridge, i, ports[j])
			continue
		}
		keepI, keepP = append(keepI, i), append(keepP, ports[j])
	}
	return keepI, keepP
}

// Links are a network's links as show reports them, each end that no
// port of ports answers to (LinkEnds) marked dangling: for a bridge and,
// through package ovn, for an OVN network.
func Links(links []intent.Link, ports []network.PortView) []LinkView {
	has := map[string]bool{}
	for _, p := range ports {
		for _, n := range p.LinkEnds() {
			has[n] = true
		}
	}
	var ls []LinkView
	for _, l := range links {
		v := LinkView{Link: l}
		for _, end := range []string{l.Src, l.Dst} {
			if _, remote := intent.RemoteEnd(end); !remote && !has[end] {
				v.Dangling = append(v.Dangling, end)
			}
		}
		ls = append(ls, v)
	}
	return ls
}

// uplinkOf is the device `ovn join --uplink` put on the uplink bridge
// ("": ovsnet did not make it).
func uplinkOf(ctx context.Context, h *network.Host) (string, error) {
	root, err := h.DB.RootExternalIDs(ctx)
	if err != nil {
		return "", err
	}
	c, _ := intent.DecodeChassis(root)
	return c.Uplink, nil
}
