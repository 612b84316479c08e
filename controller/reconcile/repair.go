package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// convergeAlloc repairs a bridge's allocation state after ports were
// removed behind ovsnet's back (ovs-vsctl del-port): address hints above a
// free address are lowered. (A stale port counter needs no repair: attaches
// probe the numbers they take.)
func convergeAlloc(ctx context.Context, db *ovsdb.Client, b *vswitchd.Bridge, ifs []vswitchd.Interface) ([]string, error) {
	bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
	if bi.SubnetsErr != nil {
		return nil, bi.SubnetsErr
	}
	var al intent.Alloc
	var did []string
	used := alloc.UsedAddrs(ifs)
	for _, s := range bi.Subnets {
		low, err := ipam.Allocate(s, used)
		if err != nil {
			continue // full: no hint can be wrong
		}
		if hint := bi.Hints[low.Addr().Is4()]; hint.IsValid() && low.Addr().Less(hint) {
			al.Hints = append(al.Hints, low.Addr())
			did = append(did, fmt.Sprintf("lowered %s's %s hint to free address %s", b.Name, ipam.Family(low.Addr()), low.Addr()))
		}
	}
	if len(al.Hints) == 0 {
		return nil, nil
	}
	if _, err := db.Do(ctx, func(tx *ovsdb.Tx) { tx.GuardBridge(b.Name, b.ExternalIDs, al.Encode()) }); err != nil {
		if errors.Is(err, ovsdb.ErrConflict) {
			return nil, fmt.Errorf("bridge %s changed while reconciling: run reconcile again", b.Name)
		}
		return nil, err
	}
	return did, nil
}

// putBackInternal puts an internal port back into its container after
// ovs-vswitchd restarted. On the userspace datapath a restarted
// ovs-vswitchd cannot reopen a tap that lives in another namespace: it makes
// a new one in its own, and the container keeps a dead one. A tap of the
// port's name in this namespace is that sign. It is moved once
// ovs-vswitchd has finished adding it (promiscuous mode is its last step),
// and configured from the intent in OVSDB.
func putBackInternal(ifc vswitchd.Interface, l netlink.Link) (string, error) {
	if l == nil {
		return "", nil // in its container, as it should be
	}
	if l.Attrs().Promisc == 0 {
		return "", nil // ovs-vswitchd is still adding it: next run
	}
	ref := intent.RefOf(ifc.ExternalIDs)
	ns := ref.Netns
	if !attach.NetnsExists(ns) {
		return "", nil // the container is gone: garbage collection's job
	}
	cfg, err := network.ConfigFromIntent(ifc)
	if err != nil {
		return "", nil // bad intent, reported as such: nothing to configure from
	}
	if err := attach.DeleteInternal(ns, cfg.Name, cfg.MAC); err != nil {
		return "", err
	}
	if err := attach.MoveIn(ifc.Name, ns); err != nil {
		return "", err
	}
	if err := attach.Configure(ns, ifc.Name, cfg); err != nil {
		return "", fmt.Errorf("re-attach %s: %w", ifc.Name, err)
	}
	return fmt.Sprintf("re-attached internal port %s to %s/%s after an ovs-vswitchd restart", ifc.Name, ref.Container, cfg.Name), nil
}

// completeAttach completes an attach whose process died after committing its
// row (the host lock guarantees no live process is still at it): the
// container side is configured from OVSDB, or, if its link is gone, the
// port is removed.
func completeAttach(ctx context.Context, h *network.Host, ifc vswitchd.Interface) (string, error) {
	ref := intent.RefOf(ifc.ExternalIDs)
	ns := ref.Netns
	cfg, err := network.ConfigFromIntent(ifc)
	if err != nil {
		return "", fmt.Errorf("finish attach of %s: %w", ifc.Name, err)
	}
	cur := cfg.Name
	if ifc.Type == "internal" {
		if _, err := netlink.LinkByName(ifc.Name); err == nil && attach.NetnsExists(ns) {
			if err := attach.MoveIn(ifc.Name, ns); err != nil {
				return "", err
			}
		}
		if ok, _ := attach.HasLink(ns, ifc.Name); ok {
			cur = ifc.Name // moved but not renamed yet
		}
	}
	ok := false
	if attach.NetnsExists(ns) {
		ok, _ = attach.HasLink(ns, cur)
	}
	if !ok {
		// Nothing to finish: take the half-made port away.
		port, err := h.DB.PortOn(ctx, ref.Bridge, ifc.UUID)
		if err != nil || port == nil {
			return "", err
		}
		if err := h.Detach(ctx, ref.Bridge, []vswitchd.Interface{ifc}, []vswitchd.Port{*port}); err != nil {
			return "", err
		}
		return fmt.Sprintf("removed half-made port %s of %s", ifc.Name, network.OwnerOf(ifc)), nil
	}
	if err := attach.Configure(ns, cur, cfg); err != nil {
		return "", fmt.Errorf("finish attach of %s: %w", ifc.Name, err)
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifc.UUID, intent.State(intent.StateReady)) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("finished interrupted attach of %s (%s)", ifc.Name, network.OwnerOf(ifc)), nil
}
