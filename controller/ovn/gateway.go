package ovn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Egress and published ports on an OVN network, distributed: the network
// has one localport in the northbound database holding its gateway
// address, and every chassis with containers on it binds that localport
// to an internal port of its own, in the host, with the gateway address.
// A container's default route is the gateway, so its traffic to the
// outside goes to its own host (OVN never sends a localport's traffic
// through a tunnel), which masquerades it as it does a bridge's subnet;
// a published port is the host's DNAT to the container through the same
// port. No chassis carries another's traffic and none is a single point
// of failure; the host NAT is the one ovsnet already keeps for bridges.

// gatewayIfName is the gateway's interface on a chassis ("og" and 12 hex
// digits: an interface name fits 15 characters).
func gatewayIfName(network string) string {
	h := sha256.Sum256([]byte("gateway\x00" + network))
	return "og" + hex.EncodeToString(h[:6])
}

// readGateway finds whether the network has its localport (a network
// made with --nat=false has none) and this chassis its interface.
func (a *ovnNetwork) readGateway(ctx context.Context, db *ovsdb.Client) error {
	ps, err := ovsdb.Select[ovnnb.LogicalSwitchPort](ctx, a.nb, []ovsdbops.Condition{ovsdb.NameIs(nb.GatewayPortName(a.name))}, "_uuid")
	if err != nil {
		return err
	}
	a.hasGW, a.gwHere = len(ps) > 0, false
	if a.hasGW {
		is, err := ovsdb.Select[vswitchd.Interface](ctx, db, []ovsdbops.Condition{ovsdb.NameIs(gatewayIfName(a.name))}, "_uuid")
		if err != nil {
			return err
		}
		a.gwHere = len(is) > 0
	}
	return nil
}

// gateway is this chassis' gateway on the network.
func (a *ovnNetwork) gateway() intent.OVNGateway {
	g := intent.OVNGateway{Network: a.name, IfaceID: nb.GatewayPortName(a.name), NAT: a.nat}
	for _, s := range a.subs {
		g.Addresses = append(g.Addresses, netip.PrefixFrom(s.Gateway, s.Prefix.Bits()))
	}
	return g
}

// gatewayNAT is what NAT and publishing know the network's gateway as.
func (a *ovnNetwork) gatewayNAT() nat.Bridge {
	return nat.Bridge{Name: gatewayIfName(a.name), Subnet: a.subs[0].Prefix, NAT: a.nat}
}

// addGateway adds this chassis' gateway interface in the attach's
// transaction, if the network has a gateway and the chassis none yet.
func (a *ovnNetwork) addGateway(tx *ovsdb.Tx, bridge string) {
	if a.hasGW && !a.gwHere {
		tx.AddPorts(bridge, ovsdb.PortSpec{Name: gatewayIfName(a.name), Type: attach.TypeInternal, MTU: a.mtu, ExternalIDs: a.gateway().Encode()})
		a.gwAdded = true
	}
}

// bringUpGateway waits for the gateway interface ovs-vswitchd makes and
// gives it its address; a new one also gets its NAT rules.
func bringUpGateway(ctx context.Context, h *network.Host, a *ovnNetwork) error {
	if !a.hasGW {
		return nil
	}
	name := gatewayIfName(a.name)
	wctx, cancel := context.WithTimeout(ctx, network.LinkTimeout)
	defer cancel()
	l, err := attach.WaitLink(wctx, name)
	if err != nil {
		return fmt.Errorf("the gateway port %s of OVN network %s did not appear: is ovs-vswitchd running? (%w)", name, a.name, err)
	}
	if _, err := convergeOVNGatewayDevice(l, a.gateway(), a.mtu); err != nil {
		return err
	}
	if !a.gwAdded {
		return nil
	}
	return h.NAT().Resync(ctx)
}

// ConvergeGateway brings a chassis' gateway interface (its row ifc,
// its link l: nil while ovs-vswitchd has not made it) to its address, MTU
// and up state. A gateway whose intent does not decode gets nothing.
func ConvergeGateway(ifc vswitchd.Interface, l netlink.Link) ([]string, error) {
	g, _, err := intent.DecodeOVNGateway(network.IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil || l == nil {
		return nil, err
	}
	mtu := 0
	if ifc.MTURequest != nil {
		mtu = *ifc.MTURequest
	}
	return convergeOVNGatewayDevice(l, g, mtu)
}

// convergeOVNGatewayDevice is convergeGatewayDevice with the localport's
// MAC first: containers send to the localport's MAC, which the host's
// stack takes only as its own (ovs-vswitchd makes the tap with another).
func convergeOVNGatewayDevice(l netlink.Link, g intent.OVNGateway, mtu int) ([]string, error) {
	var did []string
	if mac := ipam.MACFor(g.Addresses); l.Attrs().HardwareAddr.String() != mac.String() {
		if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
			return nil, fmt.Errorf("gateway %s: MAC %s: %w", l.Attrs().Name, mac, err)
		}
		did = append(did, fmt.Sprintf("set %s's MAC to the gateway's %s", l.Attrs().Name, mac))
	}
	more, err := attach.ConvergeGatewayDevice(l, g.Addresses, mtu)
	return append(did, more...), err
}

// gatewayNATOf is NAT's view of this chassis' gateway on OVN network
// name; ok is false when it has none (a --nat=false network).
func gatewayNATOf(ctx context.Context, h *network.Host, name string) (nat.Bridge, bool, error) {
	ifs, err := h.DB.FindInterfaces(ctx, map[string]string{intent.KeyOVNNetwork: name})
	for _, i := range ifs {
		if g, ok, gerr := intent.DecodeOVNGateway(network.IfaceRow(i), i.ExternalIDs); ok && gerr == nil {
			return nat.Bridge{Name: i.Name, Subnet: g.Addresses[0].Masked(), NAT: g.NAT}, true, err
		}
	}
	return nat.Bridge{}, false, err
}
