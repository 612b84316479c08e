package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// PortOptions are add-port's arguments.
type PortOptions struct {
	Bridge, Iface, Container string
	// Addresses: "auto" allocates the lowest free address of each of the
	// bridge's families not given explicitly; anything else is ADDR[/PLEN].
	Addresses []string
	Gateway   string
	MAC       string
	MTU       int
	VLAN      int
	Type      string // veth|internal; "" picks the datapath's default
}

// Port is an attached container interface, as add-port and show report it.
type Port struct {
	Bridge    string   `json:"bridge"`
	Container string   `json:"container"`
	Iface     string   `json:"interface"`
	Addresses []string `json:"addresses,omitempty"`
	Gateways  []string `json:"gateways,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	MTU       int      `json:"mtu,omitempty"`
	VLAN      int      `json:"vlan,omitempty"`
	Type      string   `json:"type"`
	OVSPort   string   `json:"ovs_port"`
	Ofport    int      `json:"ofport,omitempty"`
	Netns     string   `json:"netns,omitempty"`
	State     string   `json:"state,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// DefaultType is the attach type used on a datapath when --type is not
// given, chosen from throughput measured on the userspace datapath (see
// README): an internal port moved into the container carried 10.8 Gbit/s
// where a veth (offloads off, which TCP needs there) carried 0.67 Gbit/s.
// On the kernel datapath a veth is what ovs-docker and Docker use.
func DefaultType(datapath string) string {
	if datapath == DatapathNetdev {
		return attach.TypeInternal
	}
	return attach.TypeVeth
}

const maxAttempts = 100

// AddPort attaches CONTAINER to BRIDGE as INTERFACE. On any failure it
// rolls back everything it did: links, the OVS port, the address.
func (h *Host) AddPort(ctx context.Context, o PortOptions) (*Port, error) {
	tr := newTracer()
	defer tr.done("add-port")
	if err := CheckIfName("bridge", o.Bridge); err != nil {
		return nil, err
	}
	if err := CheckIfName("interface", o.Iface); err != nil {
		return nil, err
	}
	if err := CheckMTU(o.MTU); err != nil {
		return nil, err
	}
	if o.VLAN != 0 && (o.VLAN < 1 || o.VLAN > 4094) {
		return nil, fmt.Errorf("VLAN %d is outside 1..4094", o.VLAN)
	}
	if o.Type != "" && o.Type != attach.TypeVeth && o.Type != attach.TypeInternal {
		return nil, fmt.Errorf("unknown attach type %q: use veth or internal", o.Type)
	}
	var mac net.HardwareAddr
	if o.MAC != "" {
		m, err := ParseMAC(o.MAC)
		if err != nil {
			return nil, err
		}
		mac = m
	} else {
		mac = randomMAC()
	}
	var gateway netip.Addr
	if o.Gateway != "" {
		g, err := netip.ParseAddr(o.Gateway)
		if err != nil {
			return nil, fmt.Errorf("malformed gateway %q: want an address such as 173.16.1.1", o.Gateway)
		}
		gateway = g
	}
	auto := false
	var requested []netip.Prefix
	for _, a := range o.Addresses {
		if a == "auto" {
			auto = true
			continue
		}
		p, err := ipam.ParseRequest(a)
		if err != nil {
			return nil, err
		}
		for _, r := range requested {
			if r.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("two %s addresses (%s, %s): give at most one per family", ipam.Family(p.Addr()), r.Addr(), p.Addr())
			}
		}
		requested = append(requested, p)
	}

	snap, err := h.DB.ReadBridge(ctx, o.Bridge)
	if err != nil {
		return nil, err
	}
	tr.step("read bridge")
	if snap == nil {
		return nil, noBridge(o.Bridge)
	}
	subnets, err := bridgeSubnets(snap.Bridge.ExternalIDs)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: bad stored settings: %w", o.Bridge, err)
	}
	if auto && len(subnets) == 0 {
		return nil, fmt.Errorf("--ip without an address needs a subnet on bridge %s: give --ip=ADDR/PLEN, or recreate the bridge with --subnet", o.Bridge)
	}
	// Reject a bad explicit address or gateway before touching anything.
	var onLink []netip.Prefix
	for _, r := range requested {
		p, err := ipam.Validate(r, subnets, usedAddrs(snap.Interfaces))
		if err != nil {
			return nil, err
		}
		onLink = append(onLink, p.Masked())
	}
	if auto {
		for _, s := range subnets {
			onLink = append(onLink, s.Prefix)
		}
	}
	if gateway.IsValid() {
		ok := false
		for _, p := range onLink {
			ok = ok || p.Contains(gateway)
		}
		if !ok {
			return nil, fmt.Errorf("gateway %s is not on the interface's %s subnet: give a gateway inside it", gateway, ipam.Family(gateway))
		}
	}

	target, err := attach.Resolve(ctx, o.Container)
	if err != nil {
		return nil, err
	}
	tr.step("resolve container")
	dups, err := h.DB.FindInterfaces(ctx, map[string]string{ovsdb.KeyContainerID: o.Container, ovsdb.KeyContainerIface: o.Iface})
	if err != nil {
		return nil, err
	}
	if len(dups) > 0 {
		return nil, fmt.Errorf("port already attached for CONTAINER=%s and INTERFACE=%s (OVS port %s): remove it with `ovsnet del-port BRIDGE %s %s`", o.Container, o.Iface, dups[0].Name, o.Iface, o.Container)
	}
	if has, err := attach.HasLink(target.Netns, o.Iface); err != nil {
		return nil, fmt.Errorf("container %s: %w", o.Container, err)
	} else if has {
		return nil, fmt.Errorf("interface %s already present in container %s: choose another INTERFACE name", o.Iface, o.Container)
	}
	tr.step("check duplicates")

	dp := datapathOf(&snap.Bridge)
	typ := o.Type
	if typ == "" {
		typ = DefaultType(dp)
	}
	mtu := o.MTU
	if mtu == 0 {
		mtu = atoi(snap.Bridge.ExternalIDs[ovsdb.KeyMTU])
	}
	host := attach.HostName(o.Bridge, o.Container, o.Iface)
	cfg := attach.Config{Name: o.Iface, MAC: mac, MTU: mtu, NoTxOffload: typ == attach.TypeVeth && dp == DatapathNetdev}

	if taken, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(host)}, "name"); err != nil {
		return nil, err
	} else if len(taken) > 0 {
		return nil, fmt.Errorf("OVS port %s already exists but is not %s:%s's: remove it (ovs-vsctl del-port %s) or choose another INTERFACE", host, o.Container, o.Iface, host)
	}

	// A veth exists before its OVS row, so ovs-vswitchd finds the device
	// when it reads the row and no wait on it is needed.
	if typ == attach.TypeVeth {
		// A link of this name with no row (checked above) is the leftover
		// of an interrupted attach.
		attach.DeleteLink(host)
		if err := attach.CreateVeth(host, target.Netns, cfg); err != nil {
			return nil, err
		}
		tr.step("create veth")
	}
	rollbackLink := func() {
		if typ == attach.TypeVeth {
			attach.DeleteLink(host)
		}
	}

	var portUUID string
	var addrs []netip.Prefix
	var attempts int
	for attempt := 0; ; attempt++ {
		addrs, err = chooseAddresses(requested, auto, subnets, usedAddrs(snap.Interfaces))
		if err != nil {
			rollbackLink()
			return nil, err
		}
		ext := map[string]string{
			ovsdb.KeyContainerID: o.Container, ovsdb.KeyContainerIface: o.Iface,
			ovsdb.KeyOwner: ovsdb.OwnerOvsnet, ovsdb.KeyBridge: o.Bridge,
			ovsdb.KeyMAC: mac.String(), ovsdb.KeyNetns: target.Netns, ovsdb.KeyType: typ,
		}
		for _, a := range addrs {
			k := ovsdb.KeyIPv4
			if a.Addr().Is6() {
				k = ovsdb.KeyIPv6
			}
			ext[k] = a.String()
		}
		if mtu > 0 {
			ext[ovsdb.KeyMTU] = strconv.Itoa(mtu)
		}
		ptype := ""
		if typ == attach.TypeInternal {
			ptype = "internal"
		}
		spec := ovsdb.PortSpec{Name: host, Type: ptype, OfportRequest: nextOfport(snap.Interfaces), VLAN: o.VLAN, MTU: mtu, ExternalIDs: ext}
		cfg.Gateways = gatewaysFor(addrs, subnets, gateway)
		var gws []string
		for _, g := range cfg.Gateways {
			gws = append(gws, g.String())
		}
		if len(gws) > 0 {
			ext[ovsdb.KeyPortGW] = strings.Join(gws, ",")
		}
		ops := append(ovsdb.GuardBridge(o.Bridge, snap.Bridge.ExternalIDs), ovsdb.AddPorts(o.Bridge, spec)...)
		res, err := h.DB.Commit(ctx, ops)
		if err == nil {
			portUUID = res[3].UUID.GoUUID // guard (2 ops), interface, port
			attempts = attempt + 1
			break
		}
		if !errors.Is(err, ovsdb.ErrConflict) || attempt >= maxAttempts {
			rollbackLink()
			if strings.Contains(err.Error(), "constraint violation") {
				return nil, fmt.Errorf("OVS port %s already exists: %w", host, err)
			}
			return nil, fmt.Errorf("attach %s to %s: %w", o.Container, o.Bridge, err)
		}
		// Another attach committed first: re-read and retry with jitter.
		time.Sleep(time.Duration(randInt(1000*(attempt%10+1))) * time.Microsecond)
		if snap, err = h.DB.ReadBridge(ctx, o.Bridge); err != nil || snap == nil {
			rollbackLink()
			return nil, fmt.Errorf("re-read bridge %s: %v", o.Bridge, err)
		}
	}
	cfg.Addrs = addrs
	tr.step(fmt.Sprintf("commit port (%d tries)", attempts))

	rollback := func(cause error) error {
		_, err := h.DB.Commit(context.Background(), ovsdb.DeletePorts(o.Bridge, portUUID))
		rollbackLink()
		if err != nil {
			return fmt.Errorf("%w (and rolling back port %s failed: %v)", cause, host, err)
		}
		return cause
	}
	cur := o.Iface
	if typ == attach.TypeInternal {
		// ovs-vswitchd must finish adding the tap (it sets promiscuous mode,
		// MTU, ...) while the tap is still in its namespace: a tap moved away
		// earlier fails the add and is destroyed. Its OpenFlow port number
		// in OVSDB says the add is done: the one wait on ovs-vswitchd here.
		if _, err := h.DB.WaitOfport(ctx, host, LinkTimeout); err != nil {
			return nil, rollback(err)
		}
		tr.step("wait for ovs-vswitchd")
		if err := attach.MoveIn(host, target.Netns); err != nil {
			return nil, rollback(err)
		}
		cur = host
	}
	if err := attach.Configure(target.Netns, cur, cfg); err != nil {
		return nil, rollback(fmt.Errorf("configure %s in container %s: %w", o.Iface, o.Container, err))
	}
	tr.step("configure in container")

	p := &Port{Bridge: o.Bridge, Container: o.Container, Iface: o.Iface, MAC: mac.String(), MTU: mtu,
		VLAN: o.VLAN, Type: typ, OVSPort: host, Netns: target.Netns}
	for _, a := range addrs {
		p.Addresses = append(p.Addresses, a.String())
	}
	for _, g := range cfg.Gateways {
		p.Gateways = append(p.Gateways, g.String())
	}
	return p, nil
}

// chooseAddresses validates the explicit addresses and allocates one for each
// remaining family of the bridge when auto is set.
func chooseAddresses(requested []netip.Prefix, auto bool, subnets []ipam.Subnet, used map[netip.Addr]string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, r := range requested {
		p, err := ipam.Validate(r, subnets, used)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if !auto {
		return out, nil
	}
	for _, s := range subnets {
		given := false
		for _, p := range out {
			given = given || p.Addr().Is4() == s.Prefix.Addr().Is4()
		}
		if given {
			continue
		}
		p, err := ipam.Allocate(s, used)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// gatewaysFor picks the default gateway of each family the interface has an
// address in: --gateway if given, else the bridge's gateway when the address
// is in the bridge's subnet.
func gatewaysFor(addrs []netip.Prefix, subnets []ipam.Subnet, explicit netip.Addr) []netip.Addr {
	var gws []netip.Addr
	for _, a := range addrs {
		if explicit.IsValid() && explicit.Is4() == a.Addr().Is4() {
			gws = append(gws, explicit)
			continue
		}
		for _, s := range subnets {
			if s.Prefix.Contains(a.Addr()) {
				gws = append(gws, s.Gateway)
			}
		}
	}
	return gws
}

func randInt(n int) int64 {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return v.Int64()
}

// randomMAC returns a random locally administered unicast MAC.
func randomMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	rand.Read(m)
	m[0] = m[0]&0xfe | 0x02
	return m
}

// containerPorts finds the ports on bridge that carry CONTAINER's interfaces
// (iface "" for all of them), ovs-docker's included.
func (h *Host) containerPorts(ctx context.Context, bridge, container, iface string) (*vswitchd.Bridge, []vswitchd.Interface, []vswitchd.Port, error) {
	if err := CheckIfName("bridge", bridge); err != nil {
		return nil, nil, nil, err
	}
	br, err := h.DB.GetBridge(ctx, bridge)
	if err != nil {
		return nil, nil, nil, err
	}
	if br == nil {
		return nil, nil, nil, noBridge(bridge)
	}
	kv := map[string]string{ovsdb.KeyContainerID: container}
	if iface != "" {
		kv[ovsdb.KeyContainerIface] = iface
	}
	ifs, err := h.DB.FindInterfaces(ctx, kv)
	if err != nil {
		return nil, nil, nil, err
	}
	onBridge := map[string]bool{}
	for _, p := range br.Ports {
		onBridge[p] = true
	}
	var outI []vswitchd.Interface
	var outP []vswitchd.Port
	for _, i := range ifs {
		p, err := h.DB.PortOf(ctx, i.UUID)
		if err != nil {
			return nil, nil, nil, err
		}
		if p != nil && onBridge[p.UUID] {
			outI, outP = append(outI, i), append(outP, *p)
		}
	}
	return br, outI, outP, nil
}

// DelPort detaches CONTAINER's INTERFACE; it fails if there is none.
func (h *Host) DelPort(ctx context.Context, bridge, iface, container string) error {
	if err := CheckIfName("interface", iface); err != nil {
		return err
	}
	_, ifs, ports, err := h.containerPorts(ctx, bridge, container, iface)
	if err != nil {
		return err
	}
	if len(ifs) == 0 {
		return fmt.Errorf("failed to find any attached port in %s for CONTAINER=%s and INTERFACE=%s", bridge, container, iface)
	}
	return h.detach(ctx, bridge, ifs, ports)
}

// DelPorts detaches all of CONTAINER's interfaces; none is not an error.
func (h *Host) DelPorts(ctx context.Context, bridge, container string) (int, error) {
	_, ifs, ports, err := h.containerPorts(ctx, bridge, container, "")
	if err != nil || len(ifs) == 0 {
		return 0, err
	}
	return len(ifs), h.detach(ctx, bridge, ifs, ports)
}

// detach removes the ports in one transaction, then their veths. The rows go
// first: a row without its device would be a port ovs-vswitchd keeps failing
// to open, while a veth without its row is cleaned up by the next attach of
// the same name or by reconcile.
func (h *Host) detach(ctx context.Context, bridge string, ifs []vswitchd.Interface, ports []vswitchd.Port) error {
	var uuids []string
	for _, p := range ports {
		uuids = append(uuids, p.UUID)
	}
	if _, err := h.DB.Commit(ctx, ovsdb.DeletePorts(bridge, uuids...)); err != nil {
		return err
	}
	return removeLinks(ifs)
}

// removeLinks deletes the devices of detached container interfaces: veth host
// ends (which take the container ends with them) and internal ports.
func removeLinks(ifs []vswitchd.Interface) error {
	var errs []error
	for _, i := range ifs {
		e := i.ExternalIDs
		switch {
		case e[ovsdb.KeyContainerID] == "":
			continue
		case i.Type == "":
			if err := attach.DeleteLink(i.Name); err != nil {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", i.Name, err))
			}
		case i.Type == "internal" && e[ovsdb.KeyNetns] != "":
			if err := attach.DeleteInternal(e[ovsdb.KeyNetns], e[ovsdb.KeyContainerIface]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SetVLAN sets the access VLAN of CONTAINER's INTERFACE.
func (h *Host) SetVLAN(ctx context.Context, bridge, iface, container string, vlan int) error {
	if vlan < 1 || vlan > 4094 {
		return fmt.Errorf("VLAN %d is outside 1..4094", vlan)
	}
	if err := CheckIfName("interface", iface); err != nil {
		return err
	}
	_, ifs, ports, err := h.containerPorts(ctx, bridge, container, iface)
	if err != nil {
		return err
	}
	if len(ifs) == 0 {
		return fmt.Errorf("failed to find any attached port in %s for CONTAINER=%s and INTERFACE=%s", bridge, container, iface)
	}
	_, err = h.DB.Commit(ctx, ovsdb.SetVLAN(ports[0].UUID, vlan))
	return err
}
