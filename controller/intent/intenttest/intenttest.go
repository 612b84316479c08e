// Package intenttest writes ovsnet's intent into an OVSDB for unit tests:
// a bridge with a subnet and containers attached to it, as the attach
// engine would have left them, on an in-memory database (ovsdbtest).
package intenttest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// Bridge makes ovsnet bridge br0 on subnet, with the settings in set
// over the defaults, and one ready container interface (eth1) per
// address in held: container "c"+address on port "on"+address, numbered
// from 10. "mac:ADDRESS" holds only the MAC derived from the address.
func Bridge(t testing.TB, db *ovsdb.Client, subnet string, set map[string]string, held ...string) intent.Bridge {
	t.Helper()
	return BridgeOn(t, db, "", subnet, set, held...)
}

// BridgeOn is Bridge on datapath type dp ("system", "netdev"; "": unset).
func BridgeOn(t testing.TB, db *ovsdb.Client, dp, subnet string, set map[string]string, held ...string) intent.Bridge {
	t.Helper()
	subs, err := ipam.ParseSubnets([]string{subnet}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ext := intent.NewBridge()
	for k, v := range (intent.Settings{Subnets: subs}).Encode() {
		ext[k] = v
	}
	for k, v := range set {
		ext[k] = v
	}
	var specs []ovsdb.PortSpec
	for i, a := range held {
		addr, mac := strings.CutPrefix(a, "mac:")
		p := netip.PrefixFrom(netip.MustParseAddr(addr), subs[0].Prefix.Bits())
		pi := intent.Port{Container: "c" + addr, Iface: "eth1", Bridge: "br0", State: intent.StateReady, MAC: ipam.MACFor([]netip.Prefix{p})}
		if !mac {
			pi.Addrs = []netip.Prefix{p}
		}
		specs = append(specs, ovsdb.PortSpec{Name: "on" + addr, OfportRequest: 10 + i, ExternalIDs: pi.Encode()})
	}
	if _, err := db.Do(context.Background(), func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "br0", Datapath: dp, ExternalIDs: ext})
		if len(specs) > 0 {
			tx.AddPorts("br0", specs...)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return intent.DecodeBridge("br0", ext)
}

// SamplePort is a ready dual-stack internal port of container web on br1,
// with every setting a port can carry.
func SamplePort() intent.Port {
	mac, _ := net.ParseMAC("0a:58:0a:01:00:02")
	return intent.Port{Container: "web", Iface: "eth1", Bridge: "br1", Netns: "/proc/42/ns/net", Type: "internal", State: intent.StateReady,
		MAC: mac, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}, MTU: 1400, NoTxOffload: true}
}
