package network

import (
	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// What the controller makes of decoded intent (package intent decodes):
// a port's flows, its container's configuration and the view users get;
// and every decoding error of a bridge, reported by reconcile, the
// controller and doctor.

// ErrBadIntent is wrapped by every error of intent that does not decode.
var ErrBadIntent = intent.ErrBad

func IfaceRow(i vswitchd.Interface) string {
	return intent.InterfaceRow(i.Name, i.ExternalIDs)
}

func OwnerOf(i vswitchd.Interface) string { return intent.RefOf(i.ExternalIDs).String() }

// portConfig is what port p's container interface gets.
func portConfig(p intent.Port, routes attach.RoutePolicy) attach.Config {
	return attach.Config{Name: p.Iface, MAC: p.MAC, MTU: p.MTU, Addrs: p.Addrs, Gateways: p.Gateways, Routes: routes, NoTxOffload: p.NoTxOffload}
}

// portView is port p as add-port, add-ports and show report it.
func portView(p intent.Port, ovsPort string, ofport, vlan int) PortView {
	v := PortView{Bridge: p.Bridge, Container: p.Container, Iface: p.Iface, MAC: p.MAC.String(), MTU: p.MTU,
		VLAN: vlan, FloodPPS: p.FloodPPS, Type: p.Type, OVSPort: ovsPort, Ofport: ofport, Netns: p.Netns, Runtime: p.Runtime,
		Name: p.RuntimeName}
	for _, a := range p.Addrs {
		v.Addresses = append(v.Addresses, a.String())
	}
	for _, g := range p.Gateways {
		v.Gateways = append(v.Gateways, g.String())
	}
	return v
}

// ConfigFromIntent is the container-side configuration stored in OVSDB
// for interface ifc; an error if its intent does not decode (nothing is
// configured from it: reconcile reports it as bad intent).
func ConfigFromIntent(ifc vswitchd.Interface) (attach.Config, error) {
	pi, err := intent.DecodePort(IfaceRow(ifc), ifc.ExternalIDs)
	return portConfig(pi, attach.RouteIfNone), err
}
