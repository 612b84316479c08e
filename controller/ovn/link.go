package ovn

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// ChangeLink edits the link keys of OVN network a's switch, guarded by its
// external_ids as read, and brings its ACLs to them. Both ends must be
// containers attached, on any chassis: DST to the network, SRC to it or to
// a network on the same router.
func (a *ovnNetwork) ChangeLink(ctx context.Context, c links.Change) error {
	for _, end := range []string{c.Src, c.Dst} {
		if _, remote := intent.RemoteEnd(end); remote {
			return fmt.Errorf("OVN network %s spans every chassis: name the container (%s), not its address", a.name, end)
		}
	}
	err := ovsdb.OnConflict(func() error {
		if err := a.read(ctx); err != nil {
			return err
		}
		ports, err := nb.SwitchPorts(ctx, a.nb, a.ls)
		if err != nil {
			return err
		}
		if err := a.checkEnds(ctx, c, ports); err != nil {
			return err
		}
		set, del, err := c.Edit(intent.DecodeBridge(a.name, a.ls.ExternalIDs), c.Src, c.Dst)
		if err != nil {
			return err
		}
		ext := maps.Clone(a.ls.ExternalIDs)
		for _, k := range del {
			delete(ext, k)
		}
		maps.Copy(ext, set)
		zero := 0
		ls := &ovnnb.LogicalSwitch{UUID: a.ls.UUID, ExternalIDs: a.ls.ExternalIDs}
		wait, err := a.nb.Where(ls).Wait(ovsdbops.WaitConditionEqual, &zero, ls, &ls.ExternalIDs)
		if err != nil {
			return err
		}
		up := &ovnnb.LogicalSwitch{UUID: a.ls.UUID, ExternalIDs: ext}
		upd, err := a.nb.Where(up).Update(up, &up.ExternalIDs)
		if err != nil {
			return err
		}
		return a.nb.Run(ctx, append(wait, upd...))
	})
	if err != nil {
		return err
	}
	_, err = nb.SyncIsolation(ctx, a.nb, a.name)
	return err
}

// checkEnds refuses a new link whose DST is not on the network, or whose
// SRC is neither on it nor on a network routed with it.
func (a *ovnNetwork) checkEnds(ctx context.Context, c links.Change, ports []ovnnb.LogicalSwitchPort) error {
	if !c.Attached {
		return nil
	}
	on := func(ps []ovnnb.LogicalSwitchPort, end string) bool {
		return slices.ContainsFunc(ps, func(p ovnnb.LogicalSwitchPort) bool { return p.ExternalIDs[intent.KeyContainerID] == end })
	}
	if !on(ports, c.Dst) {
		return fmt.Errorf("container %q has no port on OVN network %s: attach it first (ovsnet add-port %s INTERFACE %s --ip)", c.Dst, a.name, a.name, c.Dst)
	}
	if on(ports, c.Src) {
		return nil
	}
	peers, err := nb.PeersOf(ctx, a.nb, a.name)
	if err != nil || on(peers.Ports, c.Src) {
		return err
	}
	return fmt.Errorf("container %q has no port on OVN network %s nor on a network routed with it%s: attach it first (ovsnet add-port NETWORK INTERFACE %s --ip)", c.Src, a.name, peerList(peers.Networks), c.Src)
}
