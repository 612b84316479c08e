package trace

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/appctl"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/flows"
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
// with ofproto/trace, and says where it went.
func (b Bridge) Trace(ctx context.Context, o Options) (*Result, error) {
	from, err := b.Ports(ctx, o.From)
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
		if p, err := b.portByAddr(ctx, a); err != nil {
			return nil, err
		} else if p != nil {
			dstMAC, want = p.MAC.String(), strconv.Itoa(p.Ofport)
		}
	} else {
		to, err := b.Ports(ctx, o.To)
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
		gw, err := b.gatewayMAC(ctx)
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
	r := Parse(out, want)
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
func (b Bridge) portByAddr(ctx context.Context, a netip.Addr) (*flows.PortModel, error) {
	bridge := b.Br.Name
	for _, s := range intent.DecodeBridge(bridge, b.Br.ExternalIDs).Subnets {
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
