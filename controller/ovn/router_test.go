package ovn

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnsb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// A router's gateway in the northbound database: attaching a network
// gives it an SNAT to the gateway's address, detaching takes it away; a
// gateway whose address does not decode translates nothing (the attach is
// refused whole); rm leaves none of the gateway's rows.
func TestRouterGatewayNATs(t *testing.T) {
	ctx := context.Background()
	ep := ovsdbtest.ServeNB(t)
	nbc, err := ovsdb.ConnectNorthbound(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer nbc.Close()
	gw := nb.RouterGateway{Chassis: []string{"a", "b"}, Address: netip.MustParsePrefix("198.51.100.10/24"), NextHop: netip.MustParseAddr("198.51.100.1")}
	ops, err := nb.NewRouterWithGateway(nbc, &ovnnb.LogicalRouter{UUID: "ovsnet_lr", Name: "edge", ExternalIDs: intent.Ownership("")}, gw)
	if err != nil || nbc.Run(ctx, ops) != nil {
		t.Fatal(err)
	}
	if _, err := CreateNetwork(ctx, NetworkOptions{Name: "app", NB: ep, Subnet: "10.74.0.0/24", ICC: true}); err != nil {
		t.Fatal(err)
	}
	nats := func() []ovnnb.NAT {
		ns, err := ovsdb.Select[ovnnb.NAT](ctx, nbc, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	if _, err := AttachRouter(ctx, ep, "edge", "app", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if ns := nats(); len(ns) != 1 || ns[0].Type != ovnnb.NATTypeSNAT || ns[0].LogicalIP != "10.74.0.0/24" || ns[0].ExternalIP != "198.51.100.10" {
		t.Fatalf("NATs after attach: %+v", ns)
	}
	if rs, err := ListRouters(ctx, ep); err != nil || len(rs) != 1 || rs[0].Gateway == nil || !rs[0].Gateway.Equal(gw) || len(rs[0].Networks) != 1 {
		t.Fatalf("router ls: %+v %v", rs, err)
	}
	if err := DetachRouter(ctx, ep, "edge", "app"); err != nil || len(nats()) != 0 {
		t.Fatalf("detach: %v, NATs %+v", err, nats())
	}
	// The gateway port's address mangled by hand.
	p := &ovnnb.LogicalRouterPort{Name: nb.RouterGatewayName("edge"), Networks: []string{"garbage"}}
	ops, err = nbc.Where(p).Update(p, &p.Networks)
	if err != nil || nbc.Run(ctx, ops) != nil {
		t.Fatal(err)
	}
	if _, err := AttachRouter(ctx, ep, "edge", "app", netip.Addr{}); err == nil || !strings.Contains(err.Error(), "no address ovsnet can read") {
		t.Fatalf("attach to a gateway without an address: %v", err)
	}
	if r, err := routerName(ctx, nbc, "app"); err != nil || r != "" || len(nats()) != 0 {
		t.Fatalf("a refused attach left router %q, NATs %+v (%v)", r, nats(), err)
	}
	if err := RemoveRouter(ctx, ep, "edge"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(sel[ovnnb.LogicalRouterPort](t, nbc)), len(sel[ovnnb.HAChassisGroup](t, nbc)), len(sel[ovnnb.HAChassis](t, nbc)), len(sel[ovnnb.LogicalRouterStaticRoute](t, nbc))} {
		if n != 0 {
			t.Fatal("rows left after router rm")
		}
	}
	for _, ls := range sel[ovnnb.LogicalSwitch](t, nbc) {
		if ls.Name != "app" {
			t.Fatalf("switch %s left after router rm", ls.Name)
		}
	}
}

// sel reads every row of a table.
func sel[T any](t *testing.T, c *ovsdb.Client) []T {
	t.Helper()
	rows, err := ovsdb.Select[T](context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Gateway chassis are found by OVN name, else by a hostname only one
// chassis has, and must have ovsnet's uplink.
func TestGatewayChassis(t *testing.T) {
	ctx := context.Background()
	ep := ovsdbtest.ServeSB(t)
	sbc, err := ovsdb.ConnectSouthbound(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer sbc.Close()
	up := map[string]string{intent.KeyOVNMappings: "physnet:br-x," + intent.UplinkMapping}
	ops, err := sbc.Create(
		&ovnsb.Chassis{Name: "id-a", Hostname: "a", OtherConfig: up},
		&ovnsb.Chassis{Name: "id-b", Hostname: "twin", OtherConfig: up},
		&ovnsb.Chassis{Name: "id-c", Hostname: "twin", OtherConfig: up},
		&ovnsb.Chassis{Name: "id-d", Hostname: "d"})
	if err != nil || sbc.Run(ctx, ops) != nil {
		t.Fatal(err)
	}
	if got, err := gatewayChassis(ctx, ep, []string{"a", "id-b", "id-c"}); err != nil || !slices.Equal(got, []string{"id-a", "id-b", "id-c"}) {
		t.Fatalf("by hostname and name: %v %v", got, err)
	}
	for want, names := range map[string][]string{
		"both have hostname twin": {"twin"},
		"no chassis e":            {"e"},
		"has no uplink":           {"d"},
		"named twice":             {"a", "id-a"},
	} {
		if _, err := gatewayChassis(ctx, ep, names); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", names, err, want)
		}
	}
}
