package network

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// portRequest is add-port's options, parsed and checked.
type portRequest struct {
	mac       net.HardwareAddr
	gateway   netip.Addr
	requested []netip.Prefix
	auto      bool
	publish   []nat.Mapping
}

// checkNames checks the names a request gives: the bridge's, the
// interface's in the container, the runtime's for the container.
func (o PortOptions) checkNames() error {
	if err := attach.CheckName("bridge", o.Bridge); err != nil {
		return err
	}
	if err := attach.CheckName("interface", o.Iface); err != nil && !o.Pooled {
		return err
	}
	if o.Iface == "lo" {
		return fmt.Errorf("interface name lo is the container's loopback: name another (eth1)")
	}
	if o.Name != "" {
		return intent.CheckRuntimeName(o.Name)
	}
	return nil
}

// parsePortOptions checks what can be checked without reading anything.
func parsePortOptions(o PortOptions) (*portRequest, error) {
	if err := o.checkNames(); err != nil {
		return nil, err
	}
	if err := attach.CheckMTU(o.MTU); err != nil {
		return nil, err
	}
	if o.VLAN != 0 && (o.VLAN < 1 || o.VLAN > 4094) {
		return nil, fmt.Errorf("VLAN %d is outside 1..4094", o.VLAN)
	}
	if err := CheckFloodPPS(o.FloodPPS); err != nil {
		return nil, err
	}
	if o.Type != "" && o.Type != attach.TypeVeth && o.Type != attach.TypeInternal {
		return nil, fmt.Errorf("unknown attach type %q: use veth or internal", o.Type)
	}
	if err := o.Rate.WithBursts().Check(); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	if o.Handoff != nil && o.Netns != "" {
		return nil, fmt.Errorf("a port handed off to a runtime has no namespace of ovsnet's")
	}
	if h := o.Handoff; h != nil {
		if o.Type != attach.TypeVeth {
			return nil, fmt.Errorf("a port %s moves into its container is a veth", h.Runtime)
		}
		if err := attach.CheckName("interface", h.Name); err != nil {
			return nil, err
		}
	}
	var mac net.HardwareAddr
	if o.MAC != "" {
		m, err := ipam.ParseMAC(o.MAC)
		if err != nil {
			return nil, err
		}
		mac = m
	}
	var gateway netip.Addr
	if o.Gateway != "" {
		g, err := netip.ParseAddr(o.Gateway)
		if err != nil {
			return nil, fmt.Errorf("malformed gateway %q: want an address such as 172.16.1.1", o.Gateway)
		}
		gateway = g
	}
	auto := false
	var requested []netip.Prefix
	for _, a := range o.Addresses {
		if a == "auto" {
			auto = true
			continue
		}
		p, err := ipam.ParseRequest(a)
		if err != nil {
			return nil, err
		}
		for _, r := range requested {
			if r.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("two %s addresses (%s, %s): give at most one per family", ipam.Family(p.Addr()), r.Addr(), p.Addr())
			}
		}
		requested = append(requested, p)
	}

	var publish []nat.Mapping
	for _, p := range o.Publish {
		m, err := nat.ParseMapping(p)
		if err != nil {
			return nil, err
		}
		publish = append(publish, m)
	}

	return &portRequest{mac: mac, gateway: gateway, requested: requested, auto: auto, publish: publish}, nil
}

// checkOn checks the request against the bridge's settings before anything
// is touched, returning the bridge's subnets and NAT settings.
func (rq *portRequest) checkOn(br intent.Bridge) (subnets []ipam.Subnet, nb nat.Bridge, err error) {
	if br.SubnetsErr != nil {
		return nil, nb, br.SubnetsErr
	}
	subnets = br.Subnets
	if rq.auto && len(subnets) == 0 {
		return nil, nb, fmt.Errorf("--ip without an address needs a subnet on bridge %s: give --ip=ADDR/PLEN, or recreate the bridge with --subnet", br.Name)
	}
	nb, natOK := natplan.BridgeOf(br)
	if len(rq.publish) > 0 && (!natOK || !nb.NAT) {
		return nil, nb, fmt.Errorf("-p needs a bridge in NAT mode (--nat=true with an IPv4 subnet); %s is not", br.Name)
	}
	if len(rq.publish) > 0 && !rq.auto && !alloc.HasFamily(rq.requested, netip.IPv4Unspecified()) {
		return nil, nb, fmt.Errorf("-p needs an IPv4 address on the interface: add --ip")
	}
	// Reject a bad explicit address or gateway before touching anything.
	var onLink []netip.Prefix
	for _, r := range rq.requested {
		p, err := ipam.Validate(r, subnets, nil)
		if err != nil {
			return nil, nb, err
		}
		onLink = append(onLink, p.Masked())
	}
	if rq.auto {
		for _, s := range subnets {
			onLink = append(onLink, s.Prefix)
		}
	}
	if rq.gateway.IsValid() {
		ok := false
		for _, p := range onLink {
			ok = ok || p.Contains(rq.gateway)
		}
		if !ok {
			return nil, nb, fmt.Errorf("gateway %s is not on the interface's %s subnet: give a gateway inside it", rq.gateway, ipam.Family(rq.gateway))
		}
	}
	return subnets, nb, nil
}

// macFree refuses a MAC that a port of the bridge (holder, "" for none) or
// the bridge's own port has: the impostor would take the other's traffic.
func macFree(br *vswitchd.Bridge, mac net.HardwareAddr, holder string) error {
	if holder != "" {
		return fmt.Errorf("MAC %s is already used on bridge %s by %s: choose another --macaddress, or none", mac, br.Name, holder)
	}
	if gw, err := net.ParseMAC(br.OtherConfig["hwaddr"]); err == nil && gw.String() == mac.String() {
		return fmt.Errorf("MAC %s is bridge %s's own (its gateway's): choose another --macaddress, or none", mac, br.Name)
	}
	return nil
}
