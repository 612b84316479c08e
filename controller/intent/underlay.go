package intent

import (
	"net/netip"
	"strconv"
	"strings"
)

// Underlay is what an underlay bridge took over from its device: the
// device, its addresses, routes and MTU, given back when no tunnel needs
// them any more.
type Underlay struct {
	Dev    string
	Addrs  []netip.Prefix
	Routes []string // "DST via GW" or "DST"
	MTU    int
	Err    error // does not decode: the device is left as it is
}

// Encode is the underlay as its bridge's external_ids. The bridge is not
// ovsnet-owner: it is no container network, and reconcile, show and NAT
// leave it alone.
func (u Underlay) Encode() map[string]string {
	var addrs []string
	for _, a := range u.Addrs {
		addrs = append(addrs, a.String())
	}
	return map[string]string{KeyUnderlayDev: u.Dev, KeyUnderlayAddrs: strings.Join(addrs, ","),
		KeyUnderlayRoutes: strings.Join(u.Routes, ","), KeyUnderlayMTU: strconv.Itoa(u.MTU)}
}

func decodeUnderlay(bridge string, ext map[string]string) *Underlay {
	dev := ext[KeyUnderlayDev]
	if dev == "" {
		return nil
	}
	u := &Underlay{Dev: dev, Routes: splitList(ext[KeyUnderlayRoutes])}
	bad := func(k string, want string) *Underlay {
		u.Err = &Error{Row: "bridge " + bridge, Key: k, Value: ext[k], Want: want, Then: UnderlayKept}
		return u
	}
	var err error
	if u.MTU, err = strconv.Atoi(ext[KeyUnderlayMTU]); err != nil || u.MTU < 68 {
		return bad(KeyUnderlayMTU, "an MTU")
	}
	for _, a := range splitList(ext[KeyUnderlayAddrs]) {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return bad(KeyUnderlayAddrs, "a list of CIDRs")
		}
		u.Addrs = append(u.Addrs, p)
	}
	return u
}
