package network

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
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
	return spec, n.ChangeLink(ctx, LinkChange{Src: src, Dst: dst, Attached: true,
		Edit: func(_ intent.Bridge, src, dst string) (map[string]string, []string, error) {
			return intent.Link{Src: src, Dst: dst, Ports: spec}.Encode(), nil, nil
		}})
}

// linkEnd is how a link names container c on the bridge: as it was
// attached, or, for a container Docker attached through ovsnet's network
// plugin (whose ports are named by endpoint), by its endpoint on the
// bridge.
func (n *bridgeNetwork) linkEnd(ctx context.Context, c string) (string, error) {
	h, bridge := n.h, n.br.Name
	if _, remote := intent.RemoteEnd(c); remote {
		return c, nil
	}
	if ps, err := h.containerIfaces(ctx, bridge, c); err != nil || len(ps) > 0 {
		return c, err
	}
	t, err := containers.Resolve(ctx, c)
	if err != nil || t.Name == "" {
		return c, nil // not a container Docker knows: named as given
	}
	if err := h.NameEndpoints(ctx, t.Name, t.Endpoints); err != nil {
		return c, err
	}
	return t.Name, nil
}

// NameEndpoints records name as the container of the runtime's endpoints
// (the Docker network driver's ports are made before their container is
// known): links name it so, and a restarted container's new endpoints,
// named again, keep its links.
func (h *Host) NameEndpoints(ctx context.Context, name string, endpoints []string) error {
	_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		for _, ep := range endpoints {
			ifs, err := h.DB.FindInterfaces(ctx, intent.OfContainer(ep, ""))
			if err != nil {
				continue
			}
			for _, i := range ifs {
				if ref := intent.RefOf(i.ExternalIDs); ref.Runtime != "" && ref.RuntimeName != name {
					tx.SetInterfaceExternalIDs(i.UUID, intent.RuntimeName(name))
				}
			}
		}
	})
	return err
}

// checkRemoteEnd accepts an address as a link's source when it belongs to
// another host's share of a network spanning hosts. Isolation across hosts
// is enforced where the destination is (traffic into a tunnel is let out
// and committed, so its replies pass), so a link to another host's
// container belongs on that host.
func checkRemoteEnd(b intent.Bridge, a netip.Addr, isDst bool) error {
	bridge := b.Name
	for _, s := range b.Subnets {
		if !s.Range.IsValid() || !s.Prefix.Contains(a) {
			continue
		}
		if s.Range.Contains(a) {
			return fmt.Errorf("%s is in this host's range %s: name the container instead", a, s.Range)
		}
		if isDst {
			return fmt.Errorf("a link to %s on another host is enforced there: on that host run `ovsnet link %s SRC_ADDRESS DST` with the source container's address", a, bridge)
		}
		return nil
	}
	return fmt.Errorf("%s is not in a network of %s that spans hosts (add-br --ip-range): links name local containers, or containers on other hosts by address", a, bridge)
}

// Unlink removes the link SRC -> DST; there must be one.
func (h *Host) Unlink(ctx context.Context, network, src, dst string) error {
	n, err := h.Network(ctx, network)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.ChangeLink(ctx, LinkChange{Src: src, Dst: dst, Edit: func(b intent.Bridge, src, dst string) (map[string]string, []string, error) {
		for _, l := range b.Links {
			if l.Src == src && l.Dst == dst {
				return nil, []string{intent.LinkKey(src, dst)}, nil
			}
		}
		return nil, nil, fmt.Errorf("no link from %s to %s on %s (see ovsnet show %s)", src, dst, network, network)
	}})
}

// linkEnds checks a new link's ends on the bridge (b, as read): local
// containers attached to it, or addresses in another host's share of it.
func (n *bridgeNetwork) linkEnds(ctx context.Context, b intent.Bridge, ends ...string) error {
	h := n.h
	for i, c := range ends {
		if a, ok := intent.RemoteEnd(c); ok {
			if err := checkRemoteEnd(b, a, i == 1); err != nil {
				return err
			}
			continue
		}
		ps, err := h.containerIfaces(ctx, b.Name, c)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return fmt.Errorf("container %q has no interface on %s: attach it first (ovsnet add-port %s INTERFACE %s)", c, b.Name, b.Name, c)
		}
	}
	return nil
}

// ChangeLink edits the bridge's link keys under the bridge guard, then
// replaces that one link's flows in one bundle.
func (n *bridgeNetwork) ChangeLink(ctx context.Context, c LinkChange) error {
	h, bridge := n.h, n.br.Name
	src, err := n.linkEnd(ctx, c.Src)
	if err != nil {
		return err
	}
	dst, err := n.linkEnd(ctx, c.Dst)
	if err != nil {
		return err
	}
	var br *vswitchd.Bridge
	var set map[string]string
	var del []string
	err = ovsdb.OnConflict(func() error {
		var err error
		if br, err = h.DB.GetBridge(ctx, bridge); err != nil {
			return err
		}
		if br == nil {
			return NoBridge(bridge)
		}
		bi := intent.DecodeBridge(bridge, br.ExternalIDs)
		if !bi.Owned {
			return fmt.Errorf("bridge %s was not made by ovsnet: links need its flow pipeline", bridge)
		}
		if c.Attached {
			if err := n.linkEnds(ctx, bi, src, dst); err != nil {
				return err
			}
		}
		if set, del, err = c.Edit(bi, src, dst); err != nil {
			return err
		}
		_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.GuardBridge(bridge, br.ExternalIDs, set, del...) })
		return err
	})
	if err != nil {
		return err
	}
	ext := map[string]string{}
	for k, v := range br.ExternalIDs {
		ext[k] = v
	}
	for _, k := range del {
		delete(ext, k)
	}
	for k, v := range set {
		ext[k] = v
	}
	mine, err := h.LinkChanges(ctx, bridge, intent.DecodeBridge(bridge, ext).Links, func(s, d string) bool { return s == src && d == dst }, nil)
	if err != nil {
		return err
	}
	if len(mine) == 0 { // unlinked: remove its flows
		mine = []flows.Change{{Cookie: flows.LinkCookie(src, dst), Mask: flows.ObjectMask}}
	}
	revokes := len(del) > 0
	for k := range set {
		_, had := br.ExternalIDs[k]
		revokes = revokes || had // a link's ports replaced: some may be gone
	}
	if !revokes {
		return h.Flows.Apply(bridge, mine...)
	}
	return h.revoke(ctx, bridge, mine...)
}

// revoke makes changes that take access away: once it returns, no packet
// takes a path the old flows allowed, cached in the datapath or not.
func (h *Host) revoke(ctx context.Context, bridge string, changes ...flows.Change) error {
	if err := h.Flows.Apply(bridge, changes...); err != nil {
		return err
	}
	if err := h.Flows.WaitRevalidated(ctx); err != nil {
		return fmt.Errorf("%s's flows are changed, but ovs-vswitchd did not confirm that its datapath's cached flows were rechecked, so packets may pass as before for a while (ovs-appctl revalidator/wait): %w", bridge, err)
	}
	return nil
}
