package nb

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

func TestRouterGatewayCheck(t *testing.T) {
	ok := RouterGateway{Chassis: []string{"a"}, Address: netip.MustParsePrefix("198.51.100.10/24"), NextHop: netip.MustParseAddr("198.51.100.1")}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for want, g := range map[string]RouterGateway{
		"at least one chassis": {Address: ok.Address, NextHop: ok.NextHop},
		"IPv4 address":         {Chassis: ok.Chassis, Address: netip.MustParsePrefix("2001:db8::1/64"), NextHop: ok.NextHop},
		"another address in":   {Chassis: ok.Chassis, Address: ok.Address, NextHop: netip.MustParseAddr("203.0.113.1")},
		"another address":      {Chassis: ok.Chassis, Address: ok.Address, NextHop: netip.MustParseAddr("198.51.100.10")},
	} {
		if err := g.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", g, err, want)
		}
	}
}

// The gateway's rows: the chassis by falling priority, the router port
// in the group, the localnet port on ovsnet's uplink network, the default
// route out of the router port; none marked as an ovsnet network.
func TestGatewayRows(t *testing.T) {
	g := RouterGateway{Chassis: []string{"a", "b"}, Address: netip.MustParsePrefix("198.51.100.10/24"), NextHop: netip.MustParseAddr("198.51.100.1")}
	rows, port, route := gatewayRows("edge", g)
	var prio []int
	var lrp *ovnnb.LogicalRouterPort
	var rt *ovnnb.LogicalRouterStaticRoute
	localnet := false
	for _, r := range rows {
		switch r := r.(type) {
		case *ovnnb.HAChassis:
			prio = append(prio, r.Priority)
		case *ovnnb.LogicalRouterPort:
			lrp = r
		case *ovnnb.LogicalRouterStaticRoute:
			rt = r
		case *ovnnb.LogicalSwitchPort:
			localnet = localnet || r.Type == "localnet" && r.Options["network_name"] == intent.UplinkNetwork
		case *ovnnb.LogicalSwitch:
			if intent.Owned(r.ExternalIDs) || len(RouterGatewayName("x")) <= 15 {
				t.Errorf("the gateway's switch could be taken for a network: %+v", r)
			}
		}
	}
	if len(prio) != 2 || prio[0] <= prio[1] {
		t.Errorf("priorities %v, want falling", prio)
	}
	if lrp == nil || lrp.UUID != port || lrp.HaChassisGroup == nil || lrp.Name != "ovsnet-gateway-edge" || lrp.Networks[0] != "198.51.100.10/24" {
		t.Errorf("router port %+v", lrp)
	}
	if rt == nil || rt.UUID != route || rt.IPPrefix != "0.0.0.0/0" || rt.Nexthop != "198.51.100.1" || *rt.OutputPort != lrp.Name {
		t.Errorf("route %+v", rt)
	}
	if !localnet {
		t.Error("no localnet port on the uplink network")
	}
}
