package docker

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ratelimit"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// endpointInterface is an endpoint's addresses and MAC, as Docker and the
// driver exchange them.
type endpointInterface struct {
	Address     string `json:",omitempty"` // ADDR/PLEN
	AddressIPv6 string `json:",omitempty"`
	MacAddress  string `json:",omitempty"`
}

type createEndpointRequest struct {
	NetworkID, EndpointID string
	Interface             *endpointInterface
	Options               map[string]any
}

type endpointRequest struct {
	NetworkID, EndpointID string
}

// The container's end of an endpoint's veth, until Docker moves it in and
// names it eth0, eth1...: "ovd" and 11 characters of the endpoint's ID.
func linkName(endpoint string) string { return "ovd" + short(endpoint, 11) }

// endpointIface is what the plugin calls every endpoint's interface in
// ovsnet's records: the container is the endpoint (its ID), and Docker
// names the interface in the container.
const endpointIface = "docker"

// createEndpoint attaches the endpoint to its network's bridge with the
// attach engine, leaving the veth's container end for Docker to take: the
// addresses are Docker's IPAM's (or, with none given, ovsnet's lowest free
// ones), the MAC Docker's or derived from the IPv4 address.
func (p *Plugin) createEndpoint(ctx context.Context, req *createEndpointRequest) (any, error) {
	b, err := p.network(ctx, req.NetworkID)
	if err != nil {
		return nil, err
	}
	if b.Docker.Err != nil {
		return nil, errorf("%v", b.Docker.Err)
	}
	o := network.PortOptions{Bridge: b.Name, Iface: endpointIface, Container: req.EndpointID, Type: "veth", VLAN: b.Docker.VLAN,
		Handoff: &network.Handoff{Runtime: Runtime, Netns: p.Netns, Name: linkName(req.EndpointID)}}
	given := req.Interface != nil && (req.Interface.Address != "" || req.Interface.AddressIPv6 != "" || req.Interface.MacAddress != "")
	if in := req.Interface; in != nil {
		for _, a := range []string{in.Address, in.AddressIPv6} {
			if a != "" {
				o.Addresses = append(o.Addresses, a)
			}
		}
		o.MAC = in.MacAddress
	}
	if len(o.Addresses) == 0 {
		o.Addresses = []string{"auto"}
	}
	for _, k := range []string{optRate, optInRate, optOutRate} { // --driver-opt: this endpoint's own cap
		if v, ok := req.Options[k]; ok {
			if err := rateOption(&o.Rate, k, fmt.Sprint(v)); err != nil {
				return nil, errorf("bad --driver-opt %s=%v: %v", k, v, err)
			}
		}
	}
	port, err := p.Host.AddPort(ctx, o)
	if err != nil {
		return nil, errorf("%v", err)
	}
	for _, a := range port.Addresses {
		if pr, err := netip.ParsePrefix(a); err == nil {
			p.pending.hold(poolPrefix+pr.Masked().String(), pr.Addr(), false) // in OVSDB now
		}
	}
	if given {
		// Docker rolls back an endpoint whose driver answers an interface
		// it was given.
		return struct{}{}, nil
	}
	out := endpointInterface{MacAddress: port.MAC}
	for _, a := range port.Addresses {
		if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is4() {
			out.Address = a
		} else {
			out.AddressIPv6 = a
		}
	}
	return map[string]any{"Interface": out}, nil
}

// deleteEndpoint returns the endpoint's port to the warm pool (Docker has
// moved its link back to dockerd's namespace under the name it was given:
// the pool takes it from there), or detaches it (its veth, if Docker has
// not destroyed it with the container's namespace, its flows and rows).
func (p *Plugin) deleteEndpoint(ctx context.Context, req *endpointRequest) (any, error) {
	if p.Deleted != nil {
		p.Deleted(req.EndpointID)
	}
	bridge, err := p.bridgeName(ctx, req.NetworkID)
	if err != nil {
		return nil, err
	}
	return struct{}{}, p.Host.DelPortIfAttached(ctx, network.PortOptions{Bridge: bridge, Iface: endpointIface, Container: req.EndpointID,
		Handoff: &network.Handoff{Runtime: Runtime, Netns: p.Netns, Name: linkName(req.EndpointID)}})
}

type joinRequest struct {
	NetworkID, EndpointID, SandboxKey string
	Options                           map[string]any
}

// shapeWhenMoved caps what a capped endpoint's container sends once
// Docker has moved its link into the sandbox, which it does after Join
// returns (a queue does not move with a link); for a starting container
// the sandbox's key file becomes its namespace only then too. It tries for
// up to moveWait. This serves a container's start and a running
// container's connect alike.
func (p *Plugin) shapeWhenMoved(ifc vswitchd.Interface, sandbox string) {
	ctx, cancel := context.WithTimeout(context.Background(), moveWait)
	defer cancel()
	for {
		err := ratelimit.ShapeSide(ctx, ifc, sandbox)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			if p.Log != nil {
				p.Log.Error("cap what an endpoint's container sends: its link did not arrive in the sandbox", "port", ifc.Name, "sandbox", sandbox, "err", err)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// moveWait bounds how long shapeWhenMoved waits for Docker's move.
const moveWait = 30 * time.Second

// join hands Docker the endpoint's link to move into the sandbox, and the
// gateways for its default routes (none on an internal network).
func (p *Plugin) join(ctx context.Context, req *joinRequest) (any, error) {
	b, err := p.network(ctx, req.NetworkID)
	if err != nil {
		return nil, err
	}
	ifs, err := p.Host.DB.FindInterfaces(ctx, intent.OfContainer(req.EndpointID, endpointIface))
	if err != nil {
		return nil, err
	}
	if len(ifs) == 0 {
		return nil, errorf("endpoint %s has no port (removed behind Docker's back?): restart the container", short(req.EndpointID, 12))
	}
	pi, err := intent.DecodePort(network.IfaceRow(ifs[0]), ifs[0].ExternalIDs)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"InterfaceName": map[string]string{"SrcName": linkName(req.EndpointID), "DstPrefix": "eth"}}
	if p.Joined != nil {
		p.Joined(req.EndpointID)
	}
	if _, capped := ifs[0].ExternalIDs[intent.KeyRate]; capped && req.SandboxKey != "" {
		go p.shapeWhenMoved(ifs[0], inDockerd(ctx, req.SandboxKey))
	}
	if b.Docker.Internal {
		return resp, nil
	}
	for _, g := range pi.Gateways {
		if g.Is4() {
			resp["Gateway"] = g.String()
		} else {
			resp["GatewayIPv6"] = g.String()
		}
	}
	return resp, nil
}
