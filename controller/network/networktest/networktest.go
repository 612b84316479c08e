// Package networktest makes network Hosts for other packages' unit tests:
// on an in-memory OVSDB, holding bridge br0 with containers attached.
package networktest

import (
	"context"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// Host is a Host on an in-memory OVSDB holding br0 on subnet, its intent
// with set's keys, and a container attached at each of held (as
// intenttest.Bridge makes them). It is closed when the test ends.
func Host(t *testing.T, subnet string, set map[string]string, held ...string) *network.Host {
	t.Helper()
	h, err := network.Open(context.Background(), ovsdbtest.Serve(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	intenttest.Bridge(t, h.DB, subnet, set, held...)
	return h
}
