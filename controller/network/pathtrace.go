package network

import (
	"context"

	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/controller/network/trace"
	"github.com/ovsnet/ovsnet/flows"
)

// Trace builds a packet from the endpoints' real MACs and addresses, runs it
// through the bridge's flow tables with ofproto/trace, and says where it
// went; on an OVN network, through OVN's logical pipelines (the network's
// Trace). Connection tracking is taken as a new connection (the first
// packet).
func (h *Host) Trace(ctx context.Context, o trace.Options) (*trace.Result, error) {
	n, err := h.Network(ctx, o.Bridge)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	o.Bridge = n.Name()
	return n.Trace(ctx, o)
}

// Trace on one of this host's bridges: ofproto/trace of the packet.
func (n *bridgeNetwork) Trace(ctx context.Context, o trace.Options) (*trace.Result, error) {
	ports := func(ctx context.Context, c string) ([]flows.PortModel, error) {
		return links.ContainerPorts(ctx, n.h.DB, n.br.Name, c)
	}
	return trace.Bridge{DB: n.h.DB, Br: n.br, Ports: ports}.Trace(ctx, o)
}
