package network

import (
	"context"
	"errors"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// allocHost is a Host on an in-memory OVSDB holding bridge "br0" with
// subnet and the bridge keys in set, and a container interface holding
// each of held (an address, or "mac:ADDR" for the MAC derived from ADDR
// alone, as a port whose address no longer decodes holds it), asking for
// OpenFlow ports 10, 11...
func allocHost(t *testing.T, subnet string, set map[string]string, held ...string) (*Host, intent.Bridge) {
	t.Helper()
	h, err := Open(context.Background(), ovsdbtest.Serve(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, intenttest.Bridge(t, h.DB, subnet, set, held...)
}

// Two writers that read the same bridge state: the second commit loses.
func TestGuardBridgeConflict(t *testing.T) {
	h, _ := allocHost(t, "10.9.0.0/24", nil)
	ctx := context.Background()
	br, err := h.DB.GetBridge(ctx, "br0")
	if err != nil {
		t.Fatal(err)
	}
	guard := func() error {
		_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
			tx.GuardBridge("br0", br.ExternalIDs, map[string]string{intent.KeyNextOfport: "2"})
		})
		return err
	}
	if err := guard(); err != nil {
		t.Fatalf("the first writer: %v", err)
	}
	if err := guard(); !errors.Is(err, ovsdb.ErrConflict) {
		t.Fatalf("the second writer, on the same read: %v, want ErrConflict", err)
	}
}
