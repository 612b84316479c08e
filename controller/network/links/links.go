// Package links is a bridge network's links: the container ports their
// flows are made for, read from OVSDB (ContainerPorts), the links' flows
// recomputed (Changes), and a change of link (Bridge.Change): its ends
// checked, the bridge's link keys edited under the bridge's guard, and the
// link's flows put in place, waiting for the datapath's revalidation when
// access is taken away (Revoke). OVN networks change their links their
// own way (package ovn), from the same Change.
package links

import (
	"context"
	"fmt"
	"net/netip"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Change is one change to a network's links.
type Change struct {
	Src, Dst string
	// Attached: both ends must be attached to the network (a new link);
	// an unlink may name containers that are gone.
	Attached bool
	// Edit returns the keys to set and delete, from the intent as read
	// and the ends as the network names them.
	Edit func(b intent.Bridge, src, dst string) (map[string]string, []string, error)
}

// Flows is what links need of the bridges' OpenFlow side.
type Flows interface {
	Apply(bridge string, changes ...flows.Change) error
	// WaitRevalidated returns once the datapath's cached flows were
	// checked against the flow tables as they are now.
	WaitRevalidated(ctx context.Context) error
}

// Bridge is one of ovsnet's bridges, as resolved, as its links see it.
type Bridge struct {
	DB    *ovsdb.Client
	Flows Flows
	Br    *vswitchd.Bridge
}

// Change edits the bridge's link keys under the bridge guard, then
// replaces that one link's flows in one bundle.
func (b Bridge) Change(ctx context.Context, c Change) error {
	bridge := b.Br.Name
	src, err := b.linkEnd(ctx, c.Src)
	if err != nil {
		return err
	}
	dst, err := b.linkEnd(ctx, c.Dst)
	if err != nil {
		return err
	}
	var br *vswitchd.Bridge
	var set map[string]string
	var del []string
	err = ovsdb.OnConflict(func() error {
		var err error
		if br, err = b.DB.GetBridge(ctx, bridge); err != nil {
			return err
		}
		if br == nil {
			return fmt.Errorf("bridge %s was deleted while its link changed", bridge)
		}
		bi := intent.DecodeBridge(bridge, br.ExternalIDs)
		if !bi.Owned {
			return fmt.Errorf("bridge %s was not made by ovsnet: links need its flow pipeline", bridge)
		}
		if c.Attached {
			if err := b.linkEnds(ctx, bi, src, dst); err != nil {
				return err
			}
		}
		if set, del, err = c.Edit(bi, src, dst); err != nil {
			return err
		}
		_, err = b.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.GuardBridge(bridge, br.ExternalIDs, set, del...) })
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
	mine, err := Changes(ctx, b.DB, bridge, intent.DecodeBridge(bridge, ext).Links, func(s, d string) bool { return s == src && d == dst }, nil)
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
		return b.Flows.Apply(bridge, mine...)
	}
	return Revoke(ctx, b.Flows, bridge, mine...)
}

// linkEnd is how a link names container c on the bridge: as it was
// attached, or, for a container Docker attached through ovsnet's network
// plugin (whose ports are named by endpoint), by its endpoint on the
// bridge.
func (b Bridge) linkEnd(ctx context.Context, c string) (string, error) {
	bridge := b.Br.Name
	if _, remote := intent.RemoteEnd(c); remote {
		return c, nil
	}
	if ps, err := ContainerPorts(ctx, b.DB, bridge, c); err != nil || len(ps) > 0 {
		return c, err
	}
	t, err := containers.Resolve(ctx, c)
	if err != nil || t.Name == "" {
		return c, nil // not a container Docker knows: named as given
	}
	if err := NameEndpoints(ctx, b.DB, t.Name, t.Endpoints); err != nil {
		return c, err
	}
	return t.Name, nil
}

// linkEnds checks a new link's ends on the bridge (bi, as read): local
// containers attached to it, or addresses in another host's share of it.
func (b Bridge) linkEnds(ctx context.Context, bi intent.Bridge, ends ...string) error {
	for i, c := range ends {
		if a, ok := intent.RemoteEnd(c); ok {
			if err := checkRemoteEnd(bi, a, i == 1); err != nil {
				return err
			}
			continue
		}
		ps, err := ContainerPorts(ctx, b.DB, bi.Name, c)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return fmt.Errorf("container %q has no interface on %s: attach it first (ovsnet add-port %s INTERFACE %s)", c, bi.Name, bi.Name, c)
		}
	}
	return nil
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

// NameEndpoints records name as the container of the runtime's endpoints
// (the Docker network driver's ports are made before their container is
// known): links name it so, and a restarted container's new endpoints,
// named again, keep its links.
func NameEndpoints(ctx context.Context, db *ovsdb.Client, name string, endpoints []string) error {
	_, err := db.Do(ctx, func(tx *ovsdb.Tx) {
		for _, ep := range endpoints {
			ifs, err := db.FindInterfaces(ctx, intent.OfContainer(ep, ""))
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

// Revoke makes changes that take access away: once it returns, no packet
// takes a path the old flows allowed, cached in the datapath or not.
func Revoke(ctx context.Context, f Flows, bridge string, changes ...flows.Change) error {
	if err := f.Apply(bridge, changes...); err != nil {
		return err
	}
	if err := f.WaitRevalidated(ctx); err != nil {
		return fmt.Errorf("%s's flows are changed, but ovs-vswitchd did not confirm that its datapath's cached flows were rechecked, so packets may pass as before for a while (ovs-appctl revalidator/wait): %w", bridge, err)
	}
	return nil
}

// ContainerPorts reads the ovsnet interfaces of container on bridge, with
// their VLANs: a narrow select, not the bridge's whole port list.
func ContainerPorts(ctx context.Context, db *ovsdb.Client, bridge, container string) ([]flows.PortModel, error) {
	cols := []string{"_uuid", "name", "ofport", "ofport_request", "external_ids"}
	ifs, err := ovsdb.Select[vswitchd.Interface](ctx, db,
		[]ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.OfContainerOn(bridge, container))}, cols...)
	if err == nil && len(ifs) == 0 {
		// A runtime's endpoints, by the name the runtime gives their container.
		ifs, err = ovsdb.Select[vswitchd.Interface](ctx, db,
			[]ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.NamedOn(bridge, container))}, cols...)
	}
	if err != nil {
		return nil, err
	}
	var out []flows.PortModel
	for _, i := range ifs {
		vlan := 0
		if p, err := db.PortOn(ctx, bridge, i.UUID); err == nil && p != nil && p.Tag != nil {
			vlan = *p.Tag
		}
		if fp, ok, _ := flowmodel.DecodePort(i, vlan); ok {
			out = append(out, fp)
		}
	}
	return out, nil
}

// Changes recomputes the flows of the bridge's links that match (nil:
// all of them). ports gives a container's ports on the bridge; nil reads
// them from OVSDB (a caller holding the whole topology passes its own).
func Changes(ctx context.Context, db *ovsdb.Client, bridge string, links []intent.Link, match func(src, dst string) bool,
	ports func(container string) ([]flows.PortModel, error)) ([]flows.Change, error) {
	if ports == nil {
		cache := map[string][]flows.PortModel{}
		ports = func(c string) ([]flows.PortModel, error) {
			if ps, ok := cache[c]; ok {
				return ps, nil
			}
			ps, err := ContainerPorts(ctx, db, bridge, c)
			cache[c] = ps
			return ps, err
		}
	}
	return flowmodel.Links(bridge, links, match, ports)
}
