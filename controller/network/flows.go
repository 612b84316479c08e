package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/ovsnet/ovsnet/flows/openflow"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Everything here turns OVSDB intent into flows; nothing else decides them.

// bridgeIntent is bridge bi's flow model. What does not decode is read
// strictly (package intent): icc off, no gateway while the subnets do not
// decode, no flows of a tunnel whose intent does not.
func bridgeIntent(bi intent.Bridge) flows.BridgeModel {
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

// BridgeFlows are bridge b's bridge-wide flows, from its settings and the
// gateway MAC it was created with.
func BridgeFlows(b *vswitchd.Bridge) []*openflow.Flow {
	fb := bridgeIntent(intent.DecodeBridge(b.Name, b.ExternalIDs))
	fb.GatewayMAC, _ = net.ParseMAC(b.OtherConfig["hwaddr"])
	return flows.BridgeFlows(fb)
}

// containerIfaces reads the ovsnet interfaces of container on bridge, with
// their VLANs: a narrow select, not the bridge's whole port list.
func (h *Host) containerIfaces(ctx context.Context, bridge, container string) ([]flows.PortModel, error) {
	cols := []string{"_uuid", "name", "ofport", "ofport_request", "external_ids"}
	ifs, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB,
		[]ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.OfContainerOn(bridge, container))}, cols...)
	if err == nil && len(ifs) == 0 {
		// A runtime's endpoints, by the name the runtime gives their container.
		ifs, err = ovsdb.Select[vswitchd.Interface](ctx, h.DB,
			[]ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.NamedOn(bridge, container))}, cols...)
	}
	if err != nil {
		return nil, err
	}
	var out []flows.PortModel
	for _, i := range ifs {
		vlan := 0
		if p, err := h.DB.PortOn(ctx, bridge, i.UUID); err == nil && p != nil && p.Tag != nil {
			vlan = *p.Tag
		}
		if fp, ok, _ := decodePort(i, vlan); ok {
			out = append(out, fp)
		}
	}
	return out, nil
}

// LinkChanges recomputes the flows of the bridge's links that match (nil:
// all of them). ports gives a container's ports on the bridge; nil reads
// them from OVSDB (a caller holding the whole topology passes its own).
func (h *Host) LinkChanges(ctx context.Context, bridge string, links []intent.Link, match func(src, dst string) bool,

	ports func(container string) ([]flows.PortModel, error)) ([]flows.Change, error) {
	var chs []flows.Change
	if ports == nil {
		cache := map[string][]flows.PortModel{}
		ports = func(c string) ([]flows.PortModel, error) {
			if ps, ok := cache[c]; ok {
				return ps, nil
			}
			ps, err := h.containerIfaces(ctx, bridge, c)
			cache[c] = ps
			return ps, err
		}
	}
	for _, l := range links {
		src, dst := l.Src, l.Dst
		if match != nil && !match(src, dst) {
			continue
		}
		rules, err := flows.ParseRules(l.PortSpecs())
		if err != nil {
			return nil, fmt.Errorf("bridge %s: bad stored link %s: %w", bridge, intent.LinkKey(src, dst), err)
		}
		ch := flows.Change{Cookie: flows.LinkCookie(src, dst), Mask: flows.ObjectMask}
		sps, err := linkEnd(src, ports)
		if err != nil {
			return nil, err
		}
		dps, err := linkEnd(dst, ports)
		if err != nil {
			return nil, err
		}
		for _, sp := range sps {
			for _, dp := range dps {
				ch.Flows = append(ch.Flows, flows.LinkFlows(flows.LinkModel{Src: src, Dst: dst, SrcPort: sp, DstPort: dp, Rules: rules})...)
			}
		}
		chs = append(chs, ch)
	}
	return chs, nil
}

// linkEnd is a link end's ports: a container's, or, for a container on
// another host named by address, that address alone.
func linkEnd(end string, ports func(string) ([]flows.PortModel, error)) ([]flows.PortModel, error) {
	if a, ok := RemoteAddr(end); ok {
		return []flows.PortModel{{Addrs: []netip.Addr{a}}}, nil
	}
	return ports(end)
}

// LinkView is one link as show reports it.
type LinkView struct {
	intent.Link
	// Dangling are the ends with no port on the bridge (detached): the link
	// lets nothing through until they are attached again (ovsnet unlink
	// removes it).
	Dangling []string `json:"dangling,omitempty"`
}

// involving matches the links with container at either end.
func involving(container string) func(src, dst string) bool {
	return func(src, dst string) bool { return src == container || dst == container }
}

// BridgeFlowIntent is every flow bridge b's intent asks for (its
// interfaces in topo, decoded as d): Fixed, its pipeline's and its links';
// Ports, each decodable interface's flow model by cookie (most of a
// bridge's flows, made only when asked for). What reconcile converges a
// bridge to, and what an attach puts back when it finds the pipeline gone.
type BridgeFlowIntent struct {
	Fixed []*openflow.Flow
	Ports map[uint64]flows.PortModel
}

// BridgeFlowIntent works out bridge b's BridgeFlowIntent; the links' ends
// come from the same read, not from more selects.
func (h *Host) BridgeFlowIntent(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge, d DecodedPorts) (BridgeFlowIntent, error) {
	bf := BridgeFlowIntent{Fixed: BridgeFlows(b), Ports: map[uint64]flows.PortModel{}}
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
	chs, err := h.LinkChanges(ctx, b.Name, intent.DecodeBridge(b.Name, b.ExternalIDs).Links, nil, func(c string) ([]flows.PortModel, error) { return byContainer[c], nil })
	if err != nil {
		return bf, err
	}
	for _, ch := range chs {
		bf.Fixed = append(bf.Fixed, ch.Flows...)
	}
	return bf, nil
}

// Changes are the intent as one replace by cookie per object: objects
// it does not know (a port an attach is adding meanwhile) keep theirs.
func (bf BridgeFlowIntent) Changes() []flows.Change {
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

// checkPipeline starts finding out whether bridge's pipeline is in place
// (a restarted ovs-vswitchd has no flows, and no controller may run to
// restore them), overlapping the caller's other work; the returned
// function waits for the answer and, if the pipeline is gone, puts back
// every flow of the bridge (else an attach would install only its own
// port's flows onto a bridge that forwards nothing, and report success).
// One flow-count request by cookie, skipped while this process's
// connection to the bridge is the one it last checked over (the
// controller: a restart breaks the connection).
func (h *Host) checkPipeline(bridge string) (ensure func(context.Context) error) {
	epoch, open := h.Flows.Epoch(bridge)
	h.mu.Lock()
	seen, ok := h.pipelineSeen[bridge]
	h.mu.Unlock()
	if open && ok && seen == epoch {
		return func(context.Context) error { return nil }
	}
	type answer struct {
		n   int
		err error
	}
	done := make(chan answer, 1)
	go func() {
		n, err := h.Flows.CookieCount(bridge, flows.BridgeCookie(), flows.ObjectMask)
		done <- answer{n, err}
	}()
	return func(ctx context.Context) error {
		a := <-done
		if a.err != nil {
			return a.err
		}
		if a.n == 0 {
			if err := h.restoreFlows(ctx, bridge); err != nil {
				return fmt.Errorf("bridge %s had lost its flows (ovs-vswitchd restarted?) and putting them back failed (run ovsnet reconcile): %w", bridge, err)
			}
		}
		epoch, _ := h.Flows.Epoch(bridge)
		h.mu.Lock()
		if h.pipelineSeen == nil {
			h.pipelineSeen = map[string]uint64{}
		}
		h.pipelineSeen[bridge] = epoch
		h.mu.Unlock()
		return nil
	}
}

// restoreFlows puts back every object's flows of bridge as its intent
// says (what reconcile converges to), replacing by cookie: an attach
// running meanwhile keeps the flows it installs.
func (h *Host) restoreFlows(ctx context.Context, bridge string) error {
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return err
	}
	b := topo.Bridge(bridge)
	if b == nil {
		return noBridge(bridge)
	}
	ifs, ports := topo.BridgeInterfaces(b)
	bf, err := h.BridgeFlowIntent(ctx, topo, b, DecodePorts(ifs, ports))
	if err != nil {
		return err
	}
	return h.Flows.ApplySpread(bridge, bf.Changes()...)
}
