package network

import (
	"context"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/dockernet"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/controller/network/trace"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Network is the network one operation acts on, resolved once from the
// name a user or runtime gave (Host.Network): one of this host's bridges
// (bridgeNetwork), or an OVN network whose ports are on the chassis'
// integration bridge (Backend). It holds what differs between the two;
// everything else (rows, devices, the runtime's side, NAT rules) is the
// same code for both. The caller closes it.
type Network interface {
	// Name is the network's name, as given.
	Name() string
	// Bridge is the OVS bridge that holds the network's ports here.
	Bridge() string
	// Allocator is how the attach engine reads the network and allocates
	// for specs (count items, from a list or one request).
	Allocator(count int, list bool) Allocator
	// Ensure checks that the network has the settings a runtime's
	// configuration gives it (a bridge made by add-br must match them).
	Ensure(ctx context.Context, b BridgeOptions) error
	// Holds says whether ifc, an interface on Bridge, is the network's.
	Holds(ifc vswitchd.Interface) bool
	// ChangeLink edits a link's keys in the network's intent, guarded by
	// the intent as read, and brings isolation to it.
	ChangeLink(ctx context.Context, c links.Change) error
	// Trace follows a packet through the network's pipeline.
	Trace(ctx context.Context, o trace.Options) (*trace.Result, error)
	// NATBridge is NAT's view of the network on this host (ok false: it
	// has no NAT here, nothing to publish).
	NATBridge(ctx context.Context) (b nat.Bridge, ok bool, err error)
	// Refuse says why the network cannot do what a flow-level setting
	// asks (VLANs, flood bounds); nil if it can.
	Refuse(what Setting) error
	Close()
}

// Setting is a per-port setting that only ovsnet's own pipeline carries.
type Setting int

const (
	SettingVLAN Setting = iota
	SettingFloodLimit
	SettingDefaultRate // a network-wide default rate limit
	SettingDropMarks   // a capture's marks on what the pipeline drops
)

// Network resolves name: this host's bridge of that name, else the OVN
// network of that name if this host is a chassis that joined a northbound
// database holding one, else what the Docker network of that name stands
// for (its bridge, or its OVN network); none is ErrNoBridge. The network's
// Name is then what ovsnet calls it (a Docker network's bridge).
func (h *Host) Network(ctx context.Context, name string) (Network, error) {
	nameErr := attach.CheckName("bridge", name)
	if nameErr == nil {
		if n, err := h.network(ctx, name); err != nil || n != nil {
			return n, err
		}
	}
	alias, err := dockernet.Lookup(ctx, h.DB, name)
	if err != nil {
		return nil, err
	}
	if alias != "" && attach.CheckName("bridge", alias) == nil {
		if n, err := h.network(ctx, alias); err != nil || n != nil {
			return n, err
		}
	}
	if nameErr != nil {
		return nil, nameErr
	}
	return nil, NoBridge(name)
}

// network is this host's bridge, else OVN's network, called name; nil if
// neither has it.
func (h *Host) network(ctx context.Context, name string) (Network, error) {
	br, err := h.DB.GetBridge(ctx, name)
	if err != nil || br != nil {
		if br == nil {
			return nil, err
		}
		return &bridgeNetwork{h: h, br: br}, nil
	}
	if h.OVN == nil {
		return nil, nil
	}
	return h.OVN.Open(ctx, h, name)
}

// Backend is the kind of network that is not one of this host's bridges:
// OVN's (package ovn), whose networks span chassis and whose ports this
// host plugs into OVN's integration bridge. network knows it only
// through this interface.
type Backend interface {
	// Open is the backend's network called name, nil if it has none.
	Open(ctx context.Context, h *Host, name string) (Network, error)
	// Detach removes the backend's side of interfaces ifs being
	// detached: rows IsLogical says are the backend's.
	Detach(ctx context.Context, h *Host, ifs []vswitchd.Interface) error
}

// bridgeNetwork is one of this host's bridges: ovsnet's pipeline, its
// flows written by ovsnet.
type bridgeNetwork struct {
	h  *Host
	br *vswitchd.Bridge // as resolved
}

func (b *bridgeNetwork) Name() string   { return b.br.Name }
func (b *bridgeNetwork) Bridge() string { return b.br.Name }
func (b *bridgeNetwork) Close()         {}

// Allocator: add-port probes (O(1) rows, whatever the bridge's size);
// add-ports and the pool read the bridge once for the whole list.
func (b *bridgeNetwork) Allocator(count int, list bool) Allocator {
	if !list && count == 1 {
		return probeAllocator{}
	}
	return scanAllocator{}
}

// Holds: a bridge's interfaces are all its own (an OVN network's are
// marked as such, on OVN's integration bridge).
func (b *bridgeNetwork) Holds(ifc vswitchd.Interface) bool {
	return ifc.ExternalIDs[intent.KeyOVNNetwork] == ""
}

func (b *bridgeNetwork) NATBridge(context.Context) (nat.Bridge, bool, error) {
	nb, ok := natplan.BridgeOf(intent.DecodeBridge(b.br.Name, b.br.ExternalIDs))
	return nb, ok, nil
}

func (b *bridgeNetwork) Refuse(Setting) error { return nil }

func (b *bridgeNetwork) Ensure(ctx context.Context, o BridgeOptions) error {
	return b.h.EnsureBridge(ctx, b.br, o)
}
