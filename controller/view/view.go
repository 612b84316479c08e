// Package view draws the network as `show` reads it: Graphviz DOT, for
// people who lay graphs out themselves, and SVG laid out here, for `show
// -o svg` and the controller's page. Both group a bridge's containers by
// VLAN and, past MaxDrawn containers on a bridge, draw counts instead of
// containers. Nothing here reads the host: it draws what it is given.
package view

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/show"
)

// MaxDrawn is the most containers a bridge has drawn one by one; a bridge
// with more is drawn as counts per VLAN.
const MaxDrawn = 200

// Broken says whether a port is drawn as broken (red): its intent does not
// decode, OVS reports an error, or its device is not up.
func Broken(p network.PortView) bool { return p.Error != "" || p.State != "up" }

// group is the containers of one VLAN of a bridge (0: untagged).
type group struct {
	VLAN  int
	Ports []network.PortView
}

// groups splits a bridge's ports by VLAN, untagged first.
func groups(br show.BridgeView) []group {
	by := map[int][]network.PortView{}
	for _, p := range br.Ports {
		by[p.VLAN] = append(by[p.VLAN], p)
	}
	var gs []group
	for v, ps := range by {
		gs = append(gs, group{VLAN: v, Ports: ps})
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].VLAN < gs[j].VLAN })
	return gs
}

// summarised says whether the bridge is drawn as counts.
func summarised(br show.BridgeView) bool { return len(br.Ports) > MaxDrawn }

// groupTitle names a VLAN group.
func groupTitle(v int) string {
	if v == 0 {
		return "untagged"
	}
	return fmt.Sprintf("VLAN %d", v)
}

// countBroken is how many of ps are broken.
func countBroken(ps []network.PortView) int {
	n := 0
	for _, p := range ps {
		if Broken(p) {
			n++
		}
	}
	return n
}

// Title names a bridge as users know it: a Docker network's name first,
// with its bridge.
func Title(br show.BridgeView) string {
	if br.Docker != nil && br.Docker.Name != "" {
		return br.Docker.Name + " (" + br.Name + ")"
	}
	return br.Name
}

// bridgeLines are the lines under a bridge's name: its addresses and
// settings.
func bridgeLines(br show.BridgeView) []string {
	var ls []string
	if len(br.Subnets) > 0 {
		l := strings.Join(br.Subnets, " ")
		if len(br.Gateways) > 0 {
			l += " gw " + strings.Join(br.Gateways, " ")
		}
		ls = append(ls, l)
	}
	if len(br.IPRanges) > 0 {
		ls = append(ls, "this host's range "+strings.Join(br.IPRanges, " "))
	}
	attrs := []string{br.Datapath}
	if !br.ICC {
		attrs = append(attrs, "icc=false")
	}
	if br.NAT {
		attrs = append(attrs, "nat")
	}
	if br.MTU > 0 {
		attrs = append(attrs, fmt.Sprintf("mtu %d", br.MTU))
	}
	if br.Docker != nil {
		attrs = append(attrs, "docker network")
	}
	if len(br.Pool) > 0 {
		attrs = append(attrs, fmt.Sprintf("warm pool %d", len(br.Pool)))
	}
	if br.RateLimit != "" {
		attrs = append(attrs, "default rate "+br.RateLimit)
	}
	if br.Router != "" {
		attrs = append(attrs, "router "+br.Router)
	}
	ls = append(ls, strings.Join(attrs, ", "))
	for _, m := range br.Mirrors {
		ls = append(ls, mirrorLine(m))
	}
	for _, e := range br.Errors {
		ls = append(ls, "broken: "+e)
	}
	return ls
}

// portTitle names a container's interface: the runtime's name of the
// container where there is one.
func portTitle(p network.PortView) string {
	c := p.Container
	if p.Name != "" {
		c = p.Name
	} else if len(c) > 24 {
		c = c[:12] + "…"
	}
	return c + " " + p.Iface
}

// portLines are the lines under a container's title.
func portLines(p network.PortView) []string {
	ls := []string{strings.Join(p.Addresses, " ")}
	l := p.MAC + " · " + p.Type
	if p.VLAN > 0 {
		l += fmt.Sprintf(" · vlan %d", p.VLAN)
	}
	ls = append(ls, l)
	if len(p.Published) > 0 {
		ls = append(ls, "published "+strings.Join(p.Published, ", "))
	}
	if p.RateLimit != "" {
		ls = append(ls, "rate "+p.RateLimit)
	}
	if p.Impaired != "" {
		ls = append(ls, "impaired: "+p.Impaired)
	}
	if Broken(p) {
		ls = append(ls, "broken: "+cmpOr(p.Error, p.State))
	}
	return ls
}

// mirrorLine describes a standing mirror.
func mirrorLine(m intent.Mirror) string {
	switch {
	case m.Err != nil:
		return "broken: mirror to " + m.To + " does not decode"
	case m.All:
		return "mirror: every port to " + m.To
	}
	return "mirror: " + strings.Join(m.From, ", ") + " to " + m.To
}

// tunnelLine describes a tunnel.
func tunnelLine(t intent.Tunnel) string {
	kind := t.Type
	if t.Kernel {
		kind += " (kernel)"
	}
	return fmt.Sprintf("%s to %s, key %d, %s", kind, t.Remote, t.Key, cmpOr(t.State, "unknown"))
}

// ends maps a bridge's container names (and runtime names) to the port
// that stands for them in a picture: the first one.
func ends(br show.BridgeView) map[string]network.PortView {
	m := map[string]network.PortView{}
	for _, p := range br.Ports {
		for _, k := range endKeys(p) {
			if _, ok := m[k]; k != "" && !ok {
				m[k] = p
			}
		}
	}
	return m
}

// endKeys are the names a link may give a port's container by.
func endKeys(p network.PortView) []string {
	ks := []string{p.Container}
	if p.Name != "" {
		ks = append(ks, p.Name)
	}
	for _, a := range p.Addresses {
		k, _, _ := strings.Cut(a, "/")
		ks = append(ks, k)
	}
	return ks
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
