package ovsdbtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/ovn-org/libovsdb/ovsdb"

	ovsnetdb "github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Vswitchd stands in for ovs-vswitchd numbering new ports in a database
// Serve started: asked for the port numbers of interfaces, it gives each
// one without a number the number it requested (else the lowest free one)
// and returns them. Error, when set, is the answer instead (a port it
// could not add).
type Vswitchd struct {
	db    *ovsnetdb.Client
	Error error
}

// NewVswitchd connects a Vswitchd to endpoint for test t.
func NewVswitchd(t testing.TB, endpoint string) *Vswitchd {
	t.Helper()
	db, err := ovsnetdb.Connect(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return &Vswitchd{db: db}
}

// WaitOfports numbers the named interfaces that have no number, in one
// transaction, and returns every one's number in order.
func (v *Vswitchd) WaitOfports(ctx context.Context, names []string) ([]int, error) {
	if v.Error != nil {
		return nil, v.Error
	}
	all, err := ovsnetdb.Select[vswitchd.Interface](ctx, v.db, nil, "_uuid", "name", "ofport", "ofport_request")
	if err != nil {
		return nil, err
	}
	byName, used := map[string]*vswitchd.Interface{}, map[int]bool{}
	for i := range all {
		byName[all[i].Name] = &all[i]
		if o := all[i].Ofport; o != nil && *o > 0 {
			used[*o] = true
		}
	}
	var ops []ovsdb.Operation
	out := make([]int, len(names))
	for k, name := range names {
		ifc := byName[name]
		if ifc == nil {
			return nil, fmt.Errorf("interface %s vanished while waiting for ovs-vswitchd", name)
		}
		if ifc.Ofport != nil && *ifc.Ofport > 0 {
			out[k] = *ifc.Ofport
			continue
		}
		n := 1
		if r := ifc.OfportRequest; r != nil && !used[*r] {
			n = *r
		}
		for used[n] {
			n++
		}
		used[n], out[k] = true, n
		ifc.Ofport = &n
		op, err := v.db.Where(ifc).Update(ifc, &ifc.Ofport)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op...)
	}
	if len(ops) > 0 {
		if _, err := v.db.Client.Transact(ctx, ops...); err != nil {
			return nil, err
		}
	}
	return out, nil
}
