package network

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// ConfigFromIntent is the container-side configuration stored in OVSDB
// for interface ifc; an error if its intent does not decode (nothing is
// configured from it: reconcile reports it as bad intent).
func ConfigFromIntent(ifc vswitchd.Interface) (attach.Config, error) {
	pi, err := intent.DecodePort(IfaceRow(ifc), ifc.ExternalIDs)
	return portConfig(pi, attach.RouteIfNone), err
}

// FinishAttach completes an attach whose process died after committing its
// row (the host lock guarantees no live process is still at it): the
// container side is configured from OVSDB, or, if its link is gone, the
// port is removed.
func (h *Host) FinishAttach(ctx context.Context, ifc vswitchd.Interface) (string, error) {
	ref := intent.RefOf(ifc.ExternalIDs)
	ns := ref.Netns
	cfg, err := ConfigFromIntent(ifc)
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
		return fmt.Sprintf("removed half-made port %s of %s", ifc.Name, OwnerOf(ifc)), nil
	}
	if err := attach.Configure(ns, cur, cfg); err != nil {
		return "", fmt.Errorf("finish attach of %s: %w", ifc.Name, err)
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifc.UUID, intent.State(intent.StateReady)) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("finished interrupted attach of %s (%s)", ifc.Name, OwnerOf(ifc)), nil
}
