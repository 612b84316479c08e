package controller

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/ovsdb"
)

// Reconcile converges everything derived from the intent in OVSDB: for
// now each ovsnet bridge's gateway addresses, MTU and link state, and the
// host ends of veths. It returns what it changed (a second run changes
// nothing) and notes on what it found but leaves to others.
func (h *Host) Reconcile(ctx context.Context) (did, notes []string, err error) {
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if b.ExternalIDs[ovsdb.KeyOwner] != ovsdb.OwnerOvsnet {
			continue
		}
		d, err := h.reconcileBridge(ctx, b.Name, b.ExternalIDs)
		did = append(did, d...)
		if err != nil {
			errs = append(errs, err)
		}
		ifs, _ := topo.BridgeInterfaces(b)
		for _, ifc := range ifs {
			if ifc.ExternalIDs[ovsdb.KeyOwner] != ovsdb.OwnerOvsnet || ifc.Type != "" {
				continue
			}
			l, err := netlink.LinkByName(ifc.Name)
			if err != nil {
				// The container (and so the veth) is gone: garbage collection
				// of such ports belongs to the controller service.
				notes = append(notes, fmt.Sprintf("veth %s of %s/%s is missing", ifc.Name, ifc.ExternalIDs[ovsdb.KeyContainerID], ifc.ExternalIDs[ovsdb.KeyContainerIface]))
				continue
			}
			if l.Attrs().Flags&net.FlagUp == 0 {
				if err := netlink.LinkSetUp(l); err != nil {
					errs = append(errs, fmt.Errorf("set %s up: %w", ifc.Name, err))
					continue
				}
				did = append(did, "set "+ifc.Name+" up")
			}
		}
	}
	return did, notes, errors.Join(errs...)
}
