package reconcile

import (
	"context"
	"errors"
	"fmt"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// collectGarbage removes the ports of containers whose network namespace is
// gone (the container exited), with their flows, rules and addresses.
func (h *Converger) CollectGarbage(ctx context.Context, topo *ovsdb.Topology, links *attach.HostLinks) ([]string, error) {
	var gone []string
	var errs []error
	for _, o := range vanished(topo, attach.NetnsExists) {
		if err := h.Detach(ctx, o.bridge, []vswitchd.Interface{o.ifc}, []vswitchd.Port{o.port}); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", o.ifc.Name, err))
			continue
		}
		gone = append(gone, fmt.Sprintf("%s (%s)", o.ifc.Name, network.OwnerOf(o.ifc)))
	}
	// Host ends of veths whose attach was killed before its row was made
	// (the convergence lock keeps this from racing a running attach).
	rows := map[string]bool{}
	for _, ifc := range topo.Interfaces {
		rows[ifc.Name] = true
	}
	for _, l := range attach.LeakedHostLinks(links, rows) {
		// topo may come from the monitor's cache, refilled after a
		// reconnect: a link is deleted only if OVSDB itself has no row.
		if ifs, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(l)}, "_uuid"); err != nil || len(ifs) > 0 {
			continue
		}
		if err := attach.DeleteLink(l); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, l+" (leaked veth)")
	}
	return gone, errors.Join(errs...)
}
