package reconcile

import (
	"context"
	"errors"
	"fmt"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/capture"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// CollectGarbage follows the containers whose network namespace is gone
// (followRestarts: those that run again get their interfaces back, those
// removed lose their ports) and removes veths leaked by killed attaches
// and the ports of captures whose process is gone.
func (h *Converger) CollectGarbage(ctx context.Context, topo *ovsdb.Topology, links *attach.HostLinks) (Collected, error) {
	c, err := h.followRestarts(ctx, topo, reattachOrRemove)
	leaked, lerr := h.removeLeakedVeths(ctx, topo, links)
	swept, serr := capture.Sweep(ctx, h.host.DB, topo.Interfaces)
	c.Removed = append(append(c.Removed, leaked...), swept...)
	return c, errors.Join(err, lerr, serr)
}

// removeLeakedVeths deletes the host ends of veths whose attach (or pool
// fill) was killed after it made them and before their rows were
// committed. The caller holds the host lock exclusively, so no running
// attach is between the two.
func (h *Converger) removeLeakedVeths(ctx context.Context, topo *ovsdb.Topology, links *attach.HostLinks) ([]string, error) {
	var removed []string
	var errs []error
	rows := map[string]bool{}
	for _, ifc := range topo.Interfaces {
		rows[ifc.Name] = true
	}
	for _, l := range attach.LeakedHostLinks(links, rows) {
		// topo may come from the monitor's cache, refilled after a
		// reconnect: a link is deleted only if OVSDB itself has no row.
		if ifs, err := ovsdb.Select[vswitchd.Interface](ctx, h.host.DB, []ovsdbops.Condition{ovsdb.NameIs(l)}, "_uuid"); err != nil || len(ifs) > 0 {
			continue
		}
		if err := attach.DeleteLink(l); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, l+" (leaked veth or tap)")
	}
	return removed, errors.Join(errs...)
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
	gone := map[string][]orphan{} // by bridge: detached together
	for _, o := range vanished(topo, attach.NetnsExists) {
		owner := network.OwnerOf(o.ifc)
		step, err := orphanStep(ctx, o, containers.DockerContainer)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", owner, err))
		case step == reattach:
			if _, err := h.host.Reattach(ctx, o.bridge, o.ifc, o.port); err != nil {
				errs = append(errs, err)
			} else {
				c.Back = append(c.Back, fmt.Sprintf("re-attached %s to its restarted container", owner))
			}
		case step == remove && p == reattachOrRemove:
			gone[o.bridge] = append(gone[o.bridge], o)
		}
	}
	for bridge, orphans := range gone {
		removed, err := h.removeOrphans(ctx, bridge, orphans)
		c.Removed = append(c.Removed, removed...)
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// removeOrphans detaches the interfaces of gone containers from bridge in
// one detach (a mass exit costs one kernel request for its veths).
func (h *Converger) removeOrphans(ctx context.Context, bridge string, orphans []orphan) ([]string, error) {
	var ifs []vswitchd.Interface
	var ports []vswitchd.Port
	var names []string
	for _, o := range orphans {
		ifs, ports = append(ifs, o.ifc), append(ports, o.port)
		names = append(names, fmt.Sprintf("%s (%s)", o.ifc.Name, network.OwnerOf(o.ifc)))
	}
	if err := h.host.Detach(ctx, bridge, ifs, ports); err != nil {
		return nil, fmt.Errorf("remove %d ports of gone containers from %s: %w", len(ifs), bridge, err)
	}
	return names, nil
}

// FollowRestarts is followRestarts for `ovsnet reconcile`: containers that
// run again get their interfaces back, and veths leaked by a killed attach
// and the ports of captures whose process is gone go; no container's port
// is removed.
func (h *Converger) FollowRestarts(ctx context.Context, topo *ovsdb.Topology) ([]string, error) {
	c, err := h.followRestarts(ctx, topo, reattachOnly)
	swept, serr := capture.Sweep(ctx, h.host.DB, topo.Interfaces)
	did := append(c.Back, swept...)
	err = errors.Join(err, serr)
	links, lerr := attach.ListHostLinks(ProbeLink(topo))
	if lerr != nil {
		return did, errors.Join(err, lerr)
	}
	leaked, lerr := h.removeLeakedVeths(ctx, topo, links)
	return append(did, leaked...), errors.Join(err, lerr)
}
