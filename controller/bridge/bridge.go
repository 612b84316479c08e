// Package bridge makes, checks and removes ovsnet's bridges (add-br,
// del-br, a CNI ADD that names a bridge it may make) and writes a
// bridge's own intent; the attach engine (package network) works on the
// bridges it leaves.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Add creates the bridge, or, if it exists, checks that every setting
// given matches and re-applies its gateway addresses (idempotent). It
// returns whether it created the bridge.
func Add(ctx context.Context, h *network.Host, o network.BridgeOptions) (bool, error) {
	subnets, err := o.Check()
	if err != nil {
		return false, err
	}
	br, err := h.DB.GetBridge(ctx, o.Name)
	if err != nil {
		return false, err
	}
	if br != nil {
		return false, h.EnsureBridge(ctx, br, o)
	}
	if err := checkSubnetsFree(ctx, h, subnets); err != nil {
		return false, err
	}

	dp := o.Datapath
	if dp == "" {
		dp = datapath.Detect()
	}
	ext := intent.NewBridge()
	for k, v := range o.Settings(subnets).Encode() {
		ext[k] = v
	}
	mac := ipam.RandomMAC()
	spec := ovsdb.BridgeSpec{Name: o.Name, Datapath: dp, ExternalIDs: ext, MTU: o.MTU, MAC: mac.String()}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.CreateBridge(spec) }); err != nil {
		return false, fmt.Errorf("create bridge %q: %w", o.Name, err)
	}
	undo := func(err error) (bool, error) {
		// Leave nothing half-made.
		if br, gerr := h.DB.GetBridge(context.Background(), o.Name); gerr == nil && br != nil {
			h.DB.Do(context.Background(), func(tx *ovsdb.Tx) { tx.DeleteBridge(br.UUID) })
		}
		return false, err
	}
	// The bridge exists in ovs-vswitchd once its LOCAL port has a number;
	// only then can it take flows. In fail_mode=secure it forwards nothing
	// until they are in.
	if _, err := h.DB.WaitOfport(ctx, o.Name, network.LinkTimeout); err != nil {
		return undo(err)
	}
	nd, err := ProbeND(ctx, h, o.Name, dp)
	if err != nil {
		return undo(err)
	}
	maps.Copy(ext, nd)
	fb := flowmodel.BridgeOf(intent.DecodeBridge(o.Name, ext))
	fb.GatewayMAC = mac
	// The bridge-wide flows only: the ports a racing request attached
	// already (the bridge exists for it) keep theirs.
	if err := h.Flows.Apply(o.Name, flows.Change{Cookie: flows.BridgeCookie(), Mask: flows.ObjectMask, Flows: flows.BridgeFlows(fb)}); err != nil {
		return undo(err)
	}
	if _, err := h.ConvergeBridge(ctx, o.Name, ext); err != nil {
		return undo(err)
	}
	// Masquerade and forwarding rules (and every other bridge's, which must
	// not masquerade toward this subnet).
	if len(subnets) > 0 {
		if err := h.NAT().Resync(ctx); err != nil {
			return undo(err)
		}
	}
	return true, nil
}

// ProbeND asks ovs-vswitchd whether bridge's datapath (of type dp) can
// write neighbour discovery options (its nd_ext capability: the kernel
// datapath of Linux 6.1 cannot) and records the answer on the bridge
// (intent.KeyND), which decides whether flows answer solicitations or
// relay them. It returns the keys it set.
func ProbeND(ctx context.Context, h *network.Host, bridge, dp string) (map[string]string, error) {
	caps, err := h.DB.DatapathCapabilities(ctx, dp, intent.Ownership(""), network.LinkTimeout)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", bridge, err)
	}
	nd := intent.NDMode(caps["nd_ext"] == "true")
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(bridge, nd) }); err != nil {
		return nil, fmt.Errorf("bridge %s: record its datapath's ND support: %w", bridge, err)
	}
	return nd, nil
}

// checkSubnetsFree refuses subnets that overlap another ovsnet bridge's or
// a route of the host's (its LAN, a VPN, Docker's networks): both would
// claim the same addresses, and one side would be cut off.
func checkSubnetsFree(ctx context.Context, h *network.Host, subnets []ipam.Subnet) error {
	if len(subnets) == 0 {
		return nil
	}
	bs, err := ovsdb.Select[vswitchd.Bridge](ctx, h.DB, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.Ownership(""))}, "name", "external_ids")
	if err != nil {
		return err
	}
	ours := map[string]bool{}
	for _, b := range bs {
		ours[b.Name] = true
		theirs := intent.DecodeBridge(b.Name, b.ExternalIDs).Subnets
		for _, t := range theirs {
			for _, sn := range subnets {
				if t.Prefix.Overlaps(sn.Prefix) {
					return network.Conflict(fmt.Sprintf("subnet %s overlaps bridge %s's %s: give another subnet", sn.Prefix, b.Name, t.Prefix))
				}
			}
		}
	}
	routes, err := netlinksafe.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list the host's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsLinkLocalUnicast() {
			continue // the default route and fe80::/64 overlap nothing of ours
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		if !ok || ones == 0 {
			continue
		}
		p := netip.PrefixFrom(dst.Unmap(), ones)
		dev := ""
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		for _, sn := range subnets {
			if p.Overlaps(sn.Prefix) && !ours[dev] {
				return network.Conflict(fmt.Sprintf("subnet %s overlaps the host's route to %s (dev %s): give another subnet", sn.Prefix, p, dev))
			}
		}
	}
	return nil
}

// Del detaches every container on the bridge (their interfaces
// disappear) and removes the bridge. The bridge is marked deleting first
// and its row goes last, once every container device and rule is gone: a
// kill at any point leaves a bridge that del-br again, or reconcile,
// finishes, and no address is free while an interface still holds it.
func Del(ctx context.Context, h *network.Host, name string) error {
	if err := attach.CheckName("bridge", name); err != nil {
		return err
	}
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return err
	}
	br := topo.Bridge(name)
	if br == nil {
		return network.NoBridge(name)
	}
	if !intent.DecodeBridge(name, br.ExternalIDs).Deleting {
		if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(name, intent.Deleting()) }); err != nil {
			return fmt.Errorf("delete bridge %q: %w", name, err)
		}
	}
	// The containers' devices, ovs-docker's veths included, and the
	// bridge's NAT rules and host port reservations; then the rows.
	ifs, _ := topo.BridgeInterfaces(br)
	errs := []error{h.NAT().ReleaseAll(ifs)}
	for _, t := range intent.DecodeBridge(name, br.ExternalIDs).GoodTunnels() {
		if t.Kernel { // the kernel's VXLAN or gretap device: not OVS's to remove
			errs = append(errs, attach.DeleteLink(mesh.Device(t)))
		}
	}
	if err := errors.Join(append(errs, network.RemoveLinks(ifs, h.Devices, h.Tell()))...); err != nil {
		return fmt.Errorf("delete bridge %q: %w (run del-br again, or reconcile, to finish)", name, err)
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.DeleteBridge(br.UUID) }); err != nil {
		return fmt.Errorf("delete bridge %q: %w", name, err)
	}
	h.Flows.Forget(name)
	return errors.Join(h.HandOffDefaultRoutes(ctx, ifs), h.NAT().Resync(ctx), mesh.ReleaseUnderlays(ctx, h.DB))
}

// SetIntent writes keys of bridge name's external_ids (set, then
// the keys in del removed) and brings its bridge-wide flows in line with
// them (a Docker network's VLAN is its gateway's).
func SetIntent(ctx context.Context, h *network.Host, name string, set map[string]string, del ...string) error {
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(name, set, del...) }); err != nil {
		return err
	}
	br, err := h.DB.GetBridge(ctx, name)
	if err != nil {
		return err
	}
	if br == nil {
		return network.NoBridge(name)
	}
	if err := h.Flows.Apply(br.Name, flowmodel.BridgeChange(br)); err != nil {
		return fmt.Errorf("bridge %s: recorded, but its flows were not updated (run ovsnet reconcile): %w", name, err)
	}
	return nil
}

// AddPort makes bridge b if it is missing (an existing one must
// have b's settings, as for add-br) and attaches o to it: a CNI ADD. Of
// two requests making the same bridge at once, one makes it and the other
// finds it made.
func AddPort(ctx context.Context, h *network.Host, b network.BridgeOptions, o network.PortOptions) (*network.PortView, error) {
	n, err := h.Network(ctx, b.Name)
	made := false
	switch {
	case errors.Is(err, network.ErrNoBridge) && b.OVN:
		return nil, network.Conflict(fmt.Sprintf("no OVN network %s: is this host an OVN chassis (ovsnet ovn join ... --nb), and the network made (ovsnet network create %s --subnet CIDR)?", b.Name, b.Name))
	case errors.Is(err, network.ErrNoBridge):
		if _, err := Add(ctx, h, b); err == nil {
			made = true
		} else if br, gerr := h.DB.GetBridge(ctx, b.Name); gerr != nil || br == nil {
			return nil, err
		} // else made by a racing request: its settings are checked below
		n, err = h.Network(ctx, b.Name)
	}
	if err != nil {
		return nil, err
	}
	defer n.Close()
	if !made {
		if err := n.Ensure(ctx, b); err != nil {
			return nil, err
		}
	}
	return h.AddPortOn(ctx, n, o)
}
