package network

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/ovsnet/ovsnet/appctl"
	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Link lets SRC open connections to DST on BRIDGE (all protocols, or only
// the given ports); replies come back through conntrack. It is stored on
// the bridge and needs both containers attached to it.
func (h *Host) Link(ctx context.Context, bridge, src, dst string, ports []string) (string, error) {
	rules, err := flows.ParseRules(ports)
	if err != nil {
		return "", err
	}
	if src == dst {
		return "", fmt.Errorf("a container needs no link to itself")
	}
	spec := flows.RulesString(rules)
	link := intent.Link{Src: src, Dst: dst, Ports: spec}
	if a, err := h.ovnInstead(ctx, bridge); err != nil || a != nil {
		if err != nil {
			return "", err
		}
		defer a.close()
		return spec, a.changeLink(ctx, src, dst, func(intent.Bridge) (map[string]string, []string, error) { return link.Encode(), nil, nil })
	}
	if src, err = h.linkEnd(ctx, bridge, src); err != nil {
		return "", err
	}
	if dst, err = h.linkEnd(ctx, bridge, dst); err != nil {
		return "", err
	}
	err = h.changeLink(ctx, bridge, src, dst, func(b intent.Bridge) (map[string]string, []string, error) {
		for _, c := range []string{src, dst} {
			if a, ok := RemoteAddr(c); ok {
				if err := checkRemoteEnd(b, a, c == dst); err != nil {
					return nil, nil, err
				}
				continue
			}
			ps, err := h.containerIfaces(ctx, bridge, c)
			if err != nil {
				return nil, nil, err
			}
			if len(ps) == 0 {
				return nil, nil, fmt.Errorf("container %q has no interface on %s: attach it first (ovsnet add-port %s INTERFACE %s)", c, bridge, bridge, c)
			}
		}
		return intent.Link{Src: src, Dst: dst, Ports: spec}.Encode(), nil, nil
	})
	return spec, err
}

// linkEnd is how a link names container c on bridge: as it was attached,
// or, for a container Docker attached through ovsnet's network plugin
// (whose ports are named by endpoint), by its endpoint on the bridge.
func (h *Host) linkEnd(ctx context.Context, bridge, c string) (string, error) {
	if _, remote := RemoteAddr(c); remote {
		return c, nil
	}
	if ps, err := h.containerIfaces(ctx, bridge, c); err != nil || len(ps) > 0 {
		return c, err
	}
	t, err := attach.Resolve(ctx, c)
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

// RemoteAddr says whether a link end names a container on another host,
// by its address.
func RemoteAddr(end string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(end)
	return a, err == nil
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
func (h *Host) Unlink(ctx context.Context, bridge, src, dst string) error {
	edit := func(b intent.Bridge) (map[string]string, []string, error) {
		for _, l := range b.Links {
			if l.Src == src && l.Dst == dst {
				return nil, []string{intent.LinkKey(src, dst)}, nil
			}
		}
		return nil, nil, fmt.Errorf("no link from %s to %s on %s (see ovsnet show %s)", src, dst, bridge, bridge)
	}
	if a, err := h.ovnInstead(ctx, bridge); err != nil || a != nil {
		if err != nil {
			return err
		}
		defer a.close()
		return a.changeLink(ctx, src, dst, edit)
	}
	var err error
	if src, err = h.linkEnd(ctx, bridge, src); err != nil {
		return err
	}
	if dst, err = h.linkEnd(ctx, bridge, dst); err != nil {
		return err
	}
	return h.changeLink(ctx, bridge, src, dst, edit)
}

// changeLink edits the bridge's link keys under the bridge guard, then
// replaces that one link's flows in one bundle.
func (h *Host) changeLink(ctx context.Context, bridge, src, dst string, edit func(intent.Bridge) (map[string]string, []string, error)) error {
	if err := CheckIfName("bridge", bridge); err != nil {
		return err
	}
	var br *vswitchd.Bridge
	var set map[string]string
	var del []string
	err := ovsdb.OnConflict(func() error {
		var err error
		if br, err = h.DB.GetBridge(ctx, bridge); err != nil {
			return err
		}
		if br == nil {
			return noBridge(bridge)
		}
		bi := intent.DecodeBridge(bridge, br.ExternalIDs)
		if !bi.Owned {
			return fmt.Errorf("bridge %s was not made by ovsnet: links need its flow pipeline", bridge)
		}
		if set, del, err = edit(bi); err != nil {
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
	if err := appctl.WaitRevalidated(ctx); err != nil {
		return fmt.Errorf("%s's flows are changed, but ovs-vswitchd did not confirm that its datapath's cached flows were rechecked, so packets may pass as before for a while (ovs-appctl revalidator/wait): %w", bridge, err)
	}
	return nil
}
