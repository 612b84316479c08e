package network

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// ShownPort is a container interface as show reports it: from its intent
// (portView), or, for ovs-docker's ports and intent that does not
// decode, from the stored strings as they are, with the decoding error.
func ShownPort(bridge string, i vswitchd.Interface, p vswitchd.Port) PortView {
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
	if n := intent.RefOf(e).RuntimeIface; n != "" {
		v.Iface = n // as the container sees it (Docker's ethN), not ovsnet's record
	}
	if owned && err != nil {
		v.Error = err.Error()
	}
	for _, m := range natplan.Published(i) {
		v.Published = append(v.Published, m.Docker())
	}
	if im, ok, ierr := intent.DecodeImpairment(IfaceRow(i), e); ierr != nil {
		v.Impaired = "does not decode (" + e[intent.KeyImpair] + ")"
	} else if ok {
		v.Impaired = im.String()
	}
	if lim, ok, lerr := intent.DecodeRateLimit(IfaceRow(i), e); lerr != nil {
		v.RateLimit = "does not decode (" + e[intent.KeyRate] + ")"
	} else if ok {
		v.RateLimit = lim.String()
	}
	return v
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

// LinkEnds are the names the port answers to as a link's end
// (intent.Ref.LinkEnds).
func (p *PortView) LinkEnds() []string {
	return intent.Ref{Container: p.Container, RuntimeName: p.Name}.LinkEnds()
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
