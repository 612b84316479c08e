// Package ovsdbtest serves in-memory Open_vSwitch, OVN_Northbound and
// OVN_Southbound databases (libovsdb's OVSDB server over the schemas of ovsnet's models)
// to unit tests that need OVSDB but not Open vSwitch or OVN: no root, no
// daemons, a fresh database per test. An Open_vSwitch database holds the
// root row, as ovs-vsctl init leaves it.
package ovsdbtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ovn-org/libovsdb/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnsb"

	"github.com/go-logr/logr"
	"github.com/go-logr/stdr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/database/inmemory"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/server"

	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Serve starts an Open_vSwitch database for test t, stopped when t ends,
// and returns its endpoint ("unix:PATH").
func Serve(t testing.TB) string {
	t.Helper()
	cm, err := vswitchd.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	endpoint := serve(t, vswitchd.Schema(), cm)
	initRoot(t, cm, endpoint)
	return endpoint
}

// ServeNB starts an OVN_Northbound database (the tables ovsnet's models
// cover) for test t, stopped when t ends, and returns its endpoint.
func ServeNB(t testing.TB) string {
	t.Helper()
	cm, err := ovnnb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ovnnb.Schema(), cm)
}

// ServeSB starts an OVN_Southbound database (the tables ovsnet's models
// cover) for test t, stopped when t ends, and returns its endpoint.
func ServeSB(t testing.TB) string {
	t.Helper()
	cm, err := ovnsb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ovnsb.Schema(), cm)
}

// serve starts an empty database of schema.
func serve(t testing.TB, schema ovsdb.DatabaseSchema, cm model.ClientDBModel) string {
	stdr.SetVerbosity(0) // libovsdb's server package sets 5: every row it writes, logged
	dbm, errs := model.NewDatabaseModel(schema, cm)
	if len(errs) > 0 {
		t.Fatalf("the %s models against their schema: %v", schema.Name, errs)
	}
	srv, err := server.NewOvsdbServer(inmemory.NewDatabase(map[string]model.ClientDBModel{schema.Name: cm}), dbm)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ovsdbtest-") // short: a socket's path has 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "db.sock")
	go srv.Serve("unix", sock)
	t.Cleanup(func() { srv.Close(); os.RemoveAll(dir) })
	for deadline := time.Now().Add(5 * time.Second); !srv.Ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the in-memory OVSDB server did not start")
		}
	}
	return "unix:" + sock
}

// initRoot inserts the Open_vSwitch row.
func initRoot(t testing.TB, cm model.ClientDBModel, endpoint string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	quiet := logr.Discard() // else the client sets every logger's verbosity to 5
	c, err := client.NewOVSDBClient(cm, client.WithEndpoint(endpoint), client.WithLogger(&quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	ops, err := c.Create(&vswitchd.OpenvSwitch{UUID: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
}
