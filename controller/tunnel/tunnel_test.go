package tunnel

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// host is a Host on an in-memory OVSDB holding ovsnet bridge br0 with
// the bridge keys in set.
func host(t *testing.T, set map[string]string) *network.Host {
	t.Helper()
	h, err := network.Open(context.Background(), ovsdbtest.Serve(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	intenttest.Bridge(t, h.DB, "10.97.0.0/16", set)
	return h
}

// TestListStates: list gives each tunnel the state of its port as OVS
// reports it (missing, adding, up), one whose intent does not decode says
// so, and an unknown bridge is ErrNoBridge.
func TestListStates(t *testing.T) {
	ctx := context.Background()
	up := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.2", Type: mesh.VXLAN, Key: 5, Local: "192.0.2.1", Port: "ovt-up", Ofport: 65200}
	gone := intent.Tunnel{Bridge: "br0", Remote: "192.0.2.3", Type: mesh.VXLAN, Key: 5, Local: "192.0.2.1", Port: "ovt-gone", Ofport: 65201}
	set := map[string]string{intent.KeyIPRange: "10.97.1.0/24", intent.TunnelKey("192.0.2.9"): "type=bogus"}
	for _, tu := range []intent.Tunnel{up, gone} {
		for k, v := range tu.Encode() {
			set[k] = v
		}
	}
	h := host(t, set)
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.AddPorts("br0", ovsdb.PortSpec{Name: "ovt-up", OfportRequest: 65200}) }); err != nil {
		t.Fatal(err)
	}
	ts, err := List(ctx, h, "br0")
	if err != nil || len(ts) != 3 {
		t.Fatalf("list: %+v, %v", ts, err)
	}
	state := map[string]string{}
	for _, tu := range ts {
		state[tu.Remote] = tu.State
	}
	if state["192.0.2.2"] != "adding" || state["192.0.2.3"] != "missing" || !strings.HasPrefix(state["192.0.2.9"], "intent does not decode") {
		t.Fatalf("states %v: want adding (no number yet), missing, and the bad intent named", state)
	}
	if _, err := List(ctx, h, "nope"); !errors.Is(err, network.ErrNoBridge) {
		t.Fatalf("list of a bridge that is not there: %v", err)
	}
}

// TestAddRefusesBridges: a tunnel goes only on an ovsnet bridge that
// spans hosts (an --ip-range), and on one that is there.
func TestAddRefusesBridges(t *testing.T) {
	ctx := context.Background()
	h := host(t, nil)
	o := mesh.Options{Bridge: "br0", Remote: "192.0.2.2", Type: mesh.VXLAN}
	if _, _, err := Add(ctx, h, o); err == nil || !strings.Contains(err.Error(), "--ip-range") {
		t.Fatalf("a tunnel on a bridge without --ip-range: %v", err)
	}
	o.Bridge = "nope"
	if _, _, err := Add(ctx, h, o); !errors.Is(err, network.ErrNoBridge) {
		t.Fatalf("a tunnel on a bridge that is not there: %v", err)
	}
	if err := Del(ctx, h, "br0", "192.0.2.2"); err == nil || !strings.Contains(err.Error(), "has no tunnel to 192.0.2.2") {
		t.Fatalf("del of a tunnel that is not there: %v", err)
	}
}
