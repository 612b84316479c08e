package flowmodel

import (
	"net"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/openflow"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// BridgeOf is bridge bi's flow model. What does not decode is read
// strictly (package intent): icc off, no gateway while the subnets do not
// decode, no flows of a tunnel whose intent does not.
func BridgeOf(bi intent.Bridge) flows.BridgeModel {
	// A Docker network's gateway is in the network's VLAN.
	b := flows.BridgeModel{ICC: bi.ICC, GatewayVLAN: bi.Docker.VLAN, AnswerND: bi.AnswerND}
	for _, s := range bi.Subnets {
		b.Gateways = append(b.Gateways, s.Gateway)
		if s.Range.IsValid() {
			b.Subnets, b.Ranges = append(b.Subnets, s.Prefix), append(b.Ranges, s.Range)
		}
	}
	seen := map[int]bool{}
	for _, t := range bi.GoodTunnels() {
		if !seen[t.Ofport] { // kernel VXLAN tunnels share one port
			seen[t.Ofport] = true
			b.Tunnels = append(b.Tunnels, t.Ofport)
		}
	}
	return b
}

// BridgeChange replaces bridge b's bridge-wide flows (tunnels included)
// with what its settings say, in one bundle.
func BridgeChange(b *vswitchd.Bridge) flows.Change {
	return flows.Change{Cookie: flows.BridgeCookie(), Mask: flows.ObjectMask, Flows: BridgeFlows(b)}
}

// BridgeFlows are bridge b's bridge-wide flows, from its settings and the
// gateway MAC it was created with.
func BridgeFlows(b *vswitchd.Bridge) []*openflow.Flow {
	fb := BridgeOf(intent.DecodeBridge(b.Name, b.ExternalIDs))
	fb.GatewayMAC, _ = net.ParseMAC(b.OtherConfig["hwaddr"])
	return flows.BridgeFlows(fb)
}

// Intent is every flow bridge b's intent asks for (its
// interfaces in topo, decoded as d): Fixed, its pipeline's and its links';
// Ports, each decodable interface's flow model by cookie (most of a
// bridge's flows, made only when asked for). What reconcile converges a
// bridge to, and what an attach puts back when it finds the pipeline gone.
type Intent struct {
	Fixed []*openflow.Flow
	Ports map[uint64]flows.PortModel
}

// Changes are the intent as one replace by cookie per object: objects
// it does not know (a port an attach is adding meanwhile) keep theirs.
func (bf Intent) Changes() []flows.Change {
	var chs []flows.Change
	at := map[uint64]int{}
	for _, f := range bf.Fixed {
		i, ok := at[f.Cookie]
		if !ok {
			i, at[f.Cookie] = len(chs), len(chs)
			chs = append(chs, flows.Change{Cookie: f.Cookie, Mask: flows.ObjectMask})
		}
		chs[i].Flows = append(chs[i].Flows, f)
	}
	for _, p := range bf.Ports {
		chs = append(chs, flows.PortChange(p))
	}
	return chs
}

// Of works out bridge b's Intent; the links' ends
// come from the same read, not from more selects.
func Of(topo *ovsdb.Topology, b *vswitchd.Bridge, d DecodedPorts) (Intent, error) {
	bf := Intent{Fixed: BridgeFlows(b), Ports: map[uint64]flows.PortModel{}}
	ifs, _ := topo.BridgeInterfaces(b)
	byContainer := map[string][]flows.PortModel{}
	for _, i := range ifs {
		p, ok := d.Flow[i.Name]
		if !ok {
			continue
		}
		ref := intent.RefOf(i.ExternalIDs)
		byContainer[ref.Container] = append(byContainer[ref.Container], p)
		if ref.RuntimeName != "" && ref.RuntimeName != ref.Container {
			byContainer[ref.RuntimeName] = append(byContainer[ref.RuntimeName], p)
		}
		bf.Ports[flows.PortCookie(p.Name)] = p
	}
	bf.Fixed = append(bf.Fixed, captureFlows(ifs, d)...)
	chs, err := Links(b.Name, intent.DecodeBridge(b.Name, b.ExternalIDs).Links, nil, func(c string) ([]flows.PortModel, error) { return byContainer[c], nil })
	if err != nil {
		return bf, err
	}
	for _, ch := range chs {
		bf.Fixed = append(bf.Fixed, ch.Flows...)
	}
	return bf, nil
}

// captureFlows are the flows of the captures on a bridge (its interfaces
// ifs, decoded as d): each hands its port's dropped packets to the
// capture. A capture whose keys do not decode has none (reconcile removes
// its port); nor one of a port with no flows.
func captureFlows(ifs []vswitchd.Interface, d DecodedPorts) []*openflow.Flow {
	var fs []*openflow.Flow
	for _, i := range ifs {
		c, ok, err := intent.DecodeCapture(i.Name, i.ExternalIDs)
		if !ok || err != nil {
			continue
		}
		if p, ok := d.Flow[c.Of]; ok && p.Ofport > 0 {
			fs = append(fs, flows.CaptureFlows(i.Name, p.Ofport)...)
		}
	}
	return fs
}
