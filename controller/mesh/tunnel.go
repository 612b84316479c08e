// Package mesh is ovsnet's tunnels between hosts, below the operations
// that add and remove them: tunnel types and options, their OVS ports,
// the kernel's VXLAN and gretap devices spliced to OVS on the userspace
// datapath, the underlay bridge that datapath's own tunnels leave
// through, and the bridges' tunnel keys. It works on a host's OVSDB and
// links; the operations (package tunnel) add the flows and NAT.
package mesh

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
	"github.com/vishvananda/netlink"
)

// Tunnel types and what each adds to a frame (outer IPv4 header, the
// tunnel's own header, the inner Ethernet header): a container's MTU is the
// underlay's minus this.
const (
	VXLAN  = "vxlan"
	GRE    = "gre"
	Geneve = "geneve" // OVS's own tunnel (no kernel device path)
)

// Tunnel ports take OpenFlow port numbers from OfportBase up, above
// the containers' (whose counter stops there).
const (
	OfportBase = 65200
	maxTunnels = 0xff00 - OfportBase
)

// Overhead is the encapsulation overhead of a tunnel type over IPv4:
// VXLAN and Geneve (without options) 20+8+8+14 = 50; GRE with a key
// 20+8+14 = 42.
func Overhead(typ string) int {
	if typ == GRE {
		return 42
	}
	return 50
}

// PortName is the OVS port of a tunnel: "t" + type initial + 8 hex
// digits of a hash, so that the same tunnel always gets the same name.
func PortName(bridge, remote, typ string, key uint32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", bridge, remote, typ, key)
	return fmt.Sprintf("t%c%08x", typ[0], h.Sum32())
}

// Options are `tunnel add`'s.
type Options struct {
	Bridge  string
	Remote  string
	Type    string  // vxlan (default) or gre
	Key     *uint32 // VNI or GRE key; default 0
	LocalIP string  // default: the source address of the route to Remote
	// Device: "kernel" (a kernel VXLAN or gretap device; the userspace
	// datapath only, and its default there for VXLAN, and for GRE where the
	// kernel has ip_gre) or "ovs" (OVS's own port).
	Device string
}

// Check checks tunnel add's options without reading anything: the remote
// and the key.
func (o *Options) Check() (remote netip.Addr, key uint32, err error) {
	remote, err = netip.ParseAddr(o.Remote)
	if err != nil || !remote.Is4() || remote.IsUnspecified() || remote.IsMulticast() {
		return remote, 0, fmt.Errorf("bad remote %q: want the other host's IPv4 underlay address, such as 192.0.2.2", o.Remote)
	}
	if o.Type == "" {
		o.Type = VXLAN
	}
	if o.Type != VXLAN && o.Type != GRE && o.Type != Geneve {
		return remote, 0, fmt.Errorf("unknown tunnel type %q: use vxlan, gre or geneve", o.Type)
	}
	if o.Device != "" && o.Device != "kernel" && o.Device != "ovs" {
		return remote, 0, fmt.Errorf("unknown --device %q: use kernel or ovs", o.Device)
	}
	if o.Key != nil {
		key = *o.Key
	}
	if o.Type != GRE && key >= 1<<24 {
		return remote, 0, fmt.Errorf("--key %d: a %s network identifier has 24 bits (0..16777215)", key, strings.ToUpper(o.Type))
	}
	return remote, key, nil
}

// Ends is the local address of a tunnel to remote and the device
// holding it: --local-ip, or the source of the route to remote.
func (o Options) Ends(remote netip.Addr) (local netip.Addr, dev string, err error) {
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

// Kernel says whether the tunnel is a kernel device ovsnet makes and
// splices to an internal port, on a bridge of datapath dp (userspace:
// netdev) where the kernel can (gre: it has ip_gre): VXLAN, and GRE where
// it can, unless --device ovs. OVS's own tunnels otherwise: on the kernel
// datapath they are kernel vports already. --device kernel where no
// kernel device can be is an error.
func (o Options) Kernel(dp string, gre bool) (bool, error) {
	can := dp == datapath.Netdev && (o.Type == VXLAN || o.Type == GRE && gre)
	if o.Device == "kernel" && !can {
		why := "the kernel datapath's tunnels are kernel vports already"
		switch {
		case dp != datapath.Netdev:
		case o.Type == GRE:
			why = "this kernel has no ip_gre for gretap devices (modprobe ip_gre)"
		default:
			why = "the kernel device path is VXLAN's and GRE's"
		}
		return false, fmt.Errorf("--device kernel on bridge %s's %s tunnel: %s; leave --device out", o.Bridge, o.Type, why)
	}
	return can && o.Device != "ovs", nil
}

// Against compares tunnel t with the bridge's existing ones: the same
// tunnel again is returned (nothing to do), another to the same remote,
// or VXLAN tunnels of the other kind (both would take the VXLAN packets
// arriving for this host), are errors.
func (o Options) Against(existing []intent.Tunnel, t intent.Tunnel, kernel bool) (*intent.Tunnel, error) {
	kind := map[bool]string{true: "kernel", false: "ovs"}
	for i, e := range existing {
		switch {
		case e.Remote == t.Remote && e.Type == t.Type && e.Key == t.Key && (o.LocalIP == "" || e.Local == t.Local):
			return &existing[i], nil
		case e.Remote == t.Remote:
			return &intent.Tunnel{}, fmt.Errorf("bridge %s already has a %s tunnel (key %d, local %s) to %s: delete it first with `ovsnet tunnel del %s %s`",
				o.Bridge, e.Type, e.Key, e.Local, e.Remote, o.Bridge, e.Remote)
		case e.Err == nil && e.Type == VXLAN && t.Type == VXLAN && e.Kernel != kernel:
			return &intent.Tunnel{}, fmt.Errorf("bridge %s's VXLAN tunnel to %s is --device %s: one bridge's VXLAN tunnels are all of one kind", o.Bridge, e.Remote, kind[e.Kernel])
		}
	}
	return nil, nil
}

// IfaceState is how OVS sees a tunnel port: "up" once it has a number,
// else its error, or "adding".
func IfaceState(i vswitchd.Interface) string {
	switch {
	case i.Error != nil && *i.Error != "":
		return *i.Error
	case i.Ofport != nil && *i.Ofport > 0:
		return "up"
	}
	return "adding"
}

// Place names t's port and gives it its OpenFlow number: a kernel
// (kernel) VXLAN tunnel shares the bridge's device with the others
// (shared), any other, a kernel GRE tunnel too, gets a port of its own.
func Place(t *intent.Tunnel, existing []intent.Tunnel, kernel bool) (shared bool, err error) {
	t.Kernel = kernel
	if kernel && t.Type == VXLAN {
		t.Port = kernelPortName(t.Bridge, t.Key)
		for _, e := range existing {
			if e.Err == nil && e.Kernel && e.Type == VXLAN {
				t.Port, t.Ofport = e.Port, e.Ofport
				return true, nil
			}
		}
	}
	used := map[int]bool{}
	for _, e := range existing {
		used[e.Ofport] = true
	}
	for t.Ofport = OfportBase; used[t.Ofport]; t.Ofport++ {
	}
	if t.Ofport >= OfportBase+maxTunnels {
		return false, fmt.Errorf("bridge %s has %d tunnels, the most it can hold", t.Bridge, maxTunnels)
	}
	return false, nil
}

// PortSpec is the OVSDB port of tunnel t: OVS's own tunnel, or the
// internal port spliced to the kernel's device.
func PortSpec(t intent.Tunnel) ovsdb.PortSpec {
	if t.Kernel {
		return ovsdb.PortSpec{Name: t.Port, Type: attach.TypeInternal, OfportRequest: t.Ofport, MTU: kernelMTU(t),
			ExternalIDs: t.PortIDs(), PortIDs: intent.Ownership(t.Bridge)}
	}
	return ovsdb.PortSpec{Name: t.Port, Type: t.Type, OfportRequest: t.Ofport,
		Options:     map[string]string{"remote_ip": t.Remote, "local_ip": t.Local, "key": strconv.FormatUint(uint64(t.Key), 10)},
		ExternalIDs: t.PortIDs(), PortIDs: intent.Ownership(t.Bridge)}
}

// AutoMTU returns the bridge's MTU settings for tunnels ts, unless the user
// chose the MTU: the smallest underlay MTU less its tunnel's overhead.
func AutoMTU(b intent.Bridge, ts []intent.Tunnel) map[string]string {
	if b.MTU != 0 && !b.MTUAuto {
		return nil
	}
	mtu := 0
	for _, t := range ts {
		if t.UnderlayMTU <= 0 {
			continue
		}
		if m := t.UnderlayMTU - Overhead(t.Type); mtu == 0 || m < mtu {
			mtu = m
		}
	}
	if mtu == 0 {
		return nil
	}
	return intent.MTUSetting(mtu)
}

// DefaultMTU is the MTU of a network spanning hosts before it has
// tunnels: the default route's device's MTU less the larger overhead
// (VXLAN's), or 1450.
func DefaultMTU() int {
	mtu := 1500
	if rs, err := netlink.RouteGet(net.IPv4(192, 0, 2, 1)); err == nil && len(rs) > 0 {
		if l, err := netlink.LinkByIndex(rs[0].LinkIndex); err == nil {
			mtu = l.Attrs().MTU
		}
	}
	return mtu - Overhead(VXLAN)
}

// SharesPort says whether another tunnel among rest uses t's port.
func SharesPort(t intent.Tunnel, rest []intent.Tunnel) bool {
	for _, e := range rest {
		if e.Remote != t.Remote && e.Port == t.Port {
			return true
		}
	}
	return false
}

// CheckUnique refuses a tunnel another bridge already has: OVS tells
// tunnels apart by remote address, type and key only.
func CheckUnique(ctx context.Context, db *ovsdb.Client, t intent.Tunnel) error {
	bs, err := BridgeSettings(ctx, db)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.Name == t.Bridge {
			continue
		}
		for _, e := range intent.DecodeBridge(b.Name, b.ExternalIDs).Tunnels {
			if t.Kernel && e.Kernel && t.Type == VXLAN && e.Type == VXLAN && e.Key == t.Key {
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

// DelRows removes a tunnel's key from the bridge, and its port
// unless another of the bridge's tunnels (rest) shares it.
func DelRows(ctx context.Context, db *ovsdb.Client, bridge string, t intent.Tunnel, rest []intent.Tunnel) error {
	var ps []vswitchd.Port
	if !SharesPort(t, rest) {
		var err error
		if ps, err = ovsdb.Select[vswitchd.Port](ctx, db, []ovsdbops.Condition{ovsdb.NameIs(t.Port)}, "_uuid"); err != nil {
			return err
		}
	}
	_, err := db.Do(ctx, func(tx *ovsdb.Tx) {
		tx.SetBridgeExternalIDs(bridge, nil, intent.TunnelKey(t.Remote))
		if len(ps) > 0 {
			tx.DeletePorts(bridge, ps[0].UUID)
		}
	})
	return err
}
