package network

import (
	"cmp"
	"context"
	"fmt"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// BridgeView is one bridge as show reports it.
type BridgeView struct {
	Name       string     `json:"name"`
	Datapath   string     `json:"datapath"`
	Ovsnet     bool       `json:"managed_by_ovsnet"`
	Subnets    []string   `json:"subnets,omitempty"`
	IPRanges   []string   `json:"ip_ranges,omitempty"`
	Gateways   []string   `json:"gateways,omitempty"`
	MTU        int        `json:"mtu,omitempty"`
	ICC        bool       `json:"icc"`
	NAT        bool       `json:"nat"`
	Ports      []PortView `json:"containers"`
	Links      []LinkView `json:"links,omitempty"`
	Tunnels    []Tunnel   `json:"tunnels,omitempty"`
	Errors     []string   `json:"intent_errors,omitempty"` // of the bridge's own settings, which do not decode
	UnderlayOf string     `json:"underlay_of,omitempty"`   // a bridge ovsnet made to hold a device's address for tunnels
	OtherPorts []string   `json:"other_ports,omitempty"`
	Docker     *Docker    `json:"docker_network,omitempty"` // the Docker network it carries
	// Pool is the warm pool's ports (ovsnet controller --pool): no
	// container's yet, apart from Ports.
	Pool []PortView `json:"pool,omitempty"`
}

// Docker is the Docker network a bridge carries, as show reports it.
type Docker struct {
	ID       string `json:"id"`
	VLAN     int    `json:"vlan,omitempty"`
	Internal bool   `json:"internal,omitempty"`
}

// Show returns the bridges (all, or the one named) with their containers.
func (h *Host) Show(ctx context.Context, only string) ([]BridgeView, error) {
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return nil, err
	}
	out := []BridgeView{}
	local := map[string]PortView{} // this host's OVN ports, by logical port
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if only != "" && b.Name != only {
			continue
		}
		bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
		sb := BridgeView{Name: b.Name, Datapath: DatapathOf(b), Ovsnet: bi.Owned, MTU: bi.MTU, ICC: bi.ICC, NAT: bi.NAT,
			Ports: []PortView{}, Tunnels: bi.Tunnels}
		sb.Subnets, sb.Gateways, sb.IPRanges = bi.Strings()
		if d := bi.Docker; d.ID != "" {
			sb.Docker = &Docker{ID: d.ID, VLAN: d.VLAN, Internal: d.Internal}
		}
		if bi.SubnetsErr != nil {
			sb.Subnets, sb.Gateways, sb.IPRanges = intent.StoredSubnets(b.ExternalIDs)
		}
		for _, l := range bi.Links {
			sb.Links = append(sb.Links, LinkView{Link: l})
		}
		if bi.Underlay != nil {
			sb.UnderlayOf = bi.Underlay.Dev
		}
		for _, e := range bi.Errs {
			sb.Errors = append(sb.Errors, e.Error())
		}
		ifs, ports := topo.BridgeInterfaces(b)
		sb.addInterfaces(ovnLocal(b.Name, ifs, ports, local))
		has := map[string]bool{}
		for _, p := range sb.Ports {
			has[p.Container] = true
		}
		for k, l := range sb.Links {
			for _, end := range []string{l.Src, l.Dst} {
				if _, remote := intent.RemoteEnd(end); !remote && !has[end] {
					sb.Links[k].Dangling = append(sb.Links[k].Dangling, end)
				}
			}
		}
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
	if h.OVN != nil {
		if ovn, err = h.OVN.Show(ctx, h, only, local); err != nil {
			return nil, err
		}
	}
	if out = append(out, ovn...); only != "" && len(out) == 0 {
		return nil, NoBridge(only)
	}
	sort.Slice(out, func(x, y int) bool { return out[x].Name < out[y].Name })
	return out, nil
}

// addInterfaces sorts a bridge's interfaces into its containers, its
// warm pool, its tunnels' states and its other ports.
func (sb *BridgeView) addInterfaces(ifs []vswitchd.Interface, ports []vswitchd.Port) {
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
			p := shownPort(sb.Name, ifc, ports[j])
			p.State = pooledState(ifc)
			sb.Pool = append(sb.Pool, p)
		case ref.Container == "" && ifc.Name != sb.Name:
			sb.OtherPorts = append(sb.OtherPorts, ifc.Name)
		case ref.Container != "":
			sb.Ports = append(sb.Ports, shownPort(sb.Name, ifc, ports[j]))
		}
	}
}

// shownPort is a container interface as show reports it: from its intent
// (portView), or, for ovs-docker's ports and intent that does not
// decode, from the stored strings as they are, with the decoding error.
func shownPort(bridge string, i vswitchd.Interface, p vswitchd.Port) PortView {
	e := i.ExternalIDs
	vlan, ofport := 0, 0
	if p.Tag != nil {
		vlan = *p.Tag
	}
	if i.Ofport != nil {
		ofport = *i.Ofport
	}
	pi, err := intent.DecodePort(IfaceRow(i), e)
	owned := intent.Owned(e)
	var v PortView
	if owned && err == nil {
		v = portView(pi, i.Name, ofport, vlan)
	} else {
		s := intent.StoredOf(e)
		v = PortView{Container: s.Container, Iface: s.Iface, Addresses: s.Addrs, Gateways: s.Gateways,
			MAC: s.MAC, MTU: s.MTU, Type: s.Type, OVSPort: i.Name, Ofport: ofport, VLAN: vlan, Netns: s.Netns}
	}
	v.Bridge, v.Name = bridge, intent.RefOf(e).RuntimeName
	if v.Type == "" { // attached by ovs-docker
		v.Type = attach.TypeVeth
	}
	if i.Error != nil {
		v.Error = *i.Error
	}
	v.State = linkState(v, i)
	if owned && err != nil {
		v.Error = err.Error()
	}
	for _, m := range natplan.Published(i) {
		v.Published = append(v.Published, m.Docker())
	}
	return v
}

// pooledState is the state of a pool's port's waiting end in the host
// ("down" until taken), or "missing".
func pooledState(i vswitchd.Interface) string {
	dev := i.Name
	if i.Type == "" {
		dev = attach.PoolPeer(i.Name)
	}
	st, err := attach.HostLinkState(dev)
	if err != nil {
		return "missing"
	}
	return st
}

// linkState is the container interface's state as the kernel sees it: for a
// veth its host end (in this netns), for an internal port the device inside
// the container, which OVS itself cannot see once it is moved.
func linkState(v PortView, i vswitchd.Interface) string {
	if v.Type == attach.TypeInternal {
		if v.Netns == "" {
			return "unknown"
		}
		st, err := attach.LinkState(v.Netns, v.Iface)
		if err != nil {
			return "missing"
		}
		return st
	}
	if v.Runtime != "" {
		// The runtime's end: up when the container has it up.
		st, err := attach.HostLinkState(i.Name)
		if err != nil {
			return "missing"
		}
		return st
	}
	if _, err := netlink.LinkByName(i.Name); err != nil {
		return "missing"
	}
	st, err := attach.LinkState(v.Netns, v.Iface)
	if err != nil {
		return "missing"
	}
	return st
}

// Describe renders a port as add-port prints it.
func (p *PortView) Describe() string {
	s := fmt.Sprintf("attached %s:%s to %s as OVS port %s (%s)", p.Container, p.Iface, p.Bridge, p.OVSPort, p.Type)
	for _, a := range p.Addresses {
		s += "\n  address " + a
	}
	for _, g := range p.Gateways {
		s += "\n  gateway " + g
	}
	s += "\n  mac     " + p.MAC
	if p.MTU > 0 {
		s += fmt.Sprintf("\n  mtu     %d", p.MTU)
	}
	if p.VLAN > 0 {
		s += fmt.Sprintf("\n  vlan    %d", p.VLAN)
	}
	return s
}

// ovnLocal splits this host's OVN ports off a bridge's interfaces: they
// are shown with their networks, by logical port name.
func ovnLocal(bridge string, ifs []vswitchd.Interface, ports []vswitchd.Port, local map[string]PortView) ([]vswitchd.Interface, []vswitchd.Port) {
	var keepI []vswitchd.Interface
	var keepP []vswitchd.Port
	for j, i := range ifs {
		if IsLogical(i) {
			local[i.ExternalIDs[intent.KeyIfaceID]] = shownPort(bridge, i, ports[j])
			continue
		}
		keepI, keepP = append(keepI, i), append(keepP, ports[j])
	}
	return keepI, keepP
}

// DatapathOVN is how show names an OVN network's "datapath".
const DatapathOVN = "ovn"
