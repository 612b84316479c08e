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

// CollectGarbage follows the containers whose network namespace is gone
// (followRestarts: those that run again get their interfaces back, those
// removed lose their ports) and removes veths leaked by killed attaches.
func (h *Converger) CollectGarbage(ctx context.Context, topo *ovsdb.Topology, links *attach.HostLinks) (Collected, error) {
	c, err := h.followRestarts(ctx, topo, reattachOrRemove)
	errs := []error{err}
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
		c.Removed = append(c.Removed, l+" (leaked veth)")
	}
	return c, errors.Join(errs...)
}

// Collected is what garbage collection did: ports (and leaked veths)
// removed, interfaces given back to restarted containers.
type Collected struct {
	Removed, Back []string
}

// orphanPolicy is what followRestarts may do.
type orphanPolicy int

const (
	reattachOnly     orphanPolicy = iota // ovsnet reconcile: bring restarted containers back
	reattachOrRemove                     // the controller's garbage collection: remove the ports of removed ones too
)

// followRestarts looks at every ovsnet interface whose network namespace is
// gone. Its container running again (a Docker or Podman container
// restarted, in a new namespace) gets the interface back as its intent
// says (network.Reattach); one that exists but is stopped keeps its port
// for when it starts; one that is gone (removed, or a netns that was
// deleted) loses it, with p reattachOrRemove. It returns what it did.
func (h *Converger) followRestarts(ctx context.Context, topo *ovsdb.Topology, p orphanPolicy) (Collected, error) {
	var c Collected
	var errs []error
	for _, o := range vanished(topo, attach.NetnsExists) {
		owner := network.OwnerOf(o.ifc)
		step, err := orphanStep(ctx, o, attach.DockerContainer)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", owner, err))
		case step == reattach:
			if _, err := h.Reattach(ctx, o.bridge, o.ifc, o.port); err != nil {
				errs = append(errs, err)
			} else {
				c.Back = append(c.Back, fmt.Sprintf("re-attached %s to its restarted container", owner))
			}
		case step == remove && p == reattachOrRemove:
			if err := h.Detach(ctx, o.bridge, []vswitchd.Interface{o.ifc}, []vswitchd.Port{o.port}); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", o.ifc.Name, err))
			} else {
				c.Removed = append(c.Removed, fmt.Sprintf("%s (%s)", o.ifc.Name, owner))
			}
		}
	}
	return c, errors.Join(errs...)
}

// FollowRestarts is followRestarts for `ovsnet reconcile`: containers that
// run again get their interfaces back; nothing is removed.
func (h *Converger) FollowRestarts(ctx context.Context, topo *ovsdb.Topology) ([]string, error) {
	c, err := h.followRestarts(ctx, topo, reattachOnly)
	return c.Back, err
}
