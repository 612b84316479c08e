package view

import (
	"fmt"
	"strings"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/show"
)

// DOT is the network as a Graphviz digraph: a cluster per bridge holding
// a cluster per VLAN, containers as boxes (red when broken), tunnels as
// hexagons, links as blue arrows labelled with their ports.
func DOT(bs []show.BridgeView) string {
	var b strings.Builder
	b.WriteString("digraph ovsnet {\n")
	b.WriteString("  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11];\n")
	b.WriteString("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f5f7fa\", fontname=\"Helvetica\", fontsize=10];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=9];\n")
	for _, br := range bs {
		dotBridge(&b, br)
	}
	b.WriteString("}\n")
	return b.String()
}

// dotBridge writes one bridge's cluster, then its links.
func dotBridge(b *strings.Builder, br show.BridgeView) {
	id := "br:" + br.Name
	fmt.Fprintf(b, "  subgraph %s {\n    label=%s;\n    style=\"rounded\";\n", q("cluster_"+br.Name), q(Title(br)))
	fill := "#dde8f5"
	if len(br.Errors) > 0 {
		fill = "#f8d0d0"
	}
	fmt.Fprintf(b, "    %s [shape=box3d, fillcolor=%s, label=%s];\n", q(id), q(fill), q(strings.Join(append([]string{Title(br)}, bridgeLines(br)...), "\n")))
	for _, g := range groups(br) {
		fmt.Fprintf(b, "    subgraph %s {\n      label=%s;\n", q(fmt.Sprintf("cluster_%s_vlan%d", br.Name, g.VLAN)), q(groupTitle(g.VLAN)))
		if summarised(br) {
			n := fmt.Sprintf("vlan:%s:%d", br.Name, g.VLAN)
			label := fmt.Sprintf("%d containers", len(g.Ports))
			color := "#f5f7fa"
			if k := countBroken(g.Ports); k > 0 {
				label += fmt.Sprintf("\n%d broken", k)
				color = "#f8d0d0"
			}
			fmt.Fprintf(b, "      %s [label=%s, fillcolor=%s];\n", q(n), q(label), q(color))
			fmt.Fprintf(b, "      %s -> %s [arrowhead=none];\n", q(id), q(n))
		} else {
			for _, p := range g.Ports {
				dotPort(b, id, p)
			}
		}
		b.WriteString("    }\n")
	}
	for _, t := range br.Tunnels {
		n := "tun:" + br.Name + ":" + t.Remote
		color := "#e6f2e6"
		if t.State != "up" {
			color = "#f8d0d0"
		}
		fmt.Fprintf(b, "    %s [shape=hexagon, fillcolor=%s, label=%s];\n", q(n), q(color), q("tunnel\n"+tunnelLine(t)))
		fmt.Fprintf(b, "    %s -> %s [arrowhead=none, style=dashed];\n", q(id), q(n))
	}
	b.WriteString("  }\n")
	if !summarised(br) {
		dotLinks(b, br)
	}
}

// dotPort writes one container interface and its edge to the bridge.
func dotPort(b *strings.Builder, bridgeID string, p network.PortView) {
	n := "port:" + p.OVSPort
	attrs := ""
	if Broken(p) {
		attrs = ", fillcolor=\"#f8d0d0\", color=\"#c00000\", fontcolor=\"#800000\""
	}
	fmt.Fprintf(b, "      %s [label=%s%s];\n", q(n), q(strings.Join(append([]string{portTitle(p)}, portLines(p)...), "\n")), attrs)
	fmt.Fprintf(b, "      %s -> %s [arrowhead=none, label=%s];\n", q(bridgeID), q(n), q(p.OVSPort))
}

// dotLinks writes the bridge's links; an end that is no container here
// (a remote address, or a detached container: dangling) gets a node of
// its own.
func dotLinks(b *strings.Builder, br show.BridgeView) {
	m := ends(br)
	node := func(end string) string {
		if p, ok := m[end]; ok {
			return "port:" + p.OVSPort
		}
		n := "end:" + br.Name + ":" + end
		fmt.Fprintf(b, "  %s [label=%s, style=\"dashed,rounded\"];\n", q(n), q(end))
		return n
	}
	for _, l := range br.Links {
		src, dst := node(l.Src), node(l.Dst)
		style := "color=\"#1f5fbf\", fontcolor=\"#1f5fbf\""
		if len(l.Dangling) > 0 {
			style = "color=\"#c00000\", fontcolor=\"#c00000\", style=dashed"
		}
		fmt.Fprintf(b, "  %s -> %s [label=%s, %s];\n", q(src), q(dst), q(l.Ports), style)
	}
}

// q quotes s as a DOT string.
func q(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
