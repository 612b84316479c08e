package mesh

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/vishvananda/netlink"
)

// kernelPortName is the port of a bridge's kernel VXLAN tunnels: an OVS
// internal port "tk" and 8 hex digits of a hash of bridge and VNI, spliced
// to the VXLAN device VXLANDevice names.
func kernelPortName(bridge string, key uint32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%d", bridge, key)
	return fmt.Sprintf("tk%08x", h.Sum32())
}

// VXLANDevice is the kernel VXLAN device behind kernel tunnel port port:
// "vx" and the port's hash.
func VXLANDevice(port string) string { return "vx" + port[2:] }

// kernelSplice joins kernel tunnel port port to its VXLAN device, through
// a macvlan "mv" and the port's hash.
func kernelSplice(port string) attach.Splice {
	return attach.Splice{Dev: VXLANDevice(port), Tap: port, Via: "mv" + port[2:]}
}

// MakeKernel makes t's VXLAN device if the bridge has none yet (made)
// and adds t's remote to it; dev is the underlay device.
func MakeKernel(t intent.Tunnel, dev string) (made bool, err error) {
	v := attach.VXLAN{Name: VXLANDevice(t.Port), VNI: t.Key, Local: netip.MustParseAddr(t.Local), Dev: dev, MTU: kernelMTU(t)}
	if made, err = attach.EnsureVXLAN(v); err != nil {
		return false, err
	}
	if err := attach.SetVXLANRemote(v.Name, netip.MustParseAddr(t.Remote), false); err != nil {
		DropKernel(t, made)
		return false, err
	}
	return made, nil
}

// DropKernel takes t's remote off its device, and the device itself
// with last. Nothing for OVS's own tunnels.
func DropKernel(t intent.Tunnel, last bool) error {
	if !t.Kernel {
		return nil
	}
	if last {
		return attach.DeleteLink(VXLANDevice(t.Port))
	}
	return attach.SetVXLANRemote(VXLANDevice(t.Port), netip.MustParseAddr(t.Remote), true)
}

// kernelMTU is the MTU of kernel tunnel t's device and port: the
// underlay's less VXLAN's overhead (0, the kernel's choice, if unknown).
func kernelMTU(t intent.Tunnel) int {
	if t.UnderlayMTU <= 0 {
		return 0
	}
	return t.UnderlayMTU - Overhead(VXLAN)
}

// Splice joins kernel tunnel t's VXLAN device and OVS port
// (changed: they were not joined), waiting up to wait for
// ovs-vswitchd to make the port's device if wait.
func Splice(ctx context.Context, t intent.Tunnel, wait time.Duration) (changed bool, err error) {
	if wait > 0 {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := attach.WaitLink(ctx, t.Port); err != nil {
			return false, fmt.Errorf("ovs-vswitchd did not make tunnel port %s: %w", t.Port, err)
		}
	}
	return kernelSplice(t.Port).Ensure()
}

// SpliceAll joins each kernel tunnel port of ts to its VXLAN device,
// waiting for ovs-vswitchd to make the ports among added.
func SpliceAll(ctx context.Context, ts []intent.Tunnel, added []ovsdb.PortSpec, wait time.Duration) ([]string, error) {
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
		var w time.Duration
		if fresh[t.Port] {
			w = wait
		}
		changed, err := Splice(ctx, t, w)
		if err != nil {
			return did, fmt.Errorf("tunnel port %s of %s: %w (ovs-vswitchd makes its device: reconcile again once it runs)", t.Port, t.Bridge, err)
		}
		if changed {
			did = append(did, fmt.Sprintf("spliced VXLAN device %s to tunnel port %s of %s", VXLANDevice(t.Port), t.Port, t.Bridge))
		}
	}
	return did, nil
}

// ConvergeKernel puts back t's VXLAN device and its remote, taking
// away a VXLAN device under the port's own name first (the device was the
// bridge's port once; the kernel takes a network identifier once).
func ConvergeKernel(t intent.Tunnel) (did []string, err error) {
	if l, err := netlink.LinkByName(t.Port); err == nil && l.Type() == "vxlan" {
		if err := attach.DeleteLink(t.Port); err != nil {
			return nil, fmt.Errorf("tunnel %s to %s: remove the VXLAN device that was its port: %w", t.Port, t.Remote, err)
		}
	}
	dev, err := attach.LinkOfAddr(netip.MustParseAddr(t.Local))
	if err != nil {
		return nil, fmt.Errorf("tunnel %s to %s: its local address: %w", t.Port, t.Remote, err)
	}
	made, err := MakeKernel(t, dev)
	if made {
		did = append(did, fmt.Sprintf("re-made VXLAN device %s (to %s) of %s", VXLANDevice(t.Port), t.Remote, t.Bridge))
	}
	return did, err
}
