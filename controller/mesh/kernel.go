package mesh

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/kmod"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/vishvananda/netlink"
)

// kernelPortName is the port of a bridge's kernel VXLAN tunnels: an OVS
// internal port "tk" and 8 hex digits of a hash of bridge and VNI, spliced
// to the VXLAN device Device names. (A kernel GRE tunnel's port is
// PortName's, one per remote.)
func kernelPortName(bridge string, key uint32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%d", bridge, key)
	return fmt.Sprintf("tk%08x", h.Sum32())
}

// Device is the kernel device behind kernel tunnel t's port: a VXLAN
// device "vx", or a gretap device "gr", and the port's hash.
func Device(t intent.Tunnel) string {
	if t.Type == GRE {
		return "gr" + t.Port[2:]
	}
	return "vx" + t.Port[2:]
}

// kernelSplice joins kernel tunnel t's port to its device, through a
// macvlan "mv" and the port's hash.
func kernelSplice(t intent.Tunnel) attach.Splice {
	return attach.Splice{Dev: Device(t), Tap: t.Port, Via: "mv" + t.Port[2:]}
}

// KernelGRE says whether this kernel can make gretap devices (ip_gre
// loaded, built in or installed): where it can, GRE on the userspace
// datapath is a kernel device, as VXLAN is.
func KernelGRE() bool { return kmod.Of("ip_gre").Has() }

// MakeKernel makes kernel tunnel t's device: for VXLAN the bridge's
// device if it has none yet (made) with t's remote added; for GRE t's own
// gretap device. dev is the underlay device.
func MakeKernel(t intent.Tunnel, dev string) (made bool, err error) {
	local := netip.MustParseAddr(t.Local)
	if t.Type == GRE {
		return attach.EnsureGRETap(attach.GRETap{Name: Device(t), Key: t.Key, Local: local, Remote: netip.MustParseAddr(t.Remote), Dev: dev, MTU: kernelMTU(t)})
	}
	v := attach.VXLAN{Name: Device(t), VNI: t.Key, Local: local, Dev: dev, MTU: kernelMTU(t)}
	if made, err = attach.EnsureVXLAN(v); err != nil {
		return false, err
	}
	if err := attach.SetVXLANRemote(v.Name, netip.MustParseAddr(t.Remote), false); err != nil {
		DropKernel(t, made)
		return false, err
	}
	return made, nil
}

// DropKernel takes t's remote off its VXLAN device, and the device
// itself with last (always for GRE: each remote has its own). Nothing for
// OVS's own tunnels.
func DropKernel(t intent.Tunnel, last bool) error {
	if !t.Kernel {
		return nil
	}
	if last || t.Type == GRE {
		return attach.DeleteLink(Device(t))
	}
	return attach.SetVXLANRemote(Device(t), netip.MustParseAddr(t.Remote), true)
}

// kernelMTU is the MTU of kernel tunnel t's device and port: the
// underlay's less the tunnel's overhead (0, the kernel's choice, if
// unknown).
func kernelMTU(t intent.Tunnel) int {
	if t.UnderlayMTU <= 0 {
		return 0
	}
	return t.UnderlayMTU - Overhead(t.Type)
}

// Splice joins kernel tunnel t's device and OVS port
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
	return kernelSplice(t).Ensure()
}

// SpliceAll joins each kernel tunnel port of ts to its device,
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
			did = append(did, fmt.Sprintf("spliced %s device %s to tunnel port %s of %s", kindOf(t), Device(t), t.Port, t.Bridge))
		}
	}
	return did, nil
}

// ConvergeKernel puts back t's device (and a VXLAN device's remote),
// taking away a VXLAN device under the port's own name first (the device
// was the bridge's port once; the kernel takes a network identifier once).
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
		did = append(did, fmt.Sprintf("re-made %s device %s (to %s) of %s", kindOf(t), Device(t), t.Remote, t.Bridge))
	}
	return did, err
}

// kindOf names kernel tunnel t's device kind in messages.
func kindOf(t intent.Tunnel) string {
	if t.Type == GRE {
		return "gretap"
	}
	return "VXLAN"
}
