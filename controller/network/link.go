package network

import (
	"context"
	"fmt"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/flows"
)

// Link lets SRC open connections to DST on network NET (all protocols,
// or only the given ports); replies come back through conntrack. It is
// stored in the network's intent and needs both containers attached to it.
func (h *Host) Link(ctx context.Context, network, src, dst string, ports []string) (string, error) {
	rules, err := flows.ParseRules(ports)
	if err != nil {
		return "", err
	}
	if src == dst {
		return "", fmt.Errorf("a container needs no link to itself")
	}
	n, err := h.Network(ctx, network)
	if err != nil {
		return "", err
	}
	defer n.Close()
	spec := flows.RulesString(rules)
	return spec, n.ChangeLink(ctx, links.Change{Src: src, Dst: dst, Attached: true,
		Edit: func(_ intent.Bridge, src, dst string) (map[string]string, []string, error) {
			return intent.Link{Src: src, Dst: dst, Ports: spec}.Encode(), nil, nil
		}})
}

// Unlink removes the link SRC -> DST; there must be one.
func (h *Host) Unlink(ctx context.Context, network, src, dst string) error {
	n, err := h.Network(ctx, network)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.ChangeLink(ctx, links.Change{Src: src, Dst: dst, Edit: func(b intent.Bridge, src, dst string) (map[string]string, []string, error) {
		for _, l := range b.Links {
			if l.Src == src && l.Dst == dst {
				return nil, []string{intent.LinkKey(src, dst)}, nil
			}
		}
		return nil, nil, fmt.Errorf("no link from %s to %s on %s (see ovsnet show %s)", src, dst, network, network)
	}})
}

// ChangeLink edits the bridge's link keys under the bridge guard, then
// replaces that one link's flows in one bundle.
func (n *bridgeNetwork) ChangeLink(ctx context.Context, c links.Change) error {
	return links.Bridge{DB: n.h.DB, Flows: n.h.Flows, Br: n.br}.Change(ctx, c)
}
