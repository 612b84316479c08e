package cni

import (
	"context"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/network"
)

// result is ADD's answer: the host's end (a veth's; an internal port has
// none), the container's interface with its addresses, and the default
// routes the attach gave it.
func result(c *NetConf, p *network.PortView, args *skel.CmdArgs, ipamResult *current.Result) (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion, DNS: c.DNS}
	if ipamResult != nil && len(c.DNS.Nameservers) == 0 {
		res.DNS = ipamResult.DNS
	}
	if p.Type == attach.TypeVeth {
		res.Interfaces = append(res.Interfaces, &current.Interface{Name: p.OVSPort})
	}
	idx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces, &current.Interface{Name: args.IfName, Mac: p.MAC, Sandbox: args.Netns})
	for _, a := range p.Addresses {
		pr, err := netip.ParsePrefix(a)
		if err != nil {
			continue
		}
		ipc := &current.IPConfig{Interface: &idx, Address: ipNet(pr)}
		for _, g := range p.Gateways {
			if gw, err := netip.ParseAddr(g); err == nil && gw.Is4() == pr.Addr().Is4() {
				ipc.Gateway = gw.AsSlice()
			}
		}
		res.IPs = append(res.IPs, ipc)
	}
	routes, err := defaultRoutes(args.Netns, args.IfName)
	if err != nil {
		return nil, types.NewError(types.ErrInternal, "read the container's routes: "+err.Error(), "")
	}
	res.Routes = routes
	return res, nil
}

func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// defaultRoutes are the default routes through ifname in the namespace.
func defaultRoutes(netns, ifname string) ([]*types.Route, error) {
	var out []*types.Route
	err := ns.WithNetNSPath(netns, func(ns.NetNS) error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		rs, err := netlinksafe.RouteList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Gw == nil || (r.Dst != nil && !isDefault(r.Dst)) {
				continue
			}
			dst := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
			if r.Gw.To4() == nil {
				dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
			}
			out = append(out, &types.Route{Dst: dst, GW: r.Gw})
		}
		return nil
	})
	return out, err
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

// delegateAdd runs the configuration's IPAM plugin.
func delegateAdd(plugin string, stdin []byte) (*current.Result, error) {
	r, err := invoke.DelegateAdd(context.Background(), plugin, stdin, nil)
	if err != nil {
		return nil, err
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "IPAM plugin "+plugin+"'s result: "+err.Error(), "")
	}
	if len(res.IPs) == 0 {
		invoke.DelegateDel(context.Background(), plugin, stdin, nil)
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "IPAM plugin "+plugin+" gave no address", "")
	}
	return res, nil
}

// ipamAddresses are delegated IPAM's addresses as the engine takes them,
// and the IPv4 gateway it gave.
func ipamAddresses(r *current.Result) (addrs []string, gateway string) {
	for _, ip := range r.IPs {
		addrs = append(addrs, ip.Address.String())
		if ip.Gateway != nil && ip.Gateway.To4() != nil && gateway == "" {
			gateway = ip.Gateway.String()
		}
	}
	return addrs, gateway
}

// ipamSubnets are the subnets of delegated IPAM's addresses, and their
// gateways: the bridge's, when the first ADD makes it.
func ipamSubnets(r *current.Result) (subnets, gateways []string) {
	if r == nil {
		return nil, nil
	}
	for _, ip := range r.IPs {
		p, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			continue
		}
		ones, _ := ip.Address.Mask.Size()
		subnets = append(subnets, netip.PrefixFrom(p.Unmap(), ones).Masked().String())
		if ip.Gateway != nil {
			gateways = append(gateways, ip.Gateway.String())
		}
	}
	if len(gateways) != len(subnets) {
		gateways = nil // the bridge derives them
	}
	return subnets, gateways
}
