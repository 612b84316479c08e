package main

import (
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/show"
)

func TestNormalizeArgs(t *testing.T) {
	got := strings.Join(normalizeArgs([]string{"add-port", "br", "--ip", "10.0.0.2/24", "eth1", "c1", "--ip", "--mtu", "1400"}), " ")
	if got != "add-port br --ip=10.0.0.2/24 eth1 c1 --ip --mtu 1400" {
		t.Fatalf("%s", got)
	}
	if got := strings.Join(normalizeArgs([]string{"add-port", "br", "eth1", "c1", "--ip"}), " "); got != "add-port br eth1 c1 --ip" {
		t.Fatalf("%s", got)
	}
}

func TestRenderTree(t *testing.T) {
	out := renderTree([]show.BridgeView{{Name: "ovs-br1", Datapath: "netdev", Ovsnet: true, ICC: true,
		Subnets: []string{"172.16.1.0/24"}, Gateways: []string{"172.16.1.1"},
		Ports: []network.PortView{
			{Container: "c1", Iface: "eth1", Addresses: []string{"172.16.1.2/24"}, MAC: "02:00:00:00:00:01", OVSPort: "on1", Ofport: 1, Type: "internal", State: "up"},
			{Container: "c2", Iface: "eth1", MAC: "02:00:00:00:00:02", OVSPort: "on2", VLAN: 5, Type: "veth", State: "down"},
		}}})
	want := `ovs-br1 (datapath netdev, subnet 172.16.1.0/24 via 172.16.1.1, icc on, nat off)
├── c1 eth1: 172.16.1.2/24, mac 02:00:00:00:00:01, port on1 (ofport 1), internal, up
└── c2 eth1: no address, mac 02:00:00:00:00:02, vlan 5, port on2, veth, down`
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if !strings.Contains(renderTree(nil), "no bridges") {
		t.Fatal("empty")
	}
}

func TestReadPortList(t *testing.T) {
	defaults := portArgs{ip: "auto", ipSet: true}
	defaults.Type = "veth"
	defaults.MTU = 1400
	in := "# comment\n\neth1 web1\neth2 web2 --ip 10.0.0.9/24 --type internal\neth1 db1 --mtu=9000 --vlan 7\n"
	got, err := readPortList(strings.NewReader(in), defaults)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("want 3 specs, got %+v", got)
	}
	check := func(i int, iface, container, addrs, typ string, mtu, vlan int) {
		t.Helper()
		o := got[i]
		if o.Iface != iface || o.Container != container || strings.Join(o.Addresses, ",") != addrs || o.Type != typ || o.MTU != mtu || o.VLAN != vlan {
			t.Errorf("line %d: got %+v", i, o)
		}
	}
	check(0, "eth1", "web1", "auto", "veth", 1400, 0)
	check(1, "eth2", "web2", "10.0.0.9/24", "internal", 1400, 0)
	check(2, "eth1", "db1", "auto", "veth", 9000, 7)

	for _, bad := range []string{"eth1\n", "eth1 web1 extra\n", "eth1 web1 --nosuchflag\n", "eth1 web1 --mtu=x\n"} {
		if _, err := readPortList(strings.NewReader(bad), defaults); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: want a line 1 error, got %v", bad, err)
		}
	}
}
