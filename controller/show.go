package controller

import (
	"cmp"
	"context"
	"fmt"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Bridge is one bridge as show reports it.
type Bridge struct {
	Name       string   `json:"name"`
	Datapath   string   `json:"datapath"`
	Ovsnet     bool     `json:"managed_by_ovsnet"`
	Subnets    []string `json:"subnets,omitempty"`
	IPRanges   []string `json:"ip_ranges,omitempty"`
	Gateways   []string `json:"gateways,omitempty"`
	MTU        int      `json:"mtu,omitempty"`
	ICC        bool     `json:"icc"`
	NAT        bool     `json:"nat"`
	Ports      []Port   `json:"containers"`
	Links      []Link   `json:"links,omitempty"`
	Tunnels    []Tunnel `json:"tunnels,omitempty"`
	UnderlayOf string   `json:"underlay_of,omitempty"` // a bridge ovsnet made to hold a device's address for tunnels
	OtherPorts []string `json:"other_ports,omitempty"`
}

// Show returns the bridges (all, or the one named) with their containers.
func (h *Host) Show(ctx context.Context, only string) ([]Bridge, error) {
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return nil, err
	}
	if only != "" && topo.Bridge(only) == nil {
		return nil, noBridge(only)
	}
	out := []Bridge{}
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if only != "" && b.Name != only {
			continue
		}
		ext := b.ExternalIDs
		sb := Bridge{Name: b.Name, Datapath: datapathOf(b), Ovsnet: ext[ovsdb.KeyOwner] == ovsdb.OwnerOvsnet,
			Subnets: splitList(ext[ovsdb.KeySubnet]), Gateways: splitList(ext[ovsdb.KeyPortGW]),
			MTU: atoi(ext[ovsdb.KeyMTU]), ICC: iccOf(b), NAT: ext[ovsdb.KeyNAT] != "false", Ports: []Port{},
			Links: bridgeLinks(ext), IPRanges: splitList(ext[ovsdb.KeyIPRange]), Tunnels: bridgeTunnels(b.Name, ext)}
		sb.UnderlayOf = ext[ovsdb.KeyUnderlayDev]
		ifs, ports := topo.BridgeInterfaces(b)
		state := map[string]string{}
		for _, ifc := range ifs {
			state[ifc.Name] = ifaceState(ifc)
		}
		for k := range sb.Tunnels {
			sb.Tunnels[k].State = cmp.Or(state[sb.Tunnels[k].Port], "missing")
		}
		for j, ifc := range ifs {
			if ifc.ExternalIDs[ovsdb.KeyTunnelPrefix+"remote"] != "" {
				continue
			}
			if ifc.ExternalIDs[ovsdb.KeyContainerID] == "" {
				if ifc.Name != b.Name {
					sb.OtherPorts = append(sb.OtherPorts, ifc.Name)
				}
				continue
			}
			sb.Ports = append(sb.Ports, portView(b.Name, ifc, ports[j]))
		}
		has := map[string]bool{}
		for _, p := range sb.Ports {
			has[p.Container] = true
		}
		for k, l := range sb.Links {
			for _, end := range []string{l.Src, l.Dst} {
				if _, remote := remoteAddr(end); !remote && !has[end] {
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
		out = append(out, sb)
	}
	sort.Slice(out, func(x, y int) bool { return out[x].Name < out[y].Name })
	return out, nil
}

// portView is a container interface as show reports it: from its intent
// (PortIntent.View), or, for ovs-docker's ports and intent that does not
// decode, from the stored strings as they are, with the decoding error.
func portView(bridge string, i vswitchd.Interface, p vswitchd.Port) Port {
	e := i.ExternalIDs
	vlan, ofport := 0, 0
	if p.Tag != nil {
		vlan = *p.Tag
	}
	if i.Ofport != nil {
		ofport = *i.Ofport
	}
	pi, err := decodePortIntent(ifaceRow(i), e)
	var v Port
	if e[ovsdb.KeyOwner] == ovsdb.OwnerOvsnet && err == nil {
		v = pi.View(i.Name, ofport, vlan)
	} else {
		v = Port{Container: e[ovsdb.KeyContainerID], Iface: e[ovsdb.KeyContainerIface],
			Addresses: nonEmpty(e[ovsdb.KeyIPv4], e[ovsdb.KeyIPv6]), Gateways: splitList(e[ovsdb.KeyPortGW]),
			MAC: e[ovsdb.KeyMAC], MTU: atoi(e[ovsdb.KeyMTU]), Type: e[ovsdb.KeyType], OVSPort: i.Name, Ofport: ofport, VLAN: vlan, Netns: e[ovsdb.KeyNetns]}
	}
	v.Bridge = bridge
	if v.Type == "" { // attached by ovs-docker
		v.Type = attach.TypeVeth
	}
	if i.Error != nil {
		v.Error = *i.Error
	}
	v.State = linkState(v, i)
	if e[ovsdb.KeyOwner] == ovsdb.OwnerOvsnet && err != nil {
		v.Error = err.Error()
	}
	ms, _ := nat.ParseList(e[ovsdb.KeyPublish])
	for _, m := range ms {
		v.Published = append(v.Published, m.Docker())
	}
	return v
}

// linkState is the container interface's state as the kernel sees it: for a
// veth its host end (in this netns), for an internal port the device inside
// the container, which OVS itself cannot see once it is moved.
func linkState(v Port, i vswitchd.Interface) string {
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
	if _, err := netlink.LinkByName(i.Name); err != nil {
		return "missing"
	}
	st, err := attach.LinkState(v.Netns, v.Iface)
	if err != nil {
		return "missing"
	}
	return st
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Describe renders a port as add-port prints it.
func (p *Port) Describe() string {
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

// iccOf is what isolation a bridge gets: off (isolated) when its setting
// does not decode.
func iccOf(b *vswitchd.Bridge) bool {
	icc, _ := decodeICC(b.Name, b.ExternalIDs)
	return icc
}
