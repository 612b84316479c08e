package ovsdbtest_test

import (
	"context"
	"slices"
	"testing"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// TestVswitchdNumbers: ports get the numbers they ask for, once; a number
// taken is replaced by the lowest free one; a numbered port keeps its number.
func TestVswitchdNumbers(t *testing.T) {
	ctx := context.Background()
	ep := ovsdbtest.Serve(t)
	db, err := ovsdb.Connect(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	v := ovsdbtest.NewVswitchd(t, ep)
	if _, err := db.Do(ctx, func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "br0"})
		tx.AddPorts("br0", ovsdb.PortSpec{Name: "p1", OfportRequest: 7}, ovsdb.PortSpec{Name: "p2", OfportRequest: 7})
	}); err != nil {
		t.Fatal(err)
	}
	ns, err := v.WaitOfports(ctx, []string{"p1", "p2"})
	if err != nil || !slices.Equal(ns, []int{7, 1}) {
		t.Fatalf("numbers %v, %v; want [7 1]", ns, err)
	}
	is, err := ovsdb.Select[vswitchd.Interface](ctx, db, []ovsdbops.Condition{ovsdb.NameIs("p2")})
	if err != nil || len(is) != 1 || is[0].Ofport == nil || *is[0].Ofport != 1 {
		t.Fatalf("p2 in the database: %+v, %v", is, err)
	}
	if ns, err := v.WaitOfports(ctx, []string{"p2"}); err != nil || ns[0] != 1 {
		t.Fatalf("again: %v, %v", ns, err)
	}
}
