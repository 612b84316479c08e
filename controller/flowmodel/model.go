// Package flowmodel turns ovsnet's intent in OVSDB into the flow model
// package flows builds flows from: a bridge's settings, each container
// interface (strictly: what does not decode gets no flows, and is
// reported), its links, and the whole of a bridge's flows for
// convergence. Nothing else decides what flows a row gets. It reads rows
// it is given; it reads no database and talks to no switch.
package flowmodel

import (
	"sort"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// DecodePort is the flow model of an ovsnet container interface. ok is
// false for rows that have no flows of their own (not ovsnet's, no port
// number yet) and for rows whose intent does not decode (err says why).
// The port number is the one ovs-vswitchd assigned, or, before it has, the
// one requested.
func DecodePort(i vswitchd.Interface, vlan int) (p flows.PortModel, ok bool, err error) {
	if !intent.Owned(i.ExternalIDs) || intent.IsTunnelPort(i.ExternalIDs) {
		return p, false, nil
	}
	pi, err := intent.DecodePort(intent.InterfaceRow(i.Name, i.ExternalIDs), i.ExternalIDs)
	if err != nil {
		return p, false, err
	}
	switch {
	case i.Ofport != nil && *i.Ofport > 0:
		return PortOf(pi, i.Name, *i.Ofport, vlan), true, nil
	case i.OfportRequest != nil:
		return PortOf(pi, i.Name, *i.OfportRequest, vlan), true, nil
	}
	return p, false, nil
}

// DecodedPorts is one decoding of a bridge's container interfaces, shared
// by a convergence run's flows and its report of bad intent: the flow
// model of each interface that has flows (by OVS port name) and what does
// not decode (ports sharing a MAC included, and given no flows).
type DecodedPorts struct {
	Flow map[string]flows.PortModel
	Bad  []error
}

// DecodePorts decodes ifs, whose ports (for their VLANs) are ports.
func DecodePorts(ifs []vswitchd.Interface, ports []vswitchd.Port) DecodedPorts {
	d := DecodedPorts{Flow: map[string]flows.PortModel{}}
	shared := map[string]bool{}
	for _, e := range sharedMACs(ifs) {
		shared[e.Row] = true
		d.Bad = append(d.Bad, e)
	}
	for j, i := range ifs {
		vlan := 0
		if ports[j].Tag != nil {
			vlan = *ports[j].Tag
		}
		p, ok, err := DecodePort(i, vlan)
		if err != nil {
			d.Bad = append(d.Bad, err)
		}
		if ok && !shared[intent.InterfaceRow(i.Name, i.ExternalIDs)] {
			d.Flow[i.Name] = p
		}
	}
	return d
}

// BadIntent is every decoding error of an ovsnet bridge and its container
// interfaces, ports sharing a MAC included, in a stable order.
func BadIntent(topo *ovsdb.Topology, b *vswitchd.Bridge) []error {
	return BadIntentOf(b, DecodePorts(topo.BridgeInterfaces(b)))
}

// BadIntentOf is badIntent with the bridge's interfaces already decoded.
func BadIntentOf(b *vswitchd.Bridge, d DecodedPorts) []error {
	bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
	errs := append(append([]error{}, bi.Errs...), d.Bad...)
	for _, t := range bi.Tunnels {
		if t.Err != nil {
			errs = append(errs, t.Err)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

// sharedMACs reports container interfaces whose MAC another interface of
// the bridge holds (set behind ovsnet's back: attaches refuse it). Both get
// no flows: either could be the impostor.
func sharedMACs(ifs []vswitchd.Interface) []*intent.Error {
	by := map[string][]vswitchd.Interface{}
	for _, i := range ifs {
		if !intent.Owned(i.ExternalIDs) || intent.IsTunnelPort(i.ExternalIDs) {
			continue
		}
		if m, ok := intent.HeldMAC(i.ExternalIDs); ok {
			by[m.String()] = append(by[m.String()], i)
		}
	}
	var out []*intent.Error
	for m, is := range by {
		if len(is) < 2 {
			continue
		}
		for _, i := range is {
			out = append(out, intent.SharedMAC(intent.InterfaceRow(i.Name, i.ExternalIDs), m))
		}
	}
	return out
}

// PortOf is port p's flow model, on OVS port name numbered ofport, in
// access VLAN vlan (0: untagged).
func PortOf(p intent.Port, name string, ofport, vlan int) flows.PortModel {
	fp := flows.PortModel{Name: name, Ofport: ofport, MAC: p.MAC, VLAN: vlan, FloodPPS: p.FloodPPS}
	for _, a := range p.Addrs {
		fp.Addrs = append(fp.Addrs, a.Addr())
	}
	return fp
}
