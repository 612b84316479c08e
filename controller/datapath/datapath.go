// Package datapath is what ovsnet knows of Open vSwitch's datapaths: the
// kernel module's (system) and ovs-vswitchd's userspace one (netdev),
// which one a host has and a bridge uses, what each can do, and the
// choices that follow (the default attach type, the types it cannot
// carry, when containers must compute their own checksums, and turning
// a port's offloads to match).
package datapath

import (
	"cmp"
	"context"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// The datapath types: the kernel module's and ovs-vswitchd's own.
const (
	System = "system"
	Netdev = "netdev"
)

// Detect returns "system" when the kernel's openvswitch module is
// usable (its generic netlink family exists), else "netdev".
func Detect() string {
	if _, err := netlink.GenlFamilyGet("ovs_datapath"); err == nil {
		return System
	}
	return Netdev
}

// KernelDevice is the device of OVS's kernel datapath in this network
// namespace: ovs-vswitchd makes it for its first system bridge.
const KernelDevice = "ovs-system"

// CheckKernel says whether the kernel datapath a system bridge b
// needs is there. Deleted behind ovs-vswitchd's back (ovs-dpctl del-dp,
// the openvswitch module reloaded), it stays gone until ovs-vswitchd
// restarts: its bridges forward nothing and their devices are gone.
func CheckKernel(b *vswitchd.Bridge) error {
	if Of(b) != System {
		return nil
	}
	if l, err := netlink.LinkByName(KernelDevice); err == nil && l.Type() == "openvswitch" {
		return nil
	}
	return fmt.Errorf("bridge %s: the kernel datapath %s is gone (ovs-dpctl del-dp, or the openvswitch module reloaded) "+
		"and ovs-vswitchd does not make it again while it runs: restart ovs-vswitchd "+
		"(systemctl restart openvswitch-switch, or /usr/share/openvswitch/scripts/ovs-ctl restart), then run ovsnet reconcile", b.Name, KernelDevice)
}

// DescribeFeatures says what datapath type dp can do, from the
// capabilities ovs-vswitchd reports (OVSDB's Datapath table), and what
// ovsnet does differently because of it.
func DescribeFeatures(dp string, caps map[string]string) string {
	yes := func(k string) string {
		if caps[k] == "true" {
			return "yes"
		}
		return "no"
	}
	nd := "flows answer neighbour solicitations"
	if caps["nd_ext"] != "true" {
		nd = "neighbour solicitations relayed to their owners (flows cannot write ND options)"
	}
	var more string
	if dp == System {
		more = "; veth ports (internal ports cannot be renamed in a container here); tunnels are the kernel's vports, the underlay left as it is"
	} else {
		more = "; internal ports by default; VXLAN through a kernel device, GRE through OVS's own tunnels on an ovs-DEV underlay bridge"
	}
	return fmt.Sprintf("ND extension %s, conntrack %s (zones %s, NAT %s), tunnel push/pop %s: %s%s",
		yes("nd_ext"), yes("ct_state"), yes("ct_zone"), yes("ct_state_nat"), yes("tnl_push_pop"), nd, more)
}

// Of is bridge b's datapath type ("" is OVS's default, system).
func Of(b *vswitchd.Bridge) string {
	if b.DatapathType == "" {
		return System
	}
	return b.DatapathType
}

// DefaultType is the attach type used on a datapath when --type is not
// given, chosen from throughput measured on the userspace datapath (see
// README): an internal port moved into the container carried 9.5 Gbit/s
// (0.90x a Linux bridge) where a veth carried 6.3 with userspace TSO on
// (offloads kept) and 0.64 with it off (offloads off, which TCP needs then).
// On the kernel datapath a veth is what ovs-docker and Docker use.
func DefaultType(dp string) string {
	if dp == Netdev {
		return attach.TypeInternal
	}
	return attach.TypeVeth
}

// CheckType refuses attach type typ where datapath dp cannot carry it: on
// the kernel datapath a port device keeps the name it was made with, so an
// internal port renamed in its container is re-created by ovs-vswitchd
// under its old name in the host, and its OpenFlow port then leads there.
func CheckType(dp, typ string) error {
	if dp == System && typ == attach.TypeInternal {
		return fmt.Errorf("an internal port cannot be renamed in its container on the kernel datapath (system): " +
			"ovs-vswitchd would re-create it in the host under its old name; use --type veth, the default there")
	}
	return nil
}

// NoTxOffload says whether a container interface must compute its own
// checksums (and so segment its own TCP): on the userspace datapath a veth
// unless ovs-vswitchd runs with userspace TSO (tso, asked only then: else
// OVS forwards partial-checksum packets as they are, and TCP stalls), and
// any interface on a network spanning hosts, because OVS 3.1's userspace
// tunnels cannot encapsulate offloaded packets (measured here: ping passes,
// TCP does not connect).
func NoTxOffload(b intent.Bridge, typ, dp string, tso func() bool) bool {
	return dp == Netdev && (b.OVSTunnels() || typ == attach.TypeVeth && !tso())
}

// ConvergeTxOffload turns a ready port's TX offload on or off (off) as the
// running ovs-vswitchd needs (noTxOffload) and records it: restarted with
// userspace TSO turned off, it would otherwise stall TCP over every veth
// attached while TSO was on; turned on, it lets older veths keep their
// offloads. An internal port's is its device in the container.
func ConvergeTxOffload(ctx context.Context, db *ovsdb.Client, ifc vswitchd.Interface, off bool) (string, error) {
	ref := intent.RefOf(ifc.ExternalIDs)
	ns := ref.Netns
	if !attach.NetnsExists(ns) {
		return "", nil // the container is gone: garbage collection's job
	}
	set := func() error { return attach.SetVethTxOffload(ifc.Name, ns, ref.Iface, !off) }
	if ifc.Type == attach.TypeInternal {
		set = func() error { return attach.SetTxOffloadIn(ns, ref.Iface, !off) }
	}
	if err := set(); err != nil {
		return "", err
	}
	keys, del := intent.TxOffload(off)
	how := "off (ovs-vswitchd runs without userspace TSO, or the bridge has OVS tunnels)"
	if !off {
		how = "on (ovs-vswitchd runs with userspace TSO)"
	}
	if _, err := db.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifc.UUID, keys, del...) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("turned TX offload %s on %s %s of %s", how, cmp.Or(ifc.Type, "veth"), ifc.Name, intent.RefOf(ifc.ExternalIDs).String()), nil
}
