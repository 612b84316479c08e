package controller

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

func samplePort() PortIntent {
	mac, _ := net.ParseMAC("0a:58:0a:01:00:02")
	return PortIntent{Container: "web", Iface: "eth1", Bridge: "br1", Netns: "/proc/42/ns/net", Type: "internal", State: stateReady,
		MAC: mac, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}, MTU: 1400, NoTxOffload: true}
}

func TestPortIntentRoundTrip(t *testing.T) {
	p := samplePort()
	got, err := decodePortIntent("row", p.Encode())
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("decode(encode(p)) = %+v, %v; want %+v", got, err, p)
	}
	fp := p.FlowPort("on1", 7, 3)
	if fp.Name != "on1" || fp.Ofport != 7 || fp.VLAN != 3 || len(fp.Addrs) != 2 || fp.MAC.String() != p.MAC.String() {
		t.Fatalf("flow port: %+v", fp)
	}
	v := p.View("on1", 7, 3)
	if v.Container != "web" || v.Addresses[1] != "fd00::2/64" || v.Gateways[0] != "10.1.0.1" || v.MTU != 1400 || v.VLAN != 3 {
		t.Fatalf("view: %+v", v)
	}
}

// Every value of a port's intent that does not parse is an IntentError
// naming the key, and the port then has no flows.
func TestPortIntentFailsClosed(t *testing.T) {
	for key, bad := range map[string]string{
		ovsdb.KeyMAC:    "garbage",
		ovsdb.KeyIPv4:   "garbage",
		ovsdb.KeyIPv6:   "10.1.0.9/24", // the wrong family
		ovsdb.KeyPortGW: "10.1.0.1,nope",
		ovsdb.KeyMTU:    "12",
	} {
		ext := samplePort().Encode()
		ext[key] = bad
		var ie *IntentError
		if _, err := decodePortIntent("row", ext); !errors.As(err, &ie) || ie.Key != key {
			t.Errorf("%s=%q: %v", key, bad, err)
		}
		one := 1
		i := vswitchd.Interface{Name: "on1", Ofport: &one, ExternalIDs: ext}
		if _, ok, err := decodePort(i, 0); ok || err == nil {
			t.Errorf("%s=%q: the port still gets flows", key, bad)
		}
	}
	// A multicast MAC is not the port's to send from.
	ext := samplePort().Encode()
	ext[ovsdb.KeyMAC] = "01:00:5e:00:00:01"
	if _, err := decodePortIntent("row", ext); err == nil {
		t.Error("multicast MAC accepted")
	}
}

func TestDecodeICC(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "false": false, "FALSE": false, "0": false, "garbage": false} {
		got, err := decodeICC("br1", map[string]string{ovsdb.KeyICC: v})
		if got != want || (err != nil) != (v != "true" && v != "false") {
			t.Errorf("icc %q: %v, %v", v, got, err)
		}
	}
	if icc, err := decodeICC("br1", map[string]string{}); !icc || err != nil {
		t.Errorf("unset icc: %v %v", icc, err)
	}
}
