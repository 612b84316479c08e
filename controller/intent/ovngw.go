package intent

import (
	"net/netip"
	"strconv"
	"strings"
)

// OVNGateway is a chassis' gateway on an OVN network: an internal port on
// the integration bridge, in the host, bound to the network's localport
// (every chassis binds its own), holding the network's gateway address.
// Containers' traffic to the outside leaves through it from the host they
// run on (the host's NAT), and published ports come in through it.
type OVNGateway struct {
	Network   string
	IfaceID   string         // the localport's name
	Addresses []netip.Prefix // the gateway addresses with their subnets' lengths: IPv4 first, then IPv6 if any
	NAT       bool           // masquerade the IPv4 subnet's traffic leaving the host (IPv6 is routed)
}

// KeyOVNGateway marks an interface as a chassis' gateway on an OVN network:
// its value is the gateway addresses with their subnets' lengths.
const KeyOVNGateway = "ovsnet-ovn-gateway"

// Encode is the gateway's interface keys.
func (g OVNGateway) Encode() map[string]string {
	var as []string
	for _, a := range g.Addresses {
		as = append(as, a.String())
	}
	return map[string]string{KeyOwner: OwnerOvsnet, KeyOVNNetwork: g.Network, KeyIfaceID: g.IfaceID,
		KeyOVNGateway: strings.Join(as, ","), KeyNAT: strconv.FormatBool(g.NAT)}
}

// DecodeOVNGateway reads a gateway's interface keys; ok is false for any
// other row. A gateway whose address does not decode is an error (it gets
// no address, so nothing leaves through it); a NAT value that does not
// decode masquerades nothing.
func DecodeOVNGateway(row string, ext map[string]string) (g OVNGateway, ok bool, err error) {
	v, ok := ext[KeyOVNGateway]
	if !ok || !Owned(ext) {
		return g, false, nil
	}
	g = OVNGateway{Network: ext[KeyOVNNetwork], IfaceID: ext[KeyIfaceID], NAT: ext[KeyNAT] == "true"}
	for i, s := range splitList(v) {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Is4() != (i == 0) || i > 1 {
			return OVNGateway{Network: g.Network, IfaceID: g.IfaceID}, true, &Error{Row: row, Key: KeyOVNGateway, Value: v,
				Want: "an IPv4 address with its prefix length, then at most an IPv6 one", Then: "the gateway gets no address"}
		}
		g.Addresses = append(g.Addresses, p)
	}
	if len(g.Addresses) == 0 {
		return g, true, &Error{Row: row, Key: KeyOVNGateway, Value: v, Want: "an IPv4 address with its prefix length", Then: "the gateway gets no address"}
	}
	if n := ext[KeyNAT]; n != "true" && n != "false" {
		return g, true, &Error{Row: row, Key: KeyNAT, Value: n, Want: `"true" or "false"`, Then: "nothing is masqueraded"}
	}
	return g, true, nil
}
