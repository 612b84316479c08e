package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// BridgeOptions are add-br's settings. Nil or empty fields were not given.
type BridgeOptions struct {
	Name     string
	Subnets  []string
	Gateways []string
	Ranges   []string // --ip-range: this host's share of subnets spanning hosts
	MTU      int
	ICC      *bool
	NAT      *bool
	FloodPPS *int // the flood bound of its ports (see PortOptions)
	Datapath string
	// OVN: Name is an OVN network (ovsnet network create), never made
	// here; without it, an OVN network of that name is taken all the same
	// when no bridge has it.
	OVN bool
}

// LinkTimeout bounds how long ovsnet waits for ovs-vswitchd to create a
// device (a bridge's or an internal port's tap).
var LinkTimeout = 10 * time.Second

// AddBridge creates the bridge, or, if it exists, checks that every setting
// given matches and re-applies its gateway addresses (idempotent). It
// returns whether it created the bridge.
func (h *Host) AddBridge(ctx context.Context, o BridgeOptions) (bool, error) {
	subnets, err := o.check()
	if err != nil {
		return false, err
	}
	want := o.settings(subnets)
	br, err := h.DB.GetBridge(ctx, o.Name)
	if err != nil {
		return false, err
	}
	if br != nil {
		if err := o.sameAs(br, want); err != nil {
			return false, err
		}
		// Made by a request racing this one, ovs-vswitchd may not have
		// it yet: what comes next (flows) needs it there.
		if _, err := h.DB.WaitOfport(ctx, o.Name, LinkTimeout); err != nil {
			return false, err
		}
		_, err := h.ConvergeBridge(ctx, o.Name, br.ExternalIDs)
		return false, err
	}
	if err := h.checkSubnetsFree(ctx, subnets); err != nil {
		return false, err
	}

	dp := o.Datapath
	if dp == "" {
		dp = DetectDatapath()
	}
	ext := intent.NewBridge()
	for k, v := range want.Encode() {
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
	if _, err := h.DB.WaitOfport(ctx, o.Name, LinkTimeout); err != nil {
		return undo(err)
	}
	nd, err := h.ProbeND(ctx, o.Name, dp)
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
func (h *Host) ProbeND(ctx context.Context, bridge, dp string) (map[string]string, error) {
	caps, err := h.DB.DatapathCapabilities(ctx, dp, intent.Ownership(""), LinkTimeout)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", bridge, err)
	}
	nd := intent.NDMode(caps["nd_ext"] == "true")
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(bridge, nd) }); err != nil {
		return nil, fmt.Errorf("bridge %s: record its datapath's ND support: %w", bridge, err)
	}
	return nd, nil
}

// check checks add-br's options without reading anything and returns the
// subnets they give.
func (o BridgeOptions) check() ([]ipam.Subnet, error) {
	if err := CheckIfName("bridge", o.Name); err != nil {
		return nil, err
	}
	if err := CheckMTU(o.MTU); err != nil {
		return nil, err
	}
	if err := CheckFloodPPS(o.FloodPPS); err != nil {
		return nil, err
	}
	if o.Datapath != "" && o.Datapath != DatapathSystem && o.Datapath != DatapathNetdev {
		return nil, fmt.Errorf("unknown datapath %q: use system (kernel module) or netdev (userspace)", o.Datapath)
	}
	if len(o.Gateways) > 0 && len(o.Subnets) == 0 {
		return nil, fmt.Errorf("--gateway needs --subnet")
	}
	subnets, err := ipam.ParseSubnets(o.Subnets, o.Gateways)
	if err != nil {
		return nil, err
	}
	if err := ipam.SetRanges(subnets, o.Ranges); err != nil {
		return nil, err
	}
	for _, sn := range subnets {
		if err := ipam.CheckUsable(sn.Prefix); err != nil {
			return nil, err
		}
	}
	return subnets, nil
}

// settings are what the options ask of the bridge.
func (o BridgeOptions) settings(subnets []ipam.Subnet) intent.Settings {
	s := intent.Settings{Subnets: subnets, GatewaysGiven: len(o.Gateways) > 0, MTU: o.MTU, ICC: o.ICC, NAT: o.NAT, FloodPPS: o.FloodPPS}
	if o.MTU == 0 && len(o.Ranges) > 0 {
		// Spans hosts: room for the encapsulation until tunnels say
		// exactly how much (tunnel add).
		s.AutoMTU = mesh.DefaultMTU()
	}
	return s
}

// sameAs refuses an existing bridge whose settings differ from those given.
func (o BridgeOptions) sameAs(br *vswitchd.Bridge, s intent.Settings) error {
	diffs := s.Differences(br.ExternalIDs)
	if o.Datapath != "" && DatapathOf(br) != o.Datapath {
		diffs = append(diffs, fmt.Sprintf("datapath is %s, asked %s", DatapathOf(br), o.Datapath))
	}
	if len(diffs) > 0 {
		return Conflict(fmt.Sprintf("bridge %q already exists with other settings (%s): delete it with `ovsnet del-br %s` or repeat its settings", o.Name, strings.Join(diffs, "; "), o.Name))
	}
	return nil
}

// checkSubnetsFree refuses subnets that overlap another ovsnet bridge's or
// a route of the host's (its LAN, a VPN, Docker's networks): both would
// claim the same addresses, and one side would be cut off.
func (h *Host) checkSubnetsFree(ctx context.Context, subnets []ipam.Subnet) error {
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
					return Conflict(fmt.Sprintf("subnet %s overlaps bridge %s's %s: give another subnet", sn.Prefix, b.Name, t.Prefix))
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
				return Conflict(fmt.Sprintf("subnet %s overlaps the host's route to %s (dev %s): give another subnet", sn.Prefix, p, dev))
			}
		}
	}
	return nil
}

// ConvergeBridge puts the gateway addresses and MTU on the bridge's
// internal port and brings it up. It waits for ovs-vswitchd to create the
// device only when there is something to put on it. It returns what it changed.
func (h *Host) ConvergeBridge(ctx context.Context, name string, ext map[string]string) ([]string, error) {
	bi := intent.DecodeBridge(name, ext)
	if bi.SubnetsErr != nil {
		return nil, bi.SubnetsErr
	}
	subnets, mtu := bi.Subnets, bi.MTU
	if len(subnets) == 0 && mtu == 0 {
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, LinkTimeout)
	defer cancel()
	l, err := attach.WaitLink(wctx, name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	var gws []netip.Prefix
	for _, s := range subnets {
		gws = append(gws, netip.PrefixFrom(s.Gateway, s.Prefix.Bits()))
	}
	return ConvergeGatewayDevice(l, gws, mtu)
}

// ConvergeGatewayDevice brings a gateway's device in the host (a bridge's
// own port, an OVN network's gateway port) to its MTU (0: left alone), up,
// with the gateway addresses gws; it says what it changed.
func ConvergeGatewayDevice(l netlink.Link, gws []netip.Prefix, mtu int) ([]string, error) {
	name := l.Attrs().Name
	var did []string
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return did, fmt.Errorf("set MTU %d on bridge %s: %w", mtu, name, err)
		}
		did = append(did, fmt.Sprintf("set MTU %d on %s", mtu, name))
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return did, fmt.Errorf("set bridge %s up: %w", name, err)
		}
		did = append(did, fmt.Sprintf("set %s up", name))
	}
	// IPv6 addresses vanish whenever a device goes down (ovs-vswitchd may
	// toggle its taps) unless keep_addr_on_down is set on it.
	if len(gws) > 0 {
		os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/keep_addr_on_down", []byte("1"), 0o644)
	}
	have, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return did, err
	}
	for _, gw := range gws {
		present := false
		for _, a := range have {
			if a.IPNet.String() == gw.String() {
				present = true
			}
		}
		if present {
			continue
		}
		na := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(gw.Addr().AsSlice()), Mask: net.CIDRMask(gw.Bits(), gw.Addr().BitLen())}}
		if gw.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(l, na); err != nil {
			return did, fmt.Errorf("add gateway %s to bridge %s: %w", gw, name, err)
		}
		did = append(did, fmt.Sprintf("added gateway %s to %s", gw, name))
	}
	return did, nil
}

// ErrConflict is wrapped by the errors of a request that conflicts with
// what the host has: a bridge with other settings, an overlapping subnet.
var ErrConflict = errors.New("conflicts with the host's configuration")

// Conflict is an error wrapping ErrConflict with message msg.
func Conflict(msg string) error { return &conflictError{msg} }

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }
func (e *conflictError) Unwrap() error { return ErrConflict }

// ErrNoBridge is wrapped when a named bridge does not exist.
var ErrNoBridge = errors.New("bridge not found")

// NoBridge is ErrNoBridge for the bridge name, with how to make it.
func NoBridge(name string) error {
	return fmt.Errorf("%w: %q: create it with `ovsnet add-br %s --subnet CIDR`", ErrNoBridge, name, name)
}

// DelBridge detaches every container on the bridge (their interfaces
// disappear) and removes the bridge. The bridge is marked deleting first
// and its row goes last, once every container device and rule is gone: a
// kill at any point leaves a bridge that del-br again, or reconcile,
// finishes, and no address is free while an interface still holds it.
func (h *Host) DelBridge(ctx context.Context, name string) error {
	if err := CheckIfName("bridge", name); err != nil {
		return err
	}
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return err
	}
	br := topo.Bridge(name)
	if br == nil {
		return NoBridge(name)
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
		if t.Kernel { // the kernel's VXLAN device: not OVS's to remove
			errs = append(errs, attach.DeleteLink(mesh.VXLANDevice(t.Port)))
		}
	}
	if err := errors.Join(append(errs, removeLinks(ifs, h.Devices, h.Tell()))...); err != nil {
		return fmt.Errorf("delete bridge %q: %w (run del-br again, or reconcile, to finish)", name, err)
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.DeleteBridge(br.UUID) }); err != nil {
		return fmt.Errorf("delete bridge %q: %w", name, err)
	}
	h.Flows.Forget(name)
	return errors.Join(h.handOffDefaultRoutes(ctx, ifs), h.NAT().Resync(ctx), mesh.ReleaseUnderlays(ctx, h.DB))
}

// SetBridgeIntent writes keys of bridge name's external_ids (set, then
// the keys in del removed) and brings its bridge-wide flows in line with
// them (a Docker network's VLAN is its gateway's).
func (h *Host) SetBridgeIntent(ctx context.Context, name string, set map[string]string, del ...string) error {
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(name, set, del...) }); err != nil {
		return err
	}
	br, err := h.DB.GetBridge(ctx, name)
	if err != nil {
		return err
	}
	if br == nil {
		return NoBridge(name)
	}
	if err := h.Flows.Apply(br.Name, flowmodel.BridgeChange(br)); err != nil {
		return fmt.Errorf("bridge %s: recorded, but its flows were not updated (run ovsnet reconcile): %w", name, err)
	}
	return nil
}

// AddPortAndBridge makes bridge b if it is missing (an existing one must
// have b's settings, as for add-br) and attaches o to it: a CNI ADD. Of
// two requests making the same bridge at once, one makes it and the other
// finds it made.
func (h *Host) AddPortAndBridge(ctx context.Context, b BridgeOptions, o PortOptions) (*PortView, error) {
	n, err := h.Network(ctx, b.Name)
	made := false
	switch {
	case errors.Is(err, ErrNoBridge) && b.OVN:
		return nil, Conflict(fmt.Sprintf("no OVN network %s: is this host an OVN chassis (ovsnet ovn join ... --nb), and the network made (ovsnet network create %s --subnet CIDR)?", b.Name, b.Name))
	case errors.Is(err, ErrNoBridge):
		if _, err := h.AddBridge(ctx, b); err == nil {
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
	return h.addPort(ctx, n, o)
}
