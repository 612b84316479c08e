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
	"strings"
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
	TunnelVXLAN  = "vxlan"
	TunnelGRE    = "gre"
	TunnelGeneve = "geneve" // OVS's own tunnel, as GRE (no kernel device path)
)

// NoTxOffload says whether a container interface must compute its own
// checksums (and so segment its own TCP): on the userspace datapath a veth
// unless ovs-vswitchd runs with userspace TSO (tso, asked only then: else
// OVS forwards partial-checksum packets as they are, and TCP stalls), and
// any interface on a network spanning hosts, because OVS 3.1's userspace
// tunnels cannot encapsulate offloaded packets (measured here: ping passes,
// TCP does not connect).
func NoTxOffload(b intent.Bridge, typ, dp string, tso func() bool) bool {
	return dp == DatapathNetdev && (b.OVSTunnels() || typ == attach.TypeVeth && !tso())
}

// TunnelOverhead is the encapsulation overhead of a tunnel type over IPv4:
// VXLAN and Geneve (without options) 20+8+8+14 = 50; GRE with a key
// 20+8+14 = 42.
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
	// Device: "kernel" (a kernel VXLAN device; VXLAN on the userspace
	// datapath only, and its default there) or "ovs" (OVS's own port).
	Device string
}

// AddTunnel connects bridge to the same network on the host at Remote. It
// is idempotent: the same tunnel again changes nothing, another tunnel to
// the same remote is an error. It returns the tunnel and whether it made it.
func (h *Host) AddTunnel(ctx context.Context, o TunnelOptions) (Tunnel, bool, error) {
	for attempt := 0; ; attempt++ {
		t, created, err := h.addTunnel(ctx, o)
		if !errors.Is(err, ovsdb.ErrConflict) || attempt >= ovsdb.MaxAttempts {
			return t, created, err
		}
		time.Sleep(ovsdb.Backoff(attempt)) // another writer changed the bridge first
	}
}

// addTunnel is one attempt at AddTunnel: ovsdb.ErrConflict if the bridge
// changed since it was read.
func (h *Host) addTunnel(ctx context.Context, o TunnelOptions) (Tunnel, bool, error) {
	remote, key, err := o.check()
	if err != nil {
		return Tunnel{}, false, err
	}
	br, bi, err := h.tunnelBridge(ctx, o.Bridge)
	if err != nil {
		return Tunnel{}, false, err
	}
	local, dev, err := tunnelEnds(o, remote)
	if err != nil {
		return Tunnel{}, false, err
	}
	t := Tunnel{Bridge: o.Bridge, Remote: remote.String(), Type: o.Type, Key: key, Local: local.String(),
		Port: tunnelPortName(o.Bridge, remote.String(), o.Type, key)}
	existing := bi.Tunnels
	// On the userspace datapath a VXLAN tunnel is a kernel device the
	// kernel encapsulates for (offloads kept, the underlay left alone).
	kernel := DatapathOf(br) == DatapathNetdev && o.Type == TunnelVXLAN && o.Device != "ovs"
	if same, err := o.against(existing, t, kernel); same != nil || err != nil {
		return *same, false, err
	}
	shared, err := placeTunnel(&t, existing, kernel)
	if err != nil {
		return Tunnel{}, false, err
	}
	if err := h.checkTunnelUnique(ctx, t); err != nil {
		return Tunnel{}, false, err
	}
	made, err := h.tunnelDevice(ctx, &t, DatapathOf(br), dev)
	if err != nil {
		return Tunnel{}, false, err
	}
	set := t.Encode()
	for k, v := range autoMTU(bi, append(existing, t)) {
		set[k] = v
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.GuardBridge(o.Bridge, br.ExternalIDs, set)
		if !shared {
			tx.AddPorts(o.Bridge, tunnelPort(t))
		}
	}); err != nil {
		dropKernelTunnel(t, made)
		h.releaseUnderlay(ctx)
		return Tunnel{}, false, fmt.Errorf("add tunnel %s to %s: %w", t.Port, t.Remote, err)
	}
	undo := func(err error) (Tunnel, bool, error) {
		// Leave nothing half-made: the port, the key, the MTU it set.
		h.delTunnelRows(context.Background(), o.Bridge, t, existing)
		dropKernelTunnel(t, made)
		old, gone := intent.RestoreMTU(br.ExternalIDs)
		h.DB.Do(context.Background(), func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(o.Bridge, old, gone...) })
		h.releaseUnderlay(context.Background())
		return Tunnel{}, false, err
	}
	if err := h.tunnelUp(ctx, t); err != nil {
		return undo(err)
	}
	if DatapathOf(br) == DatapathNetdev && !t.Kernel && !bi.OVSTunnels() {
		// The bridge's first OVS tunnel: its containers must now compute
		// their own checksums (NoTxOffload).
		if err := h.offloadsOff(ctx, o.Bridge); err != nil {
			return t, true, fmt.Errorf("tunnel added, but %w (run ovsnet reconcile)", err)
		}
	}
	return t, true, nil
}

// tunnelUp brings a committed tunnel t into service: its port numbered
// (and spliced), the bridge's flows and settings with it, and its NAT (a
// kernel tunnel takes its remotes' packets only).
func (h *Host) tunnelUp(ctx context.Context, t Tunnel) error {
	if err := h.tunnelReady(ctx, t); err != nil {
		return err
	}
	nb, err := h.DB.GetBridge(ctx, t.Bridge)
	if err != nil || nb == nil {
		return fmt.Errorf("bridge %s vanished while adding a tunnel", t.Bridge)
	}
	if err := h.applyBridgeFlows(nb); err != nil {
		return err
	}
	if _, err := h.ConvergeBridge(ctx, t.Bridge, nb.ExternalIDs); err != nil {
		return err
	}
	return h.ResyncNAT(ctx)
}

// tunnelReady waits for ovs-vswitchd to number tunnel t's port and, for a
// kernel tunnel, splices the port to its VXLAN device.
func (h *Host) tunnelReady(ctx context.Context, t Tunnel) error {
	if _, err := h.DB.WaitOfport(ctx, t.Port, LinkTimeout); err != nil {
		return fmt.Errorf("ovs-vswitchd did not add tunnel port %s: %w", t.Port, err)
	}
	if t.Kernel {
		_, err := spliceKernelTunnel(ctx, t, LinkTimeout)
		return err
	}
	return nil
}

// tunnelDevice readies what tunnel t sends through from underlay device
// dev and records the underlay's MTU in t: OVS's own tunnels on the
// userspace datapath (dp) need the local address on an OVS bridge; a
// kernel tunnel needs its VXLAN device, made says it was made now.
func (h *Host) tunnelDevice(ctx context.Context, t *Tunnel, dp, dev string) (made bool, err error) {
	underlayDev := dev
	if dp == DatapathNetdev && !t.Kernel {
		if underlayDev, err = h.ensureUnderlay(ctx, dev); err != nil {
			return false, err
		}
	}
	if l, err := netlink.LinkByName(underlayDev); err == nil {
		t.UnderlayMTU = l.Attrs().MTU
	}
	if !t.Kernel {
		return false, nil
	}
	return kernelTunnel(*t, dev)
}

// offloadsOff turns TX offload off on bridge's container ports that have
// it on.
func (h *Host) offloadsOff(ctx context.Context, bridge string) error {
	ifs, err := h.DB.FindInterfaces(ctx, intent.OfBridge(bridge))
	if err != nil {
		return err
	}
	var errs []error
	for _, ifc := range ifs {
		if r := intent.RefOf(ifc.ExternalIDs); r.IsContainer() && r.Runtime == "" && r.State == intent.StateReady && !r.NoTxOffload {
			_, err := h.ConvergeTxOffload(ctx, ifc, true)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// check checks tunnel add's options without reading anything: the remote
// and the key.
func (o *TunnelOptions) check() (remote netip.Addr, key uint32, err error) {
	remote, err = netip.ParseAddr(o.Remote)
	if err != nil || !remote.Is4() || remote.IsUnspecified() || remote.IsMulticast() {
		return remote, 0, fmt.Errorf("bad remote %q: want the other host's IPv4 underlay address, such as 192.0.2.2", o.Remote)
	}
	if o.Type == "" {
		o.Type = TunnelVXLAN
	}
	if o.Type != TunnelVXLAN && o.Type != TunnelGRE && o.Type != TunnelGeneve {
		return remote, 0, fmt.Errorf("unknown tunnel type %q: use vxlan, gre or geneve", o.Type)
	}
	if o.Device != "" && o.Device != "kernel" && o.Device != "ovs" {
		return remote, 0, fmt.Errorf("unknown --device %q: use kernel or ovs", o.Device)
	}
	if o.Key != nil {
		key = *o.Key
	}
	if o.Type != TunnelGRE && key >= 1<<24 {
		return remote, 0, fmt.Errorf("--key %d: a %s network identifier has 24 bits (0..16777215)", key, strings.ToUpper(o.Type))
	}
	return remote, key, nil
}

// tunnelBridge is the bridge a tunnel goes on, which must be ovsnet's and
// span hosts.
func (h *Host) tunnelBridge(ctx context.Context, name string) (*vswitchd.Bridge, intent.Bridge, error) {
	br, err := h.DB.GetBridge(ctx, name)
	if err != nil {
		return nil, intent.Bridge{}, err
	}
	if br == nil {
		return nil, intent.Bridge{}, noBridge(name)
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

// tunnelEnds is the local address of a tunnel to remote and the device
// holding it: --local-ip, or the source of the route to remote.
func tunnelEnds(o TunnelOptions, remote netip.Addr) (local netip.Addr, dev string, err error) {
	if o.LocalIP != "" {
		if local, err = netip.ParseAddr(o.LocalIP); err != nil || !local.Is4() {
			return local, "", fmt.Errorf("bad --local-ip %q: want one of this host's IPv4 addresses", o.LocalIP)
		}
		if dev, err = attach.LinkOfAddr(local); err != nil {
			return local, "", err
		}
	} else if local, dev, err = attach.RouteSource(remote); err != nil {
		return local, "", err
	}
	if dev == o.Bridge {
		return local, "", fmt.Errorf("the route to %s goes through bridge %s itself: give --local-ip with the underlay address", remote, o.Bridge)
	}
	return local, dev, nil
}

// against compares tunnel t with the bridge's existing ones: the same
// tunnel again is returned (nothing to do), another to the same remote,
// or VXLAN tunnels of the other kind (both would take the VXLAN packets
// arriving for this host), are errors.
func (o TunnelOptions) against(existing []Tunnel, t Tunnel, kernel bool) (*Tunnel, error) {
	if o.Device == "kernel" && !kernel {
		return &Tunnel{}, fmt.Errorf("--device kernel is for VXLAN on the userspace datapath; bridge %s's %s tunnels are OVS's own ports", o.Bridge, o.Type)
	}
	kind := map[bool]string{true: "kernel", false: "ovs"}
	for i, e := range existing {
		switch {
		case e.Remote == t.Remote && e.Type == t.Type && e.Key == t.Key && (o.LocalIP == "" || e.Local == t.Local):
			return &existing[i], nil
		case e.Remote == t.Remote:
			return &Tunnel{}, fmt.Errorf("bridge %s already has a %s tunnel (key %d, local %s) to %s: delete it first with `ovsnet tunnel del %s %s`",
				o.Bridge, e.Type, e.Key, e.Local, e.Remote, o.Bridge, e.Remote)
		case e.Err == nil && e.Type == TunnelVXLAN && t.Type == TunnelVXLAN && e.Kernel != kernel:
			return &Tunnel{}, fmt.Errorf("bridge %s's VXLAN tunnel to %s is --device %s: one bridge's VXLAN tunnels are all of one kind", o.Bridge, e.Remote, kind[e.Kernel])
		}
	}
	return nil, nil
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

// placeTunnel names t's port and gives it its OpenFlow number: a kernel
// VXLAN tunnel (kernel) shares the bridge's device with the others
// (shared), any other gets a port of its own.
func placeTunnel(t *Tunnel, existing []Tunnel, kernel bool) (shared bool, err error) {
	if kernel {
		t.Kernel, t.Port = true, kernelTunnelName(t.Bridge, t.Key)
		for _, e := range existing {
			if e.Err == nil && e.Kernel {
				t.Port, t.Ofport = e.Port, e.Ofport
				return true, nil
			}
		}
	}
	used := map[int]bool{}
	for _, e := range existing {
		used[e.Ofport] = true
	}
	for t.Ofport = tunnelOfportBase; used[t.Ofport]; t.Ofport++ {
	}
	if t.Ofport >= tunnelOfportBase+maxTunnels {
		return false, fmt.Errorf("bridge %s has %d tunnels, the most it can hold", t.Bridge, maxTunnels)
	}
	return false, nil
}

// kernelTunnelName is the port of a bridge's kernel VXLAN tunnels: an OVS
// internal port "tk" and 8 hex digits of a hash of bridge and VNI, spliced
// to the VXLAN device vxlanDevice names.
func kernelTunnelName(bridge string, key uint32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%d", bridge, key)
	return fmt.Sprintf("tk%08x", h.Sum32())
}

// vxlanDevice is the kernel VXLAN device behind kernel tunnel port port:
// "vx" and the port's hash.
func vxlanDevice(port string) string { return "vx" + port[2:] }

// kernelSplice joins kernel tunnel port port to its VXLAN device, through
// a macvlan "mv" and the port's hash.
func kernelSplice(port string) attach.Splice {
	return attach.Splice{Dev: vxlanDevice(port), Tap: port, Via: "mv" + port[2:]}
}

// kernelTunnel makes t's VXLAN device if the bridge has none yet (made)
// and adds t's remote to it; dev is the underlay device.
func kernelTunnel(t Tunnel, dev string) (made bool, err error) {
	v := attach.VXLAN{Name: vxlanDevice(t.Port), VNI: t.Key, Local: netip.MustParseAddr(t.Local), Dev: dev, MTU: kernelTunnelMTU(t)}
	if made, err = attach.EnsureVXLAN(v); err != nil {
		return false, err
	}
	if err := attach.SetVXLANRemote(v.Name, netip.MustParseAddr(t.Remote), false); err != nil {
		dropKernelTunnel(t, made)
		return false, err
	}
	return made, nil
}

// dropKernelTunnel takes t's remote off its device, and the device itself
// with last. Nothing for OVS's own tunnels.
func dropKernelTunnel(t Tunnel, last bool) error {
	if !t.Kernel {
		return nil
	}
	if last {
		return attach.DeleteLink(vxlanDevice(t.Port))
	}
	return attach.SetVXLANRemote(vxlanDevice(t.Port), netip.MustParseAddr(t.Remote), true)
}

// kernelTunnelMTU is the MTU of kernel tunnel t's device and port: the
// underlay's less VXLAN's overhead (0, the kernel's choice, if unknown).
func kernelTunnelMTU(t Tunnel) int {
	if t.UnderlayMTU <= 0 {
		return 0
	}
	return t.UnderlayMTU - TunnelOverhead(TunnelVXLAN)
}

// spliceKernelTunnel joins kernel tunnel t's VXLAN device and OVS port
// (changed: they were not joined), waiting up to LinkTimeout for
// ovs-vswitchd to make the port's device if wait.
func spliceKernelTunnel(ctx context.Context, t Tunnel, wait time.Duration) (changed bool, err error) {
	if wait > 0 {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := attach.WaitLink(ctx, t.Port); err != nil {
			return false, fmt.Errorf("ovs-vswitchd did not make tunnel port %s: %w", t.Port, err)
		}
	}
	return kernelSplice(t.Port).Ensure()
}

// tunnelPort is the OVSDB port of tunnel t: OVS's own tunnel, or the
// internal port spliced to the kernel's VXLAN device.
func tunnelPort(t Tunnel) ovsdb.PortSpec {
	if t.Kernel {
		return ovsdb.PortSpec{Name: t.Port, Type: attach.TypeInternal, OfportRequest: t.Ofport, MTU: kernelTunnelMTU(t),
			ExternalIDs: t.PortIDs(), PortIDs: intent.Ownership(t.Bridge)}
	}
	return ovsdb.PortSpec{Name: t.Port, Type: t.Type, OfportRequest: t.Ofport,
		Options:     map[string]string{"remote_ip": t.Remote, "local_ip": t.Local, "key": strconv.FormatUint(uint64(t.Key), 10)},
		ExternalIDs: t.PortIDs(), PortIDs: intent.Ownership(t.Bridge)}
}

// ConvergeTunnels puts back the tunnel ports of b that were deleted behind
// ovsnet's back (ovs-vsctl del-port): the bridge's settings say they exist.
// A kernel tunnel gets its VXLAN device and its splice back too (an
// ovs-vswitchd restart makes the port's device anew), and one made when
// the VXLAN device itself was the bridge's port moves to the internal
// port.
func (h *Host) ConvergeTunnels(ctx context.Context, topo *ovsdb.Topology, b *vswitchd.Bridge) ([]string, error) {
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
			d, err := convergeKernelTunnel(t)
			did = append(did, d...)
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		typ, ok := have[t.Port]
		want := tunnelPort(t)
		switch {
		case ok && typ == want.Type:
			continue
		case ok:
			stale = append(stale, port[t.Port])
			did = append(did, fmt.Sprintf("moved tunnel port %s of %s to an internal port spliced to VXLAN device %s", t.Port, b.Name, vxlanDevice(t.Port)))
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
	d, err := spliceAll(ctx, ts, specs)
	return append(did, d...), err
}

// spliceAll joins each kernel tunnel port of ts to its VXLAN device,
// waiting for ovs-vswitchd to make the ports among added.
func spliceAll(ctx context.Context, ts []Tunnel, added []ovsdb.PortSpec) ([]string, error) {
	fresh := map[string]bool{}
	for _, p := range added {
		fresh[p.Name] = true
	}
	done := map[string]bool{}
	var did []string
	for _, t := range ts {
		if !t.Kernel || done[t.Port] {
			continue
		}
		done[t.Port] = true
		var wait time.Duration
		if fresh[t.Port] {
			wait = LinkTimeout
		}
		changed, err := spliceKernelTunnel(ctx, t, wait)
		if err != nil {
			return did, fmt.Errorf("tunnel port %s of %s: %w (ovs-vswitchd makes its device: reconcile again once it runs)", t.Port, t.Bridge, err)
		}
		if changed {
			did = append(did, fmt.Sprintf("spliced VXLAN device %s to tunnel port %s of %s", vxlanDevice(t.Port), t.Port, t.Bridge))
		}
	}
	return did, nil
}

// convergeKernelTunnel puts back t's VXLAN device and its remote, taking
// away a VXLAN device under the port's own name first (the device was the
// bridge's port once; the kernel takes a network identifier once).
func convergeKernelTunnel(t Tunnel) (did []string, err error) {
	if l, err := netlink.LinkByName(t.Port); err == nil && l.Type() == "vxlan" {
		if err := attach.DeleteLink(t.Port); err != nil {
			return nil, fmt.Errorf("tunnel %s to %s: remove the VXLAN device that was its port: %w", t.Port, t.Remote, err)
		}
	}
	dev, err := attach.LinkOfAddr(netip.MustParseAddr(t.Local))
	if err != nil {
		return nil, fmt.Errorf("tunnel %s to %s: its local address: %w", t.Port, t.Remote, err)
	}
	made, err := kernelTunnel(t, dev)
	if made {
		did = append(did, fmt.Sprintf("re-made VXLAN device %s (to %s) of %s", vxlanDevice(t.Port), t.Remote, t.Bridge))
	}
	return did, err
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
			if t.Kernel && e.Kernel && e.Key == t.Key {
				// The kernel takes a VXLAN network identifier once per host.
				return fmt.Errorf("bridge %s already carries VXLAN key %d on this host: give this one another --key (the same on both hosts)", b.Name, t.Key)
			}
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

// delTunnelRows removes a tunnel's key from the bridge, and its port
// unless another of the bridge's tunnels (rest) shares it.
func (h *Host) delTunnelRows(ctx context.Context, bridge string, t Tunnel, rest []Tunnel) error {
	var ps []vswitchd.Port
	if !sharesPort(t, rest) {
		var err error
		if ps, err = ovsdb.Select[vswitchd.Port](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(t.Port)}, "_uuid"); err != nil {
			return err
		}
	}
	_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.SetBridgeExternalIDs(bridge, nil, intent.TunnelKey(t.Remote))
		if len(ps) > 0 {
			tx.DeletePorts(bridge, ps[0].UUID)
		}
	})
	return err
}

// sharesPort says whether another tunnel among rest uses t's port.
func sharesPort(t Tunnel, rest []Tunnel) bool {
	for _, e := range rest {
		if e.Remote != t.Remote && e.Port == t.Port {
			return true
		}
	}
	return false
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
	if err := h.delTunnelRows(ctx, bridge, *t, rest); err != nil {
		return fmt.Errorf("delete tunnel %s: %w", t.Port, err)
	}
	errs := []error{dropKernelTunnel(*t, !sharesPort(*t, rest))}
	if set := autoMTU(bi, rest); set != nil {
		_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(bridge, set) })
		errs = append(errs, err)
	}
	if nb, err := h.DB.GetBridge(ctx, bridge); err == nil && nb != nil {
		errs = append(errs, h.applyBridgeFlows(nb))
		_, err := h.ConvergeBridge(ctx, bridge, nb.ExternalIDs)
		errs = append(errs, err)
	}
	errs = append(errs, h.releaseUnderlay(ctx), h.ResyncNAT(ctx))
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
