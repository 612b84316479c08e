package mesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// On the userspace datapath OVS encapsulates tunnel traffic itself and
// routes it out of the OVS bridge that holds the local address: a kernel
// interface will not do. So the first tunnel takes the underlay device
// over: a bridge "ovs-DEV" (a learning switch between DEV and the host)
// gets DEV as its port and DEV's MAC, addresses and routes, which are kept
// in the bridge's external_ids, re-applied by reconcile (ovs-vswitchd
// re-creates the bridge's device when it restarts) and given back to DEV
// when the host's last tunnel goes. The kernel datapath needs none of this.

// UnderlayBridge names the bridge that takes dev over: "ovs-DEV", or for
// a long DEV (IFNAMSIZ allows 15 bytes) its first 5 bytes and 5 hex digits
// of a hash of the whole name, so that names with a common prefix differ.
func UnderlayBridge(dev string) string {
	n := "ovs-" + dev
	if len(n) > 15 {
		h := sha256.Sum256([]byte(dev))
		n = "ovs-" + dev[:5] + "-" + hex.EncodeToString(h[:3])[:5]
	}
	return n
}

// underlayOf is what underlay bridge b took over; ok is false for other
// bridges and for an underlay whose intent does not decode (its device is
// then left as it is).
func underlayOf(b *vswitchd.Bridge) (*attach.Underlay, bool) {
	u := intent.DecodeBridge(b.Name, b.ExternalIDs).Underlay
	if u == nil || u.Err != nil {
		return nil, false
	}
	return &attach.Underlay{Dev: u.Dev, MTU: u.MTU, Routes: u.Routes, Addrs: u.Addrs}, true
}

// EnsureUnderlay returns the device tunnels leave through: dev itself if it
// is an OVS bridge already, else the bridge that takes dev over.
func EnsureUnderlay(ctx context.Context, db *ovsdb.Client, dev string, wait time.Duration) (string, error) {
	if b, err := db.GetBridge(ctx, dev); err != nil || b != nil {
		// Already on an OVS bridge (the host's own br-ex, say): OVS routes
		// the encapsulated packets from there.
		return dev, err
	}
	bs, err := underlayBridges(ctx, db)
	if err != nil {
		return "", err
	}
	for _, b := range bs {
		if u, _ := underlayOf(&b); u.Dev == dev {
			// Recorded but its addresses are not there: put them back.
			return b.Name, attach.PutUnderlay(u, b.Name)
		}
	}
	u, err := attach.ReadUnderlay(dev)
	if err != nil {
		return "", err
	}
	if len(u.Addrs) == 0 {
		return "", fmt.Errorf("underlay device %s has no address to move to an OVS bridge", dev)
	}
	name := UnderlayBridge(dev)
	ext := intent.Underlay{Dev: dev, Addrs: u.Addrs, Routes: u.Routes, MTU: u.MTU}.Encode()
	if _, err := db.Do(ctx, func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: name, Datapath: "netdev", ExternalIDs: ext, MTU: u.MTU,
			MAC: u.MAC.String(), FailMode: vswitchd.BridgeFailModeStandalone})
		tx.AddPorts(name, ovsdb.PortSpec{Name: dev, PortIDs: intent.Ownership(name)})
	}); err != nil {
		return "", fmt.Errorf("create underlay bridge %s for %s: %w", name, dev, err)
	}
	undo := func(err error) (string, error) {
		attach.GiveBackUnderlay(u)
		if b, gerr := db.GetBridge(context.Background(), name); gerr == nil && b != nil {
			db.Do(context.Background(), func(tx *ovsdb.Tx) { tx.DeleteBridge(b.UUID) })
		}
		return "", err
	}
	if _, err := db.WaitOfports(ctx, []string{name, dev}, wait); err != nil {
		return undo(fmt.Errorf("underlay bridge %s: %w", name, err))
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := attach.WaitLink(wctx, name); err != nil {
		return undo(err)
	}
	if err := attach.PutUnderlay(u, name); err != nil {
		return undo(err)
	}
	if err := attach.TakeUnderlay(u, dev); err != nil {
		return undo(err)
	}
	return name, nil
}

// UnderlayFor makes sure the host's address a is on an OVS bridge, as the
// userspace datapath's tunnels (OVN's too) need: the bridge that took
// over the device holding a, made now if missing.
func UnderlayFor(ctx context.Context, db *ovsdb.Client, a netip.Addr, wait time.Duration) (string, error) {
	dev, err := attach.LinkOfAddr(a)
	if err != nil {
		return "", err
	}
	return EnsureUnderlay(ctx, db, dev, wait)
}

// BridgeSettings reads bridges' names and settings (external_ids), not
// their ports: every bridge, or those where says.
func BridgeSettings(ctx context.Context, db *ovsdb.Client, where ...ovsdbops.Condition) ([]vswitchd.Bridge, error) {
	return ovsdb.Select[vswitchd.Bridge](ctx, db, where, "_uuid", "name", "external_ids")
}

func underlayBridges(ctx context.Context, db *ovsdb.Client) ([]vswitchd.Bridge, error) {
	bs, err := BridgeSettings(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []vswitchd.Bridge
	for _, b := range bs {
		if _, ok := underlayOf(&b); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

// ReleaseUnderlays gives every underlay back to its device when no ovsnet
// bridge on the host has a tunnel any more and ovsnet did not make the
// host an OVN chassis.
func ReleaseUnderlays(ctx context.Context, db *ovsdb.Client) error {
	bs, err := BridgeSettings(ctx, db)
	if err != nil {
		return err
	}
	root, err := db.RootExternalIDs(ctx)
	if err != nil {
		return err
	}
	if c, _ := intent.DecodeChassis(root); c.Joined {
		return nil // OVN's tunnels leave from it
	}
	for _, b := range bs {
		if len(intent.DecodeBridge(b.Name, b.ExternalIDs).Tunnels) > 0 {
			return nil
		}
	}
	var errs []error
	for _, b := range bs {
		u, ok := underlayOf(&b)
		if !ok {
			continue
		}
		if err := attach.GiveBackUnderlay(u); err != nil {
			errs = append(errs, fmt.Errorf("give %s its addresses back: %w", u.Dev, err))
			continue
		}
		if _, err := db.Do(ctx, func(tx *ovsdb.Tx) { tx.DeleteBridge(b.UUID) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ConvergeUnderlays re-applies the underlay bridges' addresses and routes
// (gone with their devices when ovs-vswitchd restarted).
func ConvergeUnderlays(topo *ovsdb.Topology, links *attach.HostLinks) []error {
	var errs []error
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if u, ok := underlayOf(b); ok && links.Has(b.Name) {
			if err := attach.PutUnderlay(u, b.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}
