package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/controller/reconcile"
	"github.com/ovsnet/ovsnet/controller/show"
	"github.com/ovsnet/ovsnet/controller/view"
)

func showCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show [BRIDGE] [-o text|json|dot|svg]",
		Short: "Show bridges and the containers attached to them, as text or a picture",
		Long: `Show every bridge (or BRIDGE): datapath, subnets, gateways, settings, and
for each attached container its interface, addresses, MAC, VLAN, OVS port,
OpenFlow port number and link state. -o json gives the same as JSON.

On a host that joined OVN (ovsnet ovn join), OVN networks follow, each with
its containers on every chassis (this host's in detail, the others' from
their logical ports) and its links.

-o svg draws it (no Graphviz needed): a panel per bridge (titled with its
Docker network's name when it carries one), its containers grouped by
VLAN, links (icc=false allow rules) as arrows below the cards, tunnels
with their state, published ports on their containers, in red what is
broken (a port that is not up, intent that does not decode), and a
legend. -o dot is the
same as a Graphviz graph ("dot -Tpng"). A bridge with more than 200
containers is drawn as counts per VLAN. ovsnet controller serves the
picture, live, on its --listen address.`,
		Example: "  ovsnet show\n  ovsnet show ovs-br1 -o json\n  ovsnet show -o svg > network.svg\n  ovsnet show -o dot | dot -Tpng > network.png",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			only := ""
			if len(args) == 1 {
				only = args[0]
			}
			draw := map[string]func([]show.BridgeView) string{"dot": view.DOT, "svg": view.SVG}[g.output]
			if draw != nil {
				g.output = "text"
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			bs, err := show.Read(c.Context(), h, only, ovn.Backend{})
			if err != nil {
				return err
			}
			if draw != nil {
				_, err := fmt.Fprint(c.OutOrStdout(), draw(bs))
				return err
			}
			return g.print(c, bs, renderTree(bs))
		},
	}
}

// renderTree prints bridges and containers as a tree.
func renderTree(bs []show.BridgeView) string {
	if len(bs) == 0 {
		return "no bridges (create one with `ovsnet add-br BRIDGE --subnet CIDR`)"
	}
	var b strings.Builder
	for _, br := range bs {
		fmt.Fprintf(&b, "%s (%s)\n", br.Name, strings.Join(bridgeAttrs(br), ", "))
		lines := []string{}
		for _, p := range br.Ports {
			addr := strings.Join(p.Addresses, " ")
			if addr == "" {
				addr = "no address"
			}
			l := fmt.Sprintf("%s %s: %s, mac %s", containerLabel(p), p.Iface, addr, p.MAC)
			if p.VLAN > 0 {
				l += fmt.Sprintf(", vlan %d", p.VLAN)
			}
			l += fmt.Sprintf(", port %s", p.OVSPort)
			if p.Ofport > 0 {
				l += fmt.Sprintf(" (ofport %d)", p.Ofport)
			}
			l += fmt.Sprintf(", %s, %s", p.Type, p.State)
			if p.Chassis != "" {
				l += ", chassis " + p.Chassis
			}
			if p.Error != "" {
				l += ", error: " + p.Error
			}
			if len(p.Published) > 0 {
				l += ", published " + strings.Join(p.Published, ", ")
			}
			if p.Impaired != "" {
				l += ", impaired: " + p.Impaired
			}
			if p.RateLimit != "" {
				l += ", rate limit: " + p.RateLimit
			}
			lines = append(lines, l)
		}
		for _, l := range br.Links {
			line := fmt.Sprintf("link %s -> %s (%s)", l.Src, l.Dst, l.Ports)
			if len(l.Dangling) > 0 {
				line += fmt.Sprintf(" dangling: %s not attached (ovsnet unlink %s %s %s removes it)", strings.Join(l.Dangling, ", "), br.Name, l.Src, l.Dst)
			}
			lines = append(lines, line)
		}
		for _, m := range br.Mirrors {
			line := "mirror " + m.Says()
			if m.Err != nil {
				line += ": " + m.Err.Error()
			}
			lines = append(lines, line)
		}
		for _, t := range br.Tunnels {
			lines = append(lines, fmt.Sprintf("tunnel %s %s -> %s, key %d, port %s (ofport %d), %s", t.Type, t.Local, t.Remote, t.Key, t.Port, t.Ofport, t.State))
		}
		if len(br.OtherPorts) > 0 {
			lines = append(lines, "other ports: "+strings.Join(br.OtherPorts, " "))
		}
		if len(br.Pool) > 0 {
			lines = append(lines, poolLine(br.Pool))
		}
		if len(lines) == 0 {
			lines = append(lines, "no containers")
		}
		for i, l := range lines {
			branch := "├── "
			if i == len(lines)-1 {
				branch = "└── "
			}
			b.WriteString(branch + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// poolLine counts a bridge's warm pool by type and state.
func poolLine(pool []network.PortView) string {
	count := map[string]int{}
	var keys []string
	for _, p := range pool {
		k := p.Type + " " + p.State
		if count[k] == 0 {
			keys = append(keys, k)
		}
		count[k]++
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", count[k], k))
	}
	return "warm pool (ovsnet controller --pool): " + strings.Join(parts, ", ")
}

// bridgeAttrs is a bridge's heading in the tree: datapath, subnets,
// settings, and what made it.
func bridgeAttrs(br show.BridgeView) []string {
	attrs := []string{"datapath " + br.Datapath}
	if br.Datapath == show.DatapathOVN {
		attrs[0] = "OVN network"
	}
	for i, s := range br.Subnets {
		gw := ""
		if i < len(br.Gateways) {
			gw = " via " + br.Gateways[i]
		}
		attrs = append(attrs, "subnet "+s+gw)
	}
	if br.MTU > 0 {
		attrs = append(attrs, fmt.Sprintf("mtu %d", br.MTU))
	}
	for _, r := range br.IPRanges {
		attrs = append(attrs, "this host's range "+r)
	}
	switch {
	case br.Ovsnet:
		attrs = append(attrs, "icc "+onOff(br.ICC))
		if br.Datapath != show.DatapathOVN {
			attrs = append(attrs, "nat "+onOff(br.NAT))
		}
		if br.RateLimit != "" {
			attrs = append(attrs, "default rate limit "+br.RateLimit)
		}
		if br.Router != "" {
			attrs = append(attrs, "routed by "+br.Router)
		}
		if br.Egress != "" {
			attrs = append(attrs, "out through its gateway as "+br.Egress)
		}
		if len(br.Services) > 0 {
			attrs = append(attrs, "services "+strings.Join(br.Services, ", "))
		}
		if d := br.Docker; d != nil {
			attrs = append(attrs, dockerAttr(d))
		}
	case br.UnderlayOf != "":
		attrs = append(attrs, "holds "+br.UnderlayOf+"'s addresses for ovsnet's tunnels")
	case br.UplinkOf != "":
		attrs = append(attrs, "OVN uplink: "+br.UplinkOf+" on the outside segment, for routers' gateways")
	default:
		attrs = append(attrs, "not created by ovsnet")
	}
	return attrs
}

// containerLabel names a port's container: by the runtime's name for it
// when there is one (a pod's, a Podman or Docker container's), with its ID.
func containerLabel(p network.PortView) string {
	if p.Runtime == "" && p.Name == "" {
		return p.Container
	}
	id := p.Container
	if len(id) > 12 {
		id = id[:12]
	}
	if p.Runtime == "" {
		return fmt.Sprintf("%s (%s)", p.Name, id)
	}
	return strings.TrimSpace(fmt.Sprintf("%s (%s endpoint %s)", p.Name, p.Runtime, id))
}

// dockerAttr names the Docker network a bridge carries.
func dockerAttr(d *show.Docker) string {
	id := d.ID
	if len(id) > 12 {
		id = id[:12]
	}
	s := "Docker network " + id
	if d.Name != "" {
		s = fmt.Sprintf("Docker network %s (%s)", d.Name, id)
	}
	if d.VLAN > 0 {
		s += fmt.Sprintf(" in VLAN %d", d.VLAN)
	}
	if d.Internal {
		s += " (internal)"
	}
	return s
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

func reconcileCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reconcile",
		Short: "Bring flows, NAT rules, addresses and links back in line with the intent in OVSDB",
		Long: `One-shot convergence, what the controller runs on every change: everything
ovsnet derives from OVSDB is checked and repaired and each repair is
reported: flows (drift removed, missing ones added, in one atomic bundle),
ovsnet's iptables chains, gateway addresses and MTU on bridges, links up,
allocation hints, internal ports a restarted ovs-vswitchd re-created, veth
offloads after ovs-vswitchd restarted with userspace TSO turned on or off,
and attaches, detaches, pool fills and del-br a killed process left
half-way (with the veths it made before their rows). Running it
twice changes nothing the second time.

external_ids values it cannot decode (edited by hand) are listed by row and
key, each treated as strictly as it can be (a port sends nothing, a bridge
stays isolated, NAT rules stay as they were), and make it exit 1.`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			g.lockMode = lock.Exclusive
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			r, err := reconcile.Once(c.Context(), h)
			did, notes, bad := r.Did, r.Notes, r.Bad
			text := "nothing to change"
			if len(did) > 0 {
				text = strings.Join(did, "\n")
			}
			for _, n := range notes {
				text += "\nnote: " + n
			}
			var badText []string
			for _, b := range bad {
				badText = append(badText, b.Error())
				text += "\n" + b.Error()
			}
			if perr := g.print(c, map[string]any{"changed": nonNil(did), "notes": nonNil(notes), "bad_intent": nonNil(badText)}, text); perr != nil {
				return perr
			}
			if err == nil && len(bad) > 0 {
				err = fmt.Errorf("%d external_ids values do not decode (listed above); each is treated as strictly as it can be", len(bad))
			}
			return err
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
