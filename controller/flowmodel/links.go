package flowmodel

import (
	"fmt"
	"net/netip"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
)

// endPorts is a link end's ports: a container's, or, for a container on
// another host named by address, that address alone.
func endPorts(end string, ports func(string) ([]flows.PortModel, error)) ([]flows.PortModel, error) {
	if a, ok := intent.RemoteEnd(end); ok {
		return []flows.PortModel{{Addrs: []netip.Addr{a}}}, nil
	}
	return ports(end)
}

// Involving matches the links with container at either end.
func Involving(container string) func(src, dst string) bool {
	return func(src, dst string) bool { return src == container || dst == container }
}

// Links are the flows of bridge's links that match (nil: all of them),
// one change per link; ports gives a container's ports on the bridge.
func Links(bridge string, links []intent.Link, match func(src, dst string) bool, ports func(container string) ([]flows.PortModel, error)) ([]flows.Change, error) {
	var chs []flows.Change
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
		sps, err := endPorts(src, ports)
		if err != nil {
			return nil, err
		}
		dps, err := endPorts(dst, ports)
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
