package trace

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/appctl"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Bridge is one of ovsnet's bridges as a trace reads it.
type Bridge struct {
	DB *ovsdb.Client
	Br *vswitchd.Bridge
	// Ports are container c's ports on the bridge, as flows model them
	// (none: it has none there).
	Ports func(ctx context.Context, c string) ([]flows.PortModel, error)
}

// Trace builds the packet o asks for from its endpoints' MACs and
// addresses on the bridge, runs it through the bridge's flow tables
// with ofproto/trace, and says where it went. On a network spanning hosts
// an address of another host's container is reached through the tunnels
// (its MAC the one ovsnet derives from its IPv4 address): the verdict is
// then that the packet leaves for the far host, whose pipeline decides;
// and a packet from such an address comes in through a tunnel.
func (b Bridge) Trace(ctx context.Context, o Options) (*Result, error) {
	bi := intent.DecodeBridge(b.Br.Name, b.Br.ExternalIDs)
	src, err := b.source(ctx, bi, o.From)
	if err != nil {
		return nil, err
	}
	dst, err := b.destination(ctx, bi, o.To, src)
	if err != nil {
		return nil, err
	}
	var srcAddr netip.Addr
	for _, a := range src.addrs {
		if a.Is4() == dst.addr.Is4() {
			srcAddr = a
		}
	}
	if !srcAddr.IsValid() {
		return nil, fmt.Errorf("container %q has no %s address", o.From, map[bool]string{true: "IPv4", false: "IPv6"}[dst.addr.Is4()])
	}
	pkt, err := PacketSpec(src.ofport, src.mac, dst.mac, srcAddr, dst.addr, o.Proto, o.DPort)
	if err != nil {
		return nil, err
	}
	out, err := appctl.Call(ctx, "ofproto/trace", o.Bridge, pkt)
	if err != nil {
		return nil, fmt.Errorf("ofproto/trace: %w", err)
	}
	r := Parse(out, dst.wants...)
	r.Packet = pkt
	if len(dst.remotes) > 0 && r.Allowed {
		r.Allowed, r.Remotes = false, dst.remotes
		r.Verdict = fmt.Sprintf("leaves through the tunnel for %s, whose pipeline decides (there: ovsnet trace %s --from %s --to %s)",
			strings.Join(dst.remotes, ", "), o.Bridge, srcAddr, dst.addr)
	}
	return r, nil
}

// end is one end of a traced packet on the bridge.
type end struct {
	ofport  int      // a source's: the packet's in_port
	wants   []string // a destination's: the OpenFlow ports that deliver it
	mac     string
	addrs   []netip.Addr
	addr    netip.Addr // a destination's address
	remotes []string   // another host's container: the tunnels' far ends
}

// source is the packet's sender: a container on the bridge (by name or
// address), or another host's container by its address, behind a tunnel.
func (b Bridge) source(ctx context.Context, bi intent.Bridge, from string) (end, error) {
	ps, err := b.Ports(ctx, from)
	if err != nil || len(ps) > 0 {
		if err != nil {
			return end{}, err
		}
		return end{ofport: ps[0].Ofport, mac: ps[0].MAC.String(), addrs: ps[0].Addrs}, nil
	}
	if a, err := netip.ParseAddr(from); err == nil {
		p, err := b.portByAddr(ctx, bi, a)
		if err != nil || p != nil {
			if err != nil {
				return end{}, err
			}
			return end{ofport: p.Ofport, mac: p.MAC.String(), addrs: p.Addrs}, nil
		}
		if e, ok := remoteEnd(bi, a); ok {
			e.ofport = bi.Tunnels[0].Ofport
			return e, nil
		}
	}
	return end{}, fmt.Errorf("container %q has no ovsnet interface on %s", from, b.Br.Name)
}

// destination is where the packet goes: a container on the bridge (by
// name or address; of its addresses the one of src's family), another
// host's container behind a tunnel, or, for any other address, the
// gateway (LOCAL).
func (b Bridge) destination(ctx context.Context, bi intent.Bridge, to string, src end) (end, error) {
	a, err := netip.ParseAddr(to)
	if err != nil {
		ps, err := b.Ports(ctx, to)
		if err != nil {
			return end{}, err
		}
		if len(ps) == 0 {
			return end{}, fmt.Errorf("container %q has no ovsnet interface on %s", to, b.Br.Name)
		}
		e := end{wants: []string{strconv.Itoa(ps[0].Ofport)}, mac: ps[0].MAC.String()}
		for _, x := range ps[0].Addrs {
			if !e.addr.IsValid() || (hasAddrFamily(src.addrs, x) && !hasAddrFamily(src.addrs, e.addr)) {
				e.addr = x
			}
		}
		if !e.addr.IsValid() {
			return end{}, fmt.Errorf("container %q has no address to trace to", to)
		}
		return e, nil
	}
	if p, err := b.portByAddr(ctx, bi, a); err != nil || p != nil {
		if err != nil {
			return end{}, err
		}
		return end{wants: []string{strconv.Itoa(p.Ofport)}, mac: p.MAC.String(), addr: a}, nil
	}
	if e, ok := remoteEnd(bi, a); ok {
		for _, t := range bi.Tunnels {
			e.wants = append(e.wants, strconv.Itoa(t.Ofport))
		}
		e.addr = a
		return e, nil
	}
	gw, err := b.gatewayMAC(ctx)
	return end{wants: []string{"65534"}, mac: gw, addr: a}, err // LOCAL
}

// remoteEnd is address a as another host's container: in the bridge's
// IPv4 subnet (ovsnet derives its MAC from it) on a bridge with tunnels.
func remoteEnd(bi intent.Bridge, a netip.Addr) (end, bool) {
	if len(bi.Tunnels) == 0 || !a.Is4() {
		return end{}, false
	}
	for _, s := range bi.Subnets {
		if s.Prefix.Contains(a) && a != s.Gateway {
			e := end{mac: ipam.MACFor([]netip.Prefix{netip.PrefixFrom(a, s.Prefix.Bits())}).String(), addrs: []netip.Addr{a}}
			for _, t := range bi.Tunnels {
				e.remotes = append(e.remotes, t.Remote)
			}
			return e, true
		}
	}
	return end{}, false
}

func hasAddrFamily(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x.Is4() == a.Is4() {
			return true
		}
	}
	return false
}

// portByAddr finds the ovsnet port on the bridge (bi, decoded) holding
// address a.
func (b Bridge) portByAddr(ctx context.Context, bi intent.Bridge, a netip.Addr) (*flows.PortModel, error) {
	bridge := b.Br.Name
	for _, s := range bi.Subnets {
		if !s.Prefix.Contains(a) {
			continue
		}
		rs, err := b.DB.Read(ctx, alloc.AddrProbe(bridge, netip.PrefixFrom(a, s.Prefix.Bits())))
		if err != nil || len(rs[0]) == 0 {
			return nil, err
		}
		c := intent.RefOf(ovsdb.ExternalIDsOf(rs[0][0])).Container
		ps, err := b.Ports(ctx, c)
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
func (b Bridge) gatewayMAC(ctx context.Context) (string, error) {
	br := b.Br
	if m := br.OtherConfig["hwaddr"]; m != "" {
		return m, nil
	}
	is, err := ovsdb.Select[vswitchd.Interface](ctx, b.DB, []ovsdbops.Condition{ovsdb.NameIs(br.Name)}, "name", "mac_in_use")
	if err != nil || len(is) == 0 || is[0].MACInUse == nil {
		return "", fmt.Errorf("no MAC known for bridge %s's own port: is ovs-vswitchd running? (%v)", br.Name, err)
	}
	return *is[0].MACInUse, nil
}
