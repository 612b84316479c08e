package network

import (
	"context"
	"fmt"
	"maps"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Recycling: a container interface detached on its own (a runtime's DEL,
// Docker's DeleteEndpoint, del-port through the controller) goes back to
// the warm pool when it is what a pool's port of its bridge would be
// (poolstate.Pool.Fits), ready and without a VLAN: its published ports go
// (host NAT only: no flows of theirs), its link comes back to where the
// pool's ports wait and its row becomes the pool's, keeping its address,
// port number and flows. The next attach takes it, at the lowest address
// as a fresh port would get, without waiting on ovs-vswitchd: churn (a
// pod deleted, another made) would otherwise free an address below the
// pool's for every new container, which then misses the pool. Neither
// does the detach wait on ovs-vswitchd: no flow changes.

// recycle returns ifc to the pool if it can: true when it did. A link
// that is not found in the container (gone with it) leaves the port for
// the detach, as does a failure after it was marked detaching. A
// runtime's port (a Docker endpoint's) is returned from where its link
// is now, which ho says (Docker has moved it back to its namespace).
func (h *Host) recycle(ctx context.Context, bridge string, ifc vswitchd.Interface, port vswitchd.Port, ho *Handoff) (bool, error) {
	if h.Pool == nil || port.Tag != nil || IsLogical(ifc) {
		return false, nil
	}
	pi, err := intent.DecodePort(IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil || pi.Pooled || pi.State != intent.StateReady {
		return false, nil
	}
	back := attach.Return{From: pi.Netns, Name: pi.Iface, Kind: "tuntap", MAC: pi.MAC, As: ifc.Name}
	if pi.Type == attach.TypeVeth {
		back.Kind, back.As = "veth", attach.PoolPeer(ifc.Name)
	}
	switch {
	case pi.Runtime != "" && (ho == nil || ho.Runtime != pi.Runtime):
		return false, nil
	case pi.Runtime != "":
		back.From, back.Name = ho.Netns, ho.Name
	case pi.Netns == "":
		return false, nil
	}
	if _, err := intent.Published(IfaceRow(ifc), ifc.ExternalIDs); err != nil {
		return false, nil // published ports that do not decode: the detach's to sort out
	}
	br, err := h.DB.GetBridge(ctx, bridge)
	if err != nil || br == nil || !intent.Owned(br.ExternalIDs) {
		return false, err
	}
	bi := intent.DecodeBridge(bridge, br.ExternalIDs)
	if !h.Pool.Fits(bi, datapath.Of(br), pi) {
		return false, nil
	}
	back.To = h.Pool.WaitsIn(bi.Docker.ID != "", pi.Type)
	if err := h.markDetaching(ctx, []vswitchd.Interface{ifc}); err != nil {
		return false, err
	}
	if err := h.NAT().ReleaseAll([]vswitchd.Interface{ifc}); err != nil {
		return false, err
	}
	if moved, err := h.Devices.ReturnLink(back); !moved || err != nil {
		return false, err
	}
	was := maps.Clone(ifc.ExternalIDs)
	was[intent.KeyState] = intent.StateDetaching
	pool := pi
	pool.Container, pool.Iface, pool.Netns, pool.CNINetwork, pool.Runtime, pool.RuntimeName = "", "", "", "", "", ""
	pool.Pooled, pool.State, pool.PoolNetns = true, intent.StateReady, back.To
	tx := h.DB.Tx()
	tx.ClaimInterface(ifc.UUID, was, pool.Encode())
	if _, err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("return %s to the pool: %w", ifc.Name, err)
	}
	h.Pool.Wake() // one over its size: the pool gives back its highest
	return true, h.HandOffDefaultRoutes(ctx, []vswitchd.Interface{ifc})
}

// detachOne is Detach of a container's interface(s), which returns a
// lone interface to the pool when it can (a failed return, too, ends in
// the detach, which takes the port away).
func (h *Host) detachOne(ctx context.Context, bridge string, ifs []vswitchd.Interface, ports []vswitchd.Port, ho *Handoff) error {
	if len(ifs) == 1 {
		if done, err := h.recycle(ctx, bridge, ifs[0], ports[0], ho); done {
			return err
		}
	}
	return h.Detach(ctx, bridge, ifs, ports)
}
