package ovsdb

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/model"
	libovsdb "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// afterLoad skips the add events of rows the cache held when it was made,
// once each and only until settled; every other event is a change.
func TestAfterLoad(t *testing.T) {
	b, err := os.ReadFile("vswitchd/vswitch.ovsschema")
	if err != nil {
		t.Fatal(err)
	}
	var schema libovsdb.DatabaseSchema
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	cm, err := ClientModel()
	if err != nil {
		t.Fatal(err)
	}
	dbm, errs := model.NewDatabaseModel(schema, cm)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	loaded := &vswitchd.Interface{UUID: "11111111-1111-1111-1111-111111111111", Name: "a"}
	other := &vswitchd.Interface{UUID: "22222222-2222-2222-2222-222222222222", Name: "b"}
	discard := logr.Discard()
	tc, err := cache.NewTableCache(dbm, cache.Data{vswitchd.InterfaceTable: {loaded.UUID: loaded}}, &discard)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h, settle := afterLoad(tc, func() { calls++ })
	step := func(what string, do func(), want int) {
		t.Helper()
		do()
		if calls != want {
			t.Fatalf("%s: %d changes seen, want %d", what, calls, want)
		}
	}
	step("the initial load's add", func() { h.OnAdd(vswitchd.InterfaceTable, loaded) }, 0)
	step("a new row's add", func() { h.OnAdd(vswitchd.InterfaceTable, other) }, 1)
	step("an update", func() { h.OnUpdate(vswitchd.InterfaceTable, loaded, loaded) }, 2)
	step("the same initial row added again (a reconnect)", func() { h.OnAdd(vswitchd.InterfaceTable, loaded) }, 3)

	h, settle = afterLoad(tc, func() { calls++ })
	settle()
	step("an initial row's add after settling", func() { h.OnAdd(vswitchd.InterfaceTable, loaded) }, 4)
	step("a delete", func() { h.OnDelete(vswitchd.InterfaceTable, loaded) }, 5)
}
