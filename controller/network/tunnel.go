package network

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Tunnel types and what each adds to a frame (outer IPv4 header, the
// tunnel's own header, the inner Ethernet header): a container's MTU is the
// underlay's minus this.
const (
	TunnelVXLAN = "vxlan"
	TunnelGRE   = "gre"
)

// NoTxOffload says whether a container interface must compute its own
// checksums (and so segment its own TCP): on the userspace datapath a veth
// unless ovs-vswitchd runs with userspace TSO (tso, asked only then: else
// OVS forwards partial-checksum packets as they are, and TCP stalls), and
// any interface on a network spanning hosts, because OVS 3.1's userspace
// tunnels cannot encapsulate offloaded packets (measured here: ping passes,
// TCP does not connect).
func NoTxOffload(b intent.Bridge, typ, dp string, tso func() bool) bool {
	return dp == DatapathNetdev && (b.Spans() || typ == attach.TypeVeth && !tso())
}

// TunnelOverhead is the encapsulation overhead of a tunnel type over IPv4:
// VXLAN 20+8+8+14 = 50; GRE with a key 20+8+14 = 42.
func TunnelOverhead(typ string) int {
	if typ == TunnelGRE {
		return 42
	}
	return 50
}

// Tunnel ports take OpenFlow port numbers from tunnelOfportBase up, above
// the containers' (whose counter stops there).
const (
	tunnelOfportBase = 65200
	maxTunnels       = 0xff00 - tunnelOfportBase
)

// Tunnel is one tunnel of a bridge to another host, as stored in the
// bridge's external_ids and as `tunnel list` shows it.
type Tunnel = intent.Tunnel

// tunnelPortName is the OVS port of a tunnel: "t" + type initial + 8 hex
// digits of a hash, so that the same tunnel always gets the same name.
func tunnelPortName(bridge, remote, typ string, key uint32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", bridge, remote, typ, key)
	return fmt.Sprintf("t%c%08x", typ[0], h.Sum32())
}

// TunnelOptions are `tunnel add`'s.
type TunnelOptions struct {
	Bridge  string
	Remote  string
	Type    string  // vxlan (default) or gre
	Key     *uint32 // VNI or GRE key; default 0
	LocalIP string  // default: the source address of the route to Remote
}

// AddTunnel connects bridge to the same network on the host at Remote. It
// is idempotent: the same tunnel again changes nothing, another tunnel to
// the same remote is an error. It returns the tunnel and whether it made it.
func (h *Host) AddTunnel(ctx context.Context, o TunnelOptions) (Tunnel, bool, error) {
	for attempt := 0; ; attempt++ {
		t, created, err := h.addTunnel(ctx, o)
		if !errors.Is(err, ovsdb.ErrConflict) || attempt >= maxAttempts {
			return t, created, err
		}
		time.Sleep(backoff(attempt)) // another writer changed the bridge first
	}
}

// addTunnel is one attempt at AddTunnel: ovsdb.ErrConflict if the bridge
// changed since it was read.
func (h *Host) addTunnel(ctx context.Context, o TunnelOptions) (Tunnel, bool, error) {
	remote, err := netip.ParseAddr(o.Remote)
	if err != nil || !remote.Is4() || remote.IsUnspecified() || remote.IsMulticast() {
		return Tunnel{}, false, fmt.Errorf("bad remote %q: want the other host's IPv4 underlay address, such as 192.0.2.2", o.Remote)
	}
	if o.Type == "" {
		o.Type = TunnelVXLAN
	}
	if o.Type != TunnelVXLAN && o.Type != TunnelGRE {
		return Tunnel{}, false, fmt.Errorf("unknown tunnel type %q: use vxlan or gre", o.Type)
	}
	var key uint32
	if o.Key != nil {
		key = *o.Key
	}
	if o.Type == TunnelVXLAN && key >= 1<<24 {
		return Tunnel{}, false, fmt.Errorf("--key %d: a VXLAN network identifier has 24 bits (0..16777215)", key)
	}
	br, err := h.DB.GetBridge(ctx, o.Bridge)
	if err != nil {
		return Tunnel{}, false, err
	}
	if br == nil {
		return Tunnel{}, false, noBridge(o.Bridge)
	}
	bi := intent.DecodeBridge(o.Bridge, br.ExternalIDs)
	if !bi.Owned {
		return Tunnel{}, false, fmt.Errorf("bridge %q was not made by ovsnet: tunnels go on ovsnet bridges", o.Bridge)
	}
	if !bi.Spans() {
		return Tunnel{}, false, fmt.Errorf("bridge %q has no --ip-range: a network spanning hosts gives each host its own range (ovsnet del-br %s; ovsnet add-br %s --subnet CIDR --ip-range CIDR)", o.Bridge, o.Bridge, o.Bridge)
	}
	var local netip.Addr
	var dev string
	if o.LocalIP != "" {
		if local, err = netip.ParseAddr(o.LocalIP); err != nil || !local.Is4() {
			return Tunnel{}, false, fmt.Errorf("bad --local-ip %q: want one of this host's IPv4 addresses", o.LocalIP)
		}
		if dev, err = attach.LinkOfAddr(local); err != nil {
			return Tunnel{}, false, err
		}
	} else if local, dev, err = attach.RouteSource(remote); err != nil {
		return Tunnel{}, false, err
	}
	if dev == o.Bridge {
		return Tunnel{}, false, fmt.Errorf("the route to %s goes through bridge %s itself: give --local-ip with the underlay address", remote, o.Bridge)
	}

	t := Tunnel{Bridge: o.Bridge, Remote: remote.String(), Type: o.Type, Key: key, Local: local.String(),
		Port: tunnelPortName(o.Bridge, remote.String(), o.Type, key)}
	existing := bi.Tunnels
	for _, e := range existing {
		if e.Remote != t.Remote {
			continue
		}
		if e.Type == t.Type && e.Key == t.Key && (o.LocalIP == "" || e.Local == t.Local) {
			return e, false, nil
		}
		return Tunnel{}, false, fmt.Errorf("bridge %s already has a %s tunnel (key %d, local %s) to %s: delete it first with `ovsnet tunnel del %s %s`",
			o.Bridge, e.Type, e.Key, e.Local, e.Remote, o.Bridge, e.Remote)
	}
	if err := h.checkTunnelUnique(ctx, t); err != nil {
		return Tunnel{}, false, err
	}
	used := map[int]bool{}
	for _, e := range existing {
		used[e.Ofport] = true
	}
	for t.Ofport = tunnelOfportBase; used[t.Ofport]; t.Ofport++ {
	}
	if t.Ofport >= tunnelOfportBase+maxTunnels {
		return Tunnel{}, false, fmt.Errorf("bridge %s has %d tunnels, the most it can hold", o.Bridge, maxTunnels)
	}

	// The userspace datapath encapsulates by itself and needs the local
	// address on an OVS bridge of its own.
	underlayDev := dev
	if DatapathOf(br) == DatapathNetdev {
		if underlayDev, err = h.ensureUnderlay(ctx, dev); err != nil {
			return Tunnel{}, false, err
		}
	}
	if l, err := netlink.LinkByName(underlayDev); err == nil {
		t.UnderlayMTU = l.Attrs().MTU
	}

	set := t.Encode()
	for k, v := range autoMTU(bi, append(existing, t)) {
		set[k] = v
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.GuardBridge(o.Bridge, br.ExternalIDs, set)
		tx.AddPorts(o.Bridge, tunnelPort(t))
	}); err != nil {
		h.releaseUnderlay(ctx)
		return Tunnel{}, false, fmt.Errorf("add tunnel %s to %s: %w", t.Port, t.Remote, err)
	}
	undo := func(err error) (Tunnel, bool, error) {
		// Leave nothing half-made: the port, the key, the MTU it set.
		h.delTunnelRows(context.Background(), o.Bridge, t)
		old, gone := intent.RestoreMTU(br.ExternalIDs)
		h.DB.Do(context.Background(), func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(o.Bridge, old, gone...) })
		h.releaseUnderlay(context.Background())
		return Tunnel{}, false, err
	}
	if _, err := h.DB.WaitOfport(ctx, t.Port, LinkTimeout); err != nil {
		return undo(fmt.Errorf("ovs-vswitchd did not add tunnel port %s: %w", t.Port, err))
	}
	nb, err := h.DB.GetBridge(ctx, o.Bridge)
	if err != nil || nb == nil {
		return undo(fmt.Errorf("bridge %s vanished while adding a tunnel", o.Bridge))
	}
	if err := h.applyBridgeFlows(nb); err != nil {
		return undo(err)
	}
	if _, err := h.ConvergeBridge(ctx, o.Bridge, nb.ExternalIDs); err != nil {
		return undo(err)
	}
	return t, true, nil
}

// ifaceState is how OVS sees a tunnel port: "up" once it has a number,
// else its error, or "adding".
func ifaceState(i vswitchd.Interface) string {
	switch {
	case i.Error != nil && *i.Error != "":
		return *i.Error
	case i.Ofport != nil && *i.Ofport > 0:
		return "up"
	}
	return "adding"
}

// tunnelPort is the OVSDB port of tunnel t.
func tunnelPort(t Tunnel) ovsdb.PortSpec {
	return ovsdb.PortSpec{Name: t.Port, Type: t.Type, OfportRequest: t.Ofport,
		Options:     map[string]string{"remote_ip": t.Remote, "local_ip": t.Local, "key": strconv.FormatUint(uint64(t.Key), 10)},
		ExternalIDs: t.PortIDs(), PortIDs: intent.Ownership(t.Bridge)}
}

// ConvergeTunnels puts back the tunnel ports of b that were deleted behind
// ovsnet's back (ovs-vsctl del-port): the bridge's settings say they exist.
func (h *Host) ConvergeTunnels(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge) ([]string, error) {
	ts := intent.DecodeBridge(b.Name, b.ExternalIDs).GoodTunnels()
	if len(ts) == 0 {
		return nil, nil
	}
	have := map[string]bool{}
	ifs, _ := topo.BridgeInterfaces(b)
	for _, i := range ifs {
		have[i.Name] = true
	}
	var specs []ovsdb.PortSpec
	var did []string
	for _, t := range ts {
		if !have[t.Port] {
			specs = append(specs, tunnelPort(t))
			did = append(did, fmt.Sprintf("re-added tunnel port %s (%s to %s) on %s", t.Port, t.Type, t.Remote, b.Name))
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.AddPorts(b.Name, specs...) }); err != nil {
		return nil, fmt.Errorf("re-add tunnel ports on %s: %w", b.Name, err)
	}
	return did, nil
}

// checkTunnelUnique refuses a tunnel another bridge already has: OVS tells
// tunnels apart by remote address, type and key only.
func (h *Host) checkTunnelUnique(ctx context.Context, t Tunnel) error {
	bs, err := h.bridgeSettings(ctx)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.Name == t.Bridge {
			continue
		}
		for _, e := range intent.DecodeBridge(b.Name, b.ExternalIDs).Tunnels {
			if e.Remote == t.Remote && e.Type == t.Type && e.Key == t.Key {
				return fmt.Errorf("bridge %s already has a %s tunnel with key %d to %s: give this one another --key (the same on both hosts)",
					b.Name, t.Type, t.Key, t.Remote)
			}
		}
	}
	return nil
}

// autoMTU returns the bridge's MTU settings for tunnels ts, unless the user
// chose the MTU: the smallest underlay MTU less its tunnel's overhead.
func autoMTU(b intent.Bridge, ts []Tunnel) map[string]string {
	if b.MTU != 0 && !b.MTUAuto {
		return nil
	}
	mtu := 0
	for _, t := range ts {
		if t.UnderlayMTU <= 0 {
			continue
		}
		if m := t.UnderlayMTU - TunnelOverhead(t.Type); mtu == 0 || m < mtu {
			mtu = m
		}
	}
	if mtu == 0 {
		return nil
	}
	return intent.MTUSetting(mtu)
}

// defaultTunnelMTU is the MTU of a network spanning hosts before it has
// tunnels: the default route's device's MTU less the larger overhead
// (VXLAN's), or 1450.
func defaultTunnelMTU() int {
	mtu := 1500
	if rs, err := netlink.RouteGet(net.IPv4(192, 0, 2, 1)); err == nil && len(rs) > 0 {
		if l, err := netlink.LinkByIndex(rs[0].LinkIndex); err == nil {
			mtu = l.Attrs().MTU
		}
	}
	return mtu - TunnelOverhead(TunnelVXLAN)
}

// applyBridgeFlows replaces the bridge-wide flows (tunnels included) with
// what the bridge's settings say, in one bundle.
func (h *Host) applyBridgeFlows(b *vswitchd.Bridge) error {
	return h.Flows.Apply(b.Name, flows.Change{Cookie: flows.BridgeCookie(), Mask: flows.ObjectMask, Flows: BridgeFlows(b)})
}

// delTunnelRows removes a tunnel's port and its key from the bridge.
func (h *Host) delTunnelRows(ctx context.Context, bridge string, t Tunnel) error {
	ps, err := ovsdb.Select[vswitchd.Port](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(t.Port)}, "_uuid")
	if err != nil {
		return err
	}
	_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.SetBridgeExternalIDs(bridge, nil, intent.TunnelKey(t.Remote))
		if len(ps) > 0 {
			tx.DeletePorts(bridge, ps[0].UUID)
		}
	})
	return err
}

// DelTunnel removes bridge's tunnel to remote; the last tunnel of the host
// gives the underlay address back to its device.
func (h *Host) DelTunnel(ctx context.Context, bridge, remote string) error {
	br, err := h.DB.GetBridge(ctx, bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return noBridge(bridge)
	}
	bi := intent.DecodeBridge(bridge, br.ExternalIDs)
	ts := bi.Tunnels
	var rest []Tunnel
	var t *Tunnel
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
	if err := h.delTunnelRows(ctx, bridge, *t); err != nil {
		return fmt.Errorf("delete tunnel %s: %w", t.Port, err)
	}
	var errs []error
	if set := autoMTU(bi, rest); set != nil {
		_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(bridge, set) })
		errs = append(errs, err)
	}
	if nb, err := h.DB.GetBridge(ctx, bridge); err == nil && nb != nil {
		errs = append(errs, h.applyBridgeFlows(nb))
		_, err := h.ConvergeBridge(ctx, bridge, nb.ExternalIDs)
		errs = append(errs, err)
	}
	errs = append(errs, h.releaseUnderlay(ctx))
	return errors.Join(errs...)
}

// Tunnels lists the tunnels of bridge (every ovsnet bridge if ""), with the
// state OVS reports for each port.
func (h *Host) Tunnels(ctx context.Context, bridge string) ([]Tunnel, error) {
	var where []ovsdbops.Condition
	if bridge != "" {
		where = append(where, ovsdb.NameIs(bridge))
	}
	bs, err := h.bridgeSettings(ctx, where...)
	if err != nil {
		return nil, err
	}
	if bridge != "" && len(bs) == 0 {
		return nil, noBridge(bridge)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	var out []Tunnel
	for _, b := range bs {
		for _, t := range intent.DecodeBridge(b.Name, b.ExternalIDs).Tunnels {
			t.State = "missing"
			if t.Err != nil {
				t.State = "intent does not decode: " + t.Err.Error()
				out = append(out, t)
				continue
			}
			if is, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(t.Port)}, "name", "ofport", "error"); err == nil && len(is) > 0 {
				t.State = ifaceState(is[0])
			}
			out = append(out, t)
		}
	}
	return out, nil
}
