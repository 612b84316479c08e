package ovn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/trace"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"

	"github.com/ovsnet/ovsnet/appctl"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
)

// traceNetwork traces on OVN network a: the packet as the source's logical
// port sends it, through the logical pipelines of every chassis, with
// ovn-trace over the southbound database (OVN has no library for it), as
// the first packet of a connection.
func traceNetwork(ctx context.Context, h *network.Host, a *ovnNetwork, o trace.Options) (*trace.Result, error) {
	ports, err := nb.SwitchPorts(ctx, a.nb, a.ls)
	if err != nil {
		return nil, err
	}
	src, err := lspOf(ports, a.name, o.From)
	if err != nil {
		return nil, err
	}
	dst, err := a.traceDestination(ctx, ports, &o)
	if err != nil {
		return nil, err
	}
	flow, err := ovnMicroflow(src, dst, o.Proto, o.DPort)
	if err != nil {
		return nil, err
	}
	// New to conntrack at every ct on its way (one per flag, in order: each
	// switch's pipelines and a load balancer's pick track, and ovn-trace
	// takes a ct beyond the flags given as established).
	args := []string{"--db=" + a.chassis.Remote}
	for range 6 {
		args = append(args, "--ct=new")
	}
	out, err := exec.CommandContext(ctx, "ovn-trace", append(args, a.name, flow)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ovn-trace: %v: %s", err, strings.TrimSpace(string(out)))
	}
	r := parseOVNTrace(string(out), dst.ports...)
	r.Packet = flow
	r.Local, err = localTrace(ctx, h, a.chassis.IntegrationBridge, src, dst, o)
	return r, err
}

// traceDst is where a trace sends its packet: an address, the MAC the
// source sends to (the destination's own, or the router's port), and the
// logical ports whose output counts as delivered (a service's backends).
type traceDst struct {
	addr  netip.Addr
	mac   string
	ports []string
}

// traceDestination finds to (a container, an address, or a service) on
// the network or on another network of its router. A service is traced
// to its address, on its port and protocol unless o gives them, and
// delivered when it reaches any of its backends.
func (a *ovnNetwork) traceDestination(ctx context.Context, ports []ovnnb.LogicalSwitchPort, o *trace.Options) (traceDst, error) {
	find := func(ps []ovnnb.LogicalSwitchPort) *ovnnb.LogicalSwitchPort {
		ip, perr := netip.ParseAddr(o.To)
		for i := range ps {
			if addrs := nb.Addrs(ps[i]); len(addrs) > 0 && (perr == nil && addrs[0] == ip || perr != nil && ps[i].ExternalIDs[intent.KeyContainerID] == o.To) {
				return &ps[i]
			}
		}
		return nil
	}
	if d := find(ports); d != nil {
		return traceDst{addr: nb.Addrs(*d)[0], mac: macOf(d), ports: []string{d.Name}}, nil
	}
	peers, err := nb.PeersOf(ctx, a.nb, a.name)
	if err != nil {
		return traceDst{}, err
	}
	d := find(peers.Ports)
	svc, err := a.traceService(ctx, append(slices.Clone(ports), peers.Ports...), o)
	if err != nil || d == nil && svc == nil {
		return traceDst{}, cmp.Or(err, fmt.Errorf("no container or service %q on OVN network %s nor on a network routed with it%s", o.To, a.name, peerList(peers.Networks)))
	}
	lrps, err := ovsdb.Select[ovnnb.LogicalRouterPort](ctx, a.nb, []ovsdbops.Condition{ovsdb.NameIs(nb.RouterPortName(a.name))}, "mac")
	if err != nil || len(lrps) == 0 {
		return traceDst{}, errors.Join(err, fmt.Errorf("network %s's router port is gone", a.name))
	}
	if svc != nil {
		svc.mac = lrps[0].MAC
		return *svc, nil
	}
	return traceDst{addr: nb.Addrs(*d)[0], mac: lrps[0].MAC, ports: []string{d.Name}}, nil
}

// traceService is service o.To as a trace's destination (nil: no such
// service): its address, its backends' ports among ports; o takes its
// protocol and port unless it names a port.
func (a *ovnNetwork) traceService(ctx context.Context, ports []ovnnb.LogicalSwitchPort, o *trace.Options) (*traceDst, error) {
	lbs, err := nb.Services(ctx, a.nb, o.To)
	if err != nil || len(lbs) == 0 {
		return nil, err
	}
	s, _, err := intent.DecodeService("load balancer "+lbs[0].Name, lbs[0].ExternalIDs)
	if err != nil {
		return nil, err
	}
	if o.DPort == 0 { // no port asked: the service's own
		o.Proto, o.DPort = s.Proto, int(s.VIP.Port())
	}
	d := &traceDst{addr: s.VIP.Addr()}
	for _, b := range s.Backends {
		if p, err := lspOf(ports, s.Network, b.Container); err == nil {
			d.ports = append(d.ports, p.Name)
		}
	}
	return d, nil
}

// macOf is a logical switch port's MAC.
func macOf(p *ovnnb.LogicalSwitchPort) string { return strings.Fields(p.Addresses[0])[0] }

// localTrace runs the packet through this chassis' integration bridge
// when the source's interface is here (ofproto/trace): what OVS does with
// it, OVN's flows as ovn-controller installed them, as its final datapath
// actions (a tunnel to the destination's chassis, an output, or drop).
// "" when the source is on another chassis.
func localTrace(ctx context.Context, h *network.Host, bridge string, src *ovnnb.LogicalSwitchPort, dst traceDst, o trace.Options) (string, error) {
	ifs, err := h.DB.FindInterfaces(ctx, map[string]string{intent.KeyIfaceID: src.Name})
	if err != nil || len(ifs) == 0 || ifs[0].Ofport == nil || *ifs[0].Ofport <= 0 {
		return "", err
	}
	pkt, err := trace.PacketSpec(*ifs[0].Ofport, macOf(src), dst.mac, nb.Addrs(*src)[0], dst.addr, o.Proto, o.DPort)
	if err != nil {
		return "", err
	}
	out, err := appctl.Call(ctx, "ofproto/trace", bridge, pkt)
	if err != nil {
		return "", fmt.Errorf("ofproto/trace: %w", err)
	}
	return fmt.Sprintf("ofproto/trace %s in_port %d: datapath actions %s", bridge, *ifs[0].Ofport, trace.DatapathActions(out)), nil
}

// lspOf is container c's logical port on the network (its first, if it
// has several).
func lspOf(ports []ovnnb.LogicalSwitchPort, network, c string) (*ovnnb.LogicalSwitchPort, error) {
	for i := range ports {
		if ports[i].ExternalIDs[intent.KeyContainerID] == c && len(nb.Addrs(ports[i])) > 0 {
			return &ports[i], nil
		}
	}
	return nil, fmt.Errorf("container %q has no port on OVN network %s", c, network)
}

// ovnMicroflow is ovn-trace's microflow for the first packet of a
// connection from src to dst.
func ovnMicroflow(src *ovnnb.LogicalSwitchPort, dst traceDst, proto string, dport int) (string, error) {
	f := fmt.Sprintf(`inport == %q && eth.src == %s && eth.dst == %s && ip4.src == %s && ip4.dst == %s && ip.ttl == 64`,
		src.Name, macOf(src), dst.mac, nb.Addrs(*src)[0], dst.addr)
	switch proto {
	case "", "icmp":
		if dport != 0 {
			return "", fmt.Errorf("--dport needs --proto tcp or udp")
		}
		return f + " && icmp4.type == 8 && icmp4.code == 0", nil
	case "tcp", "udp":
		if dport < 1 || dport > 65535 {
			return "", fmt.Errorf("--proto %s needs --dport in 1..65535", proto)
		}
		f += fmt.Sprintf(" && %s.src == 40000 && %s.dst == %d", proto, proto, dport)
		if proto == "tcp" {
			f += " && tcp.flags == 2" // SYN
		}
		return f, nil
	}
	return "", fmt.Errorf("unknown protocol %q: use icmp, tcp or udp", proto)
}

var ovnStepRE = regexp.MustCompile(`^\s*(\d+)\. (\S+) \([^)]*\): (.*), priority (\d+), uuid \S+$`)

// parseOVNTrace reads ovn-trace's detailed output: the logical stages
// passed, each with its match and actions, and whether the packet was
// output to a port named in want.
func parseOVNTrace(out string, want ...string) *trace.Result {
	r := &trace.Result{Raw: out}
	var last *trace.Step
	for _, l := range strings.Split(out, "\n") {
		if m := ovnStepRE.FindStringSubmatch(l); m != nil {
			t, _ := strconv.Atoi(m[1])
			p, _ := strconv.Atoi(m[4])
			r.Steps = append(r.Steps, trace.Step{Table: t, Stage: m[2], Match: m[3], Priority: p})
			last = &r.Steps[len(r.Steps)-1]
			continue
		}
		if a := strings.TrimSpace(l); last != nil && strings.HasPrefix(l, "    ") && a != "" && !strings.HasPrefix(a, "*") {
			if last.Actions != "" {
				last.Actions += " "
			}
			last.Actions += a
		}
		for _, w := range want {
			r.Allowed = r.Allowed || strings.Contains(l, fmt.Sprintf(`/* output to %q`, w))
		}
	}
	if r.Allowed {
		r.Verdict = "allowed"
		return r
	}
	switch {
	case last == nil:
		r.Verdict = "dropped (no logical flow took the packet)"
	case strings.Contains(last.Stage, "acl") && strings.Contains(last.Match, `inport == "`+nb.RouterSwitchPortName("")):
		r.Verdict = fmt.Sprintf("dropped (%s: %s, priority %d: from another network through the router, no link lets this new connection in)", last.Stage, last.Match, last.Priority)
	case strings.Contains(last.Stage, "acl"):
		r.Verdict = fmt.Sprintf("dropped (%s: %s, priority %d: isolation (icc=false), no link allows this new connection)", last.Stage, last.Match, last.Priority)
	case strings.Contains(last.Stage, "port_sec"):
		r.Verdict = fmt.Sprintf("dropped (%s: the source MAC or address is not the port's own)", last.Stage)
	default:
		r.Verdict = fmt.Sprintf("dropped (%s: %s, priority %d)", last.Stage, last.Match, last.Priority)
	}
	return r
}
