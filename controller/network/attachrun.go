package network

import (
	"net"
	"net/netip"

	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// What a Backend's Allocator sees of an attach: the run's bridge and
// settings, and each item's request and allocation. The engine does the
// rest (rows, devices, the container's side, NAT, rollback).

// Host is the host the attach is on.
func (r *AttachRun) Host() *Host { return r.h }

// Items are the container interfaces being attached.
func (r *AttachRun) Items() []*AttachItem { return r.items }

// Bridge is the OVS bridge the ports go on.
func (r *AttachRun) Bridge() string { return r.bridge }

// Datapath is that bridge's datapath type.
func (r *AttachRun) Datapath() string { return datapath.Of(r.br) }

// UsePorts puts the ports on bridge br (a backend's own: OVN's
// integration bridge), with the network's subnets and MTU, publishing
// through gateway (what NAT knows it as).
func (r *AttachRun) UsePorts(br *vswitchd.Bridge, subs []ipam.Subnet, mtu int, gateway nat.Bridge) error {
	r.bridge = br.Name
	if err := r.setBridge(br); err != nil {
		return err
	}
	r.bi.Subnets, r.bi.MTU = subs, mtu
	r.subnets, r.nb = subs, gateway
	return nil
}

// Options is the item's request.
func (it *AttachItem) Options() PortOptions { return it.o }

// AnyAddress says whether the item leaves its addresses, MAC and gateway
// to the network (--ip with no value).
func (it *AttachItem) AnyAddress() bool {
	rq := it.rq
	return rq.auto && len(rq.requested) == 0 && rq.mac == nil && !rq.gateway.IsValid()
}

// HostName is the item's OVS port name.
func (it *AttachItem) HostName() string { return it.host }

// SetHostName names the item's OVS port.
func (it *AttachItem) SetHostName(name string) { it.host = name }

// MAC and Addrs are the item's, once assigned.
func (it *AttachItem) MAC() net.HardwareAddr { return it.port.MAC }
func (it *AttachItem) Addrs() []netip.Prefix { return it.addrs }

// Logical is an item's allocation on a backend's network.
type Logical struct {
	Addrs    []netip.Prefix
	Gateways []netip.Addr // the default routes (none: no way out)
	Network  string
	// NoTxOffload: the container computes its own checksums (a tunnel
	// that cannot encapsulate offloaded packets).
	NoTxOffload bool
}

// Assign gives item it its allocation on the backend's network: its
// intent and what its container's interface gets.
func (r *AttachRun) Assign(it *AttachItem, l Logical) {
	it.addrs, it.ofport = l.Addrs, 0
	r.fill(it, r.subnets, nil, func() bool { return false })
	it.port.Gateways, it.port.Network, it.port.IfaceID = l.Gateways, l.Network, it.host
	it.port.NoTxOffload = it.port.NoTxOffload || l.NoTxOffload
	it.cfg = portConfig(it.port, it.o.routes())
	it.handOff() // a runtime's link keeps the runtime's name
}
