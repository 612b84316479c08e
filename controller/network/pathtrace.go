package network

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/appctl"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// TraceOptions describe the packet to trace.
type TraceOptions struct {
	Bridge, From, To string
	Proto            string // icmp (default), tcp, udp
	DPort            int
}

// TraceStep is one table the packet passed.
type TraceStep struct {
	Table    int    `json:"table"`
	Stage    string `json:"stage"`
	Match    string `json:"match"`
	Priority int    `json:"priority"`
	Actions  string `json:"actions"`
}

// TraceResult is what ofproto/trace said, in ovsnet's words.
type TraceResult struct {
	Packet  string      `json:"packet"`
	Steps   []TraceStep `json:"steps"`
	Allowed bool        `json:"allowed"`
	Verdict string      `json:"verdict"`
	// Local, on an OVN network whose source is on this chassis: what its
	// integration bridge does with the packet (ofproto/trace).
	Local string `json:"local,omitempty"`
	Raw   string `json:"raw,omitempty"`
}

// Trace builds a packet from the endpoints' real MACs and addresses, runs it
// through the bridge's flow tables with ofproto/trace, and says where it
// went; on an OVN network, through OVN's logical pipelines (the network's
// Trace). Connection tracking is taken as a new connection (the first
// packet).
func (h *Host) Trace(ctx context.Context, o TraceOptions) (*TraceResult, error) {
	n, err := h.Network(ctx, o.Bridge)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	return n.Trace(ctx, o)
}

// Trace on one of this host's bridges: ofproto/trace of the packet.
func (n *bridgeNetwork) Trace(ctx context.Context, o TraceOptions) (*TraceResult, error) {
	h := n.h
	from, err := h.containerIfaces(ctx, o.Bridge, o.From)
	if err != nil {
		return nil, err
	}
	if len(from) == 0 {
		return nil, fmt.Errorf("container %q has no ovsnet interface on %s", o.From, o.Bridge)
	}
	src := from[0]
	var dstAddr netip.Addr
	var dstMAC string
	want := "65534" // LOCAL, the gateway: for anything not on the bridge
	if a, err := netip.ParseAddr(o.To); err == nil {
		dstAddr = a
		// An address of a container on the bridge is reached directly;
		// anything else through the gateway.
		if p, err := n.portByAddr(ctx, a); err != nil {
			return nil, err
		} else if p != nil {
			dstMAC, want = p.MAC.String(), strconv.Itoa(p.Ofport)
		}
	} else {
		to, err := h.containerIfaces(ctx, o.Bridge, o.To)
		if err != nil {
			return nil, err
		}
		if len(to) == 0 {
			return nil, fmt.Errorf("container %q has no ovsnet interface on %s", o.To, o.Bridge)
		}
		dstMAC, want = to[0].MAC.String(), strconv.Itoa(to[0].Ofport)
		for _, a := range to[0].Addrs {
			if !dstAddr.IsValid() || (hasAddrFamily(src.Addrs, a) && !hasAddrFamily(src.Addrs, dstAddr)) {
				dstAddr = a
			}
		}
	}
	if !dstAddr.IsValid() {
		return nil, fmt.Errorf("container %q has no address to trace to", o.To)
	}
	var srcAddr netip.Addr
	for _, a := range src.Addrs {
		if a.Is4() == dstAddr.Is4() {
			srcAddr = a
		}
	}
	if !srcAddr.IsValid() {
		return nil, fmt.Errorf("container %q has no %s address", o.From, map[bool]string{true: "IPv4", false: "IPv6"}[dstAddr.Is4()])
	}
	if dstMAC == "" {
		gw, err := n.gatewayMAC(ctx)
		if err != nil {
			return nil, err
		}
		dstMAC = gw
	}
	pkt, err := PacketSpec(src.Ofport, src.MAC.String(), dstMAC, srcAddr, dstAddr, o.Proto, o.DPort)
	if err != nil {
		return nil, err
	}
	out, err := appctl.Call(ctx, "ofproto/trace", o.Bridge, pkt)
	if err != nil {
		return nil, fmt.Errorf("ofproto/trace: %w", err)
	}
	r := parseTrace(out, want)
	r.Packet = pkt
	return r, nil
}

func hasAddrFamily(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x.Is4() == a.Is4() {
			return true
		}
	}
	return false
}

// portByAddr finds the ovsnet port on the bridge holding address a.
func (n *bridgeNetwork) portByAddr(ctx context.Context, a netip.Addr) (*flows.PortModel, error) {
	h, bridge := n.h, n.br.Name
	for _, s := range intent.DecodeBridge(bridge, n.br.ExternalIDs).Subnets {
		if !s.Prefix.Contains(a) {
			continue
		}
		rs, err := h.DB.Read(ctx, alloc.AddrProbe(bridge, netip.PrefixFrom(a, s.Prefix.Bits())))
		if err != nil || len(rs[0]) == 0 {
			return nil, err
		}
		c := intent.RefOf(ovsdb.ExternalIDsOf(rs[0][0])).Container
		ps, err := h.containerIfaces(ctx, bridge, c)
		for i := range ps {
			for _, x := range ps[i].Addrs {
				if x == a {
					return &ps[i], err
				}
			}
		}
		return nil, err
	}
	return nil, nil
}

// gatewayMAC is the MAC of the bridge's own port (the gateway): the one
// ovsnet fixed at add-br, or the one ovs-vswitchd uses.
func (n *bridgeNetwork) gatewayMAC(ctx context.Context) (string, error) {
	br := n.br
	if m := br.OtherConfig["hwaddr"]; m != "" {
		return m, nil
	}
	is, err := ovsdb.Select[vswitchd.Interface](ctx, n.h.DB, []ovsdbops.Condition{ovsdb.NameIs(br.Name)}, "name", "mac_in_use")
	if err != nil || len(is) == 0 || is[0].MACInUse == nil {
		return "", fmt.Errorf("no MAC known for bridge %s's own port: is ovs-vswitchd running? (%v)", br.Name, err)
	}
	return *is[0].MACInUse, nil
}

// PacketSpec is the ofproto/trace flow for the first packet of a connection.
func PacketSpec(inPort int, srcMAC, dstMAC string, src, dst netip.Addr, proto string, dport int) (string, error) {
	l3 := fmt.Sprintf("nw_src=%s,nw_dst=%s", src, dst)
	v6 := ""
	if src.Is6() {
		l3, v6 = fmt.Sprintf("ipv6_src=%s,ipv6_dst=%s", src, dst), "6"
	}
	var l4 string
	switch proto {
	case "", "icmp":
		if dport != 0 {
			return "", fmt.Errorf("--dport needs --proto tcp or udp")
		}
		l4 = "icmp,icmp_type=8,icmp_code=0"
		if v6 != "" {
			l4 = "icmp6,icmp_type=128,icmp_code=0"
		}
	case "tcp", "udp":
		if dport < 1 || dport > 65535 {
			return "", fmt.Errorf("--proto %s needs --dport in 1..65535", proto)
		}
		l4 = fmt.Sprintf("%s%s,%s_src=40000,%s_dst=%d", proto, v6, proto, proto, dport)
		if proto == "tcp" {
			l4 += ",tcp_flags=0x002" // SYN: the first packet
		}
	default:
		return "", fmt.Errorf("unknown protocol %q: use icmp, tcp or udp", proto)
	}
	// Protocol first, then every field after the ones it depends on.
	proto4, l4fields, _ := strings.Cut(l4, ",")
	return fmt.Sprintf("%s,in_port=%d,dl_src=%s,dl_dst=%s,%s,%s", proto4, inPort, srcMAC, dstMAC, l3, l4fields), nil
}

var (
	stepRE = regexp.MustCompile(`^\s*(\d+)\. (.*?)(?:, )?priority (\d+)`)
	missRE = regexp.MustCompile(`^\s*(\d+)\. No match`)
	dpRE   = regexp.MustCompile(`^Datapath actions: (.*)$`)
	outRE  = regexp.MustCompile(`-> output port is (\S+)`)
)

// parseTrace reads ofproto/trace output: the tables passed and the final
// datapath actions (after any conntrack recirculation).
func parseTrace(out, want string) *TraceResult {
	r := &TraceResult{Raw: out}
	var last *TraceStep
	final := ""
	delivered := false
	for _, l := range strings.Split(out, "\n") {
		if m := stepRE.FindStringSubmatch(l); m != nil {
			t, _ := strconv.Atoi(m[1])
			p, _ := strconv.Atoi(m[3])
			r.Steps = append(r.Steps, TraceStep{Table: t, Stage: flows.Table(t).Describe(), Match: strings.TrimSuffix(m[2], ","), Priority: p})
			last = &r.Steps[len(r.Steps)-1]
			continue
		}
		if m := missRE.FindStringSubmatch(l); m != nil {
			t, _ := strconv.Atoi(m[1])
			r.Steps = append(r.Steps, TraceStep{Table: t, Stage: flows.Table(t).Describe(), Match: "no flow", Priority: -1, Actions: "drop"})
			last = &r.Steps[len(r.Steps)-1]
			continue
		}
		if m := dpRE.FindStringSubmatch(l); m != nil {
			final = strings.TrimSpace(m[1])
			continue
		}
		if m := outRE.FindStringSubmatch(l); m != nil && last != nil && m[1] == want {
			delivered = true
		}
		if last != nil && strings.HasPrefix(l, "    ") && !strings.HasPrefix(strings.TrimSpace(l), "->") {
			a := strings.TrimSpace(l)
			// Conntrack's bookkeeping: the pre-recirculation pipeline "drops"
			// and the packet thaws in the ct() table.
			if a == "thaw" || strings.HasPrefix(a, "Resuming from table") || (a == "drop" && strings.HasPrefix(last.Actions, "ct(")) {
				continue
			}
			if last.Actions != "" {
				last.Actions += ", "
			}
			last.Actions += a
		}
	}
	// Allowed means the pipeline output the packet to the destination's port
	// and the datapath really sends it ("drop", or only conntrack and
	// recirculation, is no delivery).
	r.Allowed = delivered && containsOutput(final)
	if r.Allowed {
		r.Verdict = "allowed"
		return r
	}
	r.Verdict = "dropped (" + dropReason(last) + ")"
	return r
}

func containsOutput(dp string) bool {
	for _, a := range strings.Split(dp, ",") {
		if _, err := strconv.Atoi(strings.TrimSpace(a)); err == nil {
			return true
		}
	}
	return false
}

// dropReason explains the last table a dropped packet passed.
func dropReason(s *TraceStep) string {
	if s == nil {
		return "no flow took the packet"
	}
	t := flows.Table(s.Table)
	where := fmt.Sprintf("table %d, %s", s.Table, t.Describe())
	switch {
	case t == flows.TableClassifier:
		return where + ": the packet came in on a port ovsnet does not know"
	case t == flows.TableSpoofGuard && s.Priority == flows.PrioGuard:
		return where + ": containers may not send router advertisements or DHCP server replies"
	case t == flows.TableSpoofGuard:
		return where + ": the source MAC or address is not the port's own"
	case t == flows.TableARPND:
		return where + ": nobody on this bridge owns the target address"
	case t == flows.TableL2:
		return where + ": the destination MAC is not on this bridge in this VLAN"
	case t == flows.TableIsolation:
		return where + ": non-IP traffic between containers is not allowed with icc=false"
	case t == flows.TableLinks:
		return where + ": no link allows this new connection"
	}
	return where
}

// DatapathActions is what ofproto/trace's output out says the datapath
// does with the packet ("none": nothing).
func DatapathActions(out string) string {
	final := "none"
	for _, l := range strings.Split(out, "\n") {
		if m := dpRE.FindStringSubmatch(l); m != nil {
			final = strings.TrimSpace(m[1])
		}
	}
	return final
}
