// Package tunnel is the operations on a bridge's tunnels to other hosts:
// add, delete and list them (the `ovsnet tunnel` commands) and put back
// what was removed behind ovsnet's back (reconcile). Each goes through a
// network.Host, whose bridge flows, settings and NAT follow the tunnels;
// the parts (ports, kernel VXLAN devices, the underlay) are mesh's.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Add connects bridge to the same network on the host at Remote. It
// is idempotent: the same tunnel again changes nothing, another tunnel to
// the same remote is an error. It returns the tunnel and whether it made it.
func Add(ctx context.Context, h *network.Host, o mesh.Options) (intent.Tunnel, bool, error) {
	for attempt := 0; ; attempt++ {
		t, created, err := add(ctx, h, o)
		if !errors.Is(err, ovsdb.ErrConflict) || attempt >= ovsdb.MaxAttempts {
			return t, created, err
		}
		time.Sleep(ovsdb.Backoff(attempt)) // another writer changed the bridge first
	}
}

// add is one attempt at Add: ovsdb.ErrConflict if the bridge
// changed since it was read.
func add(ctx context.Context, h *network.Host, o mesh.Options) (intent.Tunnel, bool, error) {
	remote, key, err := o.Check()
	if err != nil {
		return intent.Tunnel{}, false, err
	}
	br, bi, err := bridgeFor(ctx, h, o.Bridge)
	if err != nil {
		return intent.Tunnel{}, false, err
	}
	// On the userspace datapath a VXLAN or GRE tunnel is a kernel device
	// the kernel encapsulates for (offloads kept, the underlay left alone).
	kernel, err := o.Kernel(datapath.Of(br), o.Type == mesh.GRE && mesh.KernelGRE())
	if err != nil {
		return intent.Tunnel{}, false, err
	}
	local, dev, err := o.Ends(remote)
	if err != nil {
		return intent.Tunnel{}, false, err
	}
	t := intent.Tunnel{Bridge: o.Bridge, Remote: remote.String(), Type: o.Type, Key: key, Local: local.String(),
		Port: mesh.PortName(o.Bridge, remote.String(), o.Type, key)}
	existing := bi.Tunnels
	if same, err := o.Against(existing, t, kernel); same != nil || err != nil {
		return *same, false, err
	}
	shared, err := mesh.Place(&t, existing, kernel)
	if err != nil {
		return intent.Tunnel{}, false, err
	}
	if err := mesh.CheckUnique(ctx, h.DB, t); err != nil {
		return intent.Tunnel{}, false, err
	}
	made, err := device(ctx, h, &t, datapath.Of(br), dev)
	if err != nil {
		return intent.Tunnel{}, false, err
	}
	set := t.Encode()
	for k, v := range mesh.AutoMTU(bi, append(existing, t)) {
		set[k] = v
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.GuardBridge(o.Bridge, br.ExternalIDs, set)
		if !shared {
			tx.AddPorts(o.Bridge, mesh.PortSpec(t))
		}
	}); err != nil {
		mesh.DropKernel(t, made)
		mesh.ReleaseUnderlays(ctx, h.DB)
		return intent.Tunnel{}, false, fmt.Errorf("add tunnel %s to %s: %w", t.Port, t.Remote, err)
	}
	undo := func(err error) (intent.Tunnel, bool, error) {
		// Leave nothing half-made: the port, the key, the MTU it set.
		mesh.DelRows(context.Background(), h.DB, o.Bridge, t, existing)
		mesh.DropKernel(t, made)
		old, gone := intent.RestoreMTU(br.ExternalIDs)
		h.DB.Do(context.Background(), func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(o.Bridge, old, gone...) })
		mesh.ReleaseUnderlays(context.Background(), h.DB)
		return intent.Tunnel{}, false, err
	}
	if err := up(ctx, h, t); err != nil {
		return undo(err)
	}
	if datapath.Of(br) == datapath.Netdev && !t.Kernel && !bi.OVSTunnels() {
		// The bridge's first OVS tunnel: its containers must now compute
		// their own checksums (NoTxOffload).
		if err := offloadsOff(ctx, h, o.Bridge); err != nil {
			return t, true, fmt.Errorf("tunnel added, but %w (run ovsnet reconcile)", err)
		}
	}
	return t, true, nil
}

// up brings a committed tunnel t into service: its port numbered
// (and spliced), the bridge's flows and settings with it, and its NAT (a
// kernel tunnel takes its remotes' packets only).
func up(ctx context.Context, h *network.Host, t intent.Tunnel) error {
	if err := ready(ctx, h, t); err != nil {
		return err
	}
	nb, err := h.DB.GetBridge(ctx, t.Bridge)
	if err != nil || nb == nil {
		return fmt.Errorf("bridge %s vanished while adding a tunnel", t.Bridge)
	}
	if err := h.Flows.Apply(nb.Name, flowmodel.BridgeChange(nb)); err != nil {
		return err
	}
	if _, err := h.ConvergeBridge(ctx, t.Bridge, nb.ExternalIDs); err != nil {
		return err
	}
	return h.NAT().Resync(ctx)
}

// ready waits for ovs-vswitchd to number tunnel t's port and, for a
// kernel tunnel, splices the port to its device.
func ready(ctx context.Context, h *network.Host, t intent.Tunnel) error {
	if _, err := h.DB.WaitOfport(ctx, t.Port, network.LinkTimeout); err != nil {
		return fmt.Errorf("ovs-vswitchd did not add tunnel port %s: %w", t.Port, err)
	}
	if t.Kernel {
		_, err := mesh.Splice(ctx, t, network.LinkTimeout)
		return err
	}
	return nil
}

// device readies what tunnel t sends through from underlay device
// dev and records the underlay's MTU in t: OVS's own tunnels on the
// userspace datapath (dp) need the local address on an OVS bridge; a
// kernel tunnel needs its device, made says it was made now.
func device(ctx context.Context, h *network.Host, t *intent.Tunnel, dp, dev string) (made bool, err error) {
	underlayDev := dev
	if dp == datapath.Netdev && !t.Kernel {
		if underlayDev, err = mesh.EnsureUnderlay(ctx, h.DB, dev, network.LinkTimeout); err != nil {
			return false, err
		}
	}
	if l, err := netlink.LinkByName(underlayDev); err == nil {
		t.UnderlayMTU = l.Attrs().MTU
	}
	if !t.Kernel {
		return false, nil
	}
	return mesh.MakeKernel(*t, dev)
}

// offloadsOff turns TX offload off on bridge's container ports that have
// it on.
func offloadsOff(ctx context.Context, h *network.Host, bridge string) error {
	ifs, err := h.DB.FindInterfaces(ctx, intent.OfBridge(bridge))
	if err != nil {
		return err
	}
	var errs []error
	for _, ifc := range ifs {
		if r := intent.RefOf(ifc.ExternalIDs); r.IsContainer() && r.Runtime == "" && r.State == intent.StateReady && !r.NoTxOffload {
			_, err := datapath.ConvergeTxOffload(ctx, h.DB, ifc, true)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bridgeFor is the bridge a tunnel goes on, which must be ovsnet's and
// span hosts.
func bridgeFor(ctx context.Context, h *network.Host, name string) (*vswitchd.Bridge, intent.Bridge, error) {
	br, err := h.DB.GetBridge(ctx, name)
	if err != nil {
		return nil, intent.Bridge{}, err
	}
	if br == nil {
		return nil, intent.Bridge{}, network.NoBridge(name)
	}
	bi := intent.DecodeBridge(name, br.ExternalIDs)
	if !bi.Owned {
		return nil, bi, fmt.Errorf("bridge %q was not made by ovsnet: tunnels go on ovsnet bridges", name)
	}
	if !bi.Spans() {
		return nil, bi, fmt.Errorf("bridge %q has no --ip-range: a network spanning hosts gives each host its own range (ovsnet del-br %s; ovsnet add-br %s --subnet CIDR --ip-range CIDR)", name, name, name)
	}
	return br, bi, nil
}

// Converge puts back the tunnel ports of b that were deleted behind
// ovsnet's back (ovs-vsctl del-port): the bridge's settings say they exist.
// A kernel tunnel gets its device and its splice back too (a re-added
// port's tap is a new one), and one made when
// the VXLAN device itself was the bridge's port moves to the internal
// port.
func Converge(ctx context.Context, h *network.Host, topo *ovsdb.Topology, b *vswitchd.Bridge) ([]string, error) {
	ts := intent.DecodeBridge(b.Name, b.ExternalIDs).GoodTunnels()
	if len(ts) == 0 {
		return nil, nil
	}
	have := map[string]string{} // port name: its interface's type
	port := map[string]string{} // port name: its UUID
	ifs, ports := topo.BridgeInterfaces(b)
	for i, ifc := range ifs {
		have[ifc.Name], port[ifc.Name] = ifc.Type, ports[i].UUID
	}
	var specs []ovsdb.PortSpec
	var stale, did []string
	var errs []error
	for _, t := range ts {
		if t.Kernel {
			d, err := mesh.ConvergeKernel(t)
			did = append(did, d...)
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		typ, ok := have[t.Port]
		want := mesh.PortSpec(t)
		switch {
		case ok && typ == want.Type:
			continue
		case ok:
			stale = append(stale, port[t.Port])
			did = append(did, fmt.Sprintf("moved tunnel port %s of %s to an internal port spliced to device %s", t.Port, b.Name, mesh.Device(t)))
		default:
			did = append(did, fmt.Sprintf("re-added tunnel port %s (%s to %s) on %s", t.Port, t.Type, t.Remote, b.Name))
		}
		have[t.Port] = want.Type // once for a shared port
		specs = append(specs, want)
	}
	if err := errors.Join(errs...); err != nil {
		return did, err
	}
	if len(specs) > 0 {
		if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.DeletePorts(b.Name, stale...); tx.AddPorts(b.Name, specs...) }); err != nil {
			return nil, fmt.Errorf("re-add tunnel ports on %s: %w", b.Name, err)
		}
	}
	d, err := mesh.SpliceAll(ctx, ts, specs, network.LinkTimeout)
	return append(did, d...), err
}

// Del removes bridge's tunnel to remote; the last tunnel of the host
// gives the underlay address back to its device.
func Del(ctx context.Context, h *network.Host, bridge, remote string) error {
	br, err := h.DB.GetBridge(ctx, bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return network.NoBridge(bridge)
	}
	bi := intent.DecodeBridge(bridge, br.ExternalIDs)
	ts := bi.Tunnels
	var rest []intent.Tunnel
	var t *intent.Tunnel
	for i := range ts {
		if ts[i].Remote == remote {
			t = &ts[i]
		} else {
			rest = append(rest, ts[i])
		}
	}
	if t == nil {
		return fmt.Errorf("bridge %s has no tunnel to %s (see `ovsnet tunnel list %s`)", bridge, remote, bridge)
	}
	if err := mesh.DelRows(ctx, h.DB, bridge, *t, rest); err != nil {
		return fmt.Errorf("delete tunnel %s: %w", t.Port, err)
	}
	errs := []error{mesh.DropKernel(*t, !mesh.SharesPort(*t, rest))}
	if set := mesh.AutoMTU(bi, rest); set != nil {
		_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(bridge, set) })
		errs = append(errs, err)
	}
	if nb, err := h.DB.GetBridge(ctx, bridge); err == nil && nb != nil {
		errs = append(errs, h.Flows.Apply(nb.Name, flowmodel.BridgeChange(nb)))
		_, err := h.ConvergeBridge(ctx, bridge, nb.ExternalIDs)
		errs = append(errs, err)
	}
	errs = append(errs, mesh.ReleaseUnderlays(ctx, h.DB), h.NAT().Resync(ctx))
	return errors.Join(errs...)
}

// List lists the tunnels of bridge (every ovsnet bridge if ""), with the
// state OVS reports for each port.
func List(ctx context.Context, h *network.Host, bridge string) ([]intent.Tunnel, error) {
	var where []ovsdbops.Condition
	if bridge != "" {
		where = append(where, ovsdb.NameIs(bridge))
	}
	bs, err := mesh.BridgeSettings(ctx, h.DB, where...)
	if err != nil {
		return nil, err
	}
	if bridge != "" && len(bs) == 0 {
		return nil, network.NoBridge(bridge)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	var out []intent.Tunnel
	for _, b := range bs {
		for _, t := range intent.DecodeBridge(b.Name, b.ExternalIDs).Tunnels {
			t.State = "missing"
			if t.Err != nil {
				t.State = "intent does not decode: " + t.Err.Error()
				out = append(out, t)
				continue
			}
			if is, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(t.Port)}, "name", "ofport", "error"); err == nil && len(is) > 0 {
				t.State = mesh.IfaceState(is[0])
			}
			out = append(out, t)
		}
	}
	return out, nil
}
