package show

import (
	"context"
	"errors"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/networktest"
)

// TestShowBridge: show reports a bridge's settings, its containers in
// order with their addresses, its links with the ends that have no port
// (dangling), and a name that is no network as ErrNoBridge.
func TestShowBridge(t *testing.T) {
	ctx := context.Background()
	set := intent.Link{Src: "c10.1.0.3", Dst: "gone", Ports: "all"}.Encode()
	set[intent.KeyICC] = "false"
	h := networktest.Host(t, "10.1.0.0/24", set, "10.1.0.3", "10.1.0.2")
	bs, err := Read(ctx, h, "br0", nil)
	if err != nil || len(bs) != 1 {
		t.Fatalf("show br0: %+v, %v", bs, err)
	}
	b := bs[0]
	if !b.Ovsnet || b.ICC || len(b.Subnets) != 1 || b.Subnets[0] != "10.1.0.0/24" || len(b.Ports) != 2 {
		t.Fatalf("br0 shown as %+v", b)
	}
	if b.Ports[0].Container != "c10.1.0.2" || len(b.Ports[0].Addresses) != 1 || b.Ports[0].Addresses[0] != "10.1.0.2/24" {
		t.Fatalf("ports not in order, or without their address: %+v", b.Ports)
	}
	if len(b.Links) != 1 || len(b.Links[0].Dangling) != 1 || b.Links[0].Dangling[0] != "gone" {
		t.Fatalf("links: %+v", b.Links)
	}
	if _, err := Read(ctx, h, "nope", nil); !errors.Is(err, network.ErrNoBridge) {
		t.Fatalf("show of no network: %v", err)
	}
	if all, err := Read(ctx, h, "", nil); err != nil || len(all) != 1 {
		t.Fatalf("show all: %d, %v", len(all), err)
	}
}

// A link names a runtime's container by the runtime's name (a Docker
// endpoint's container_id is the endpoint's ID): such a port is an end,
// not a dangling one.
func TestDanglingByRuntimeName(t *testing.T) {
	ports := []network.PortView{{Container: "ep1", Name: "app"}, {Container: "ep2", Name: "sql"}}
	ls := Links([]intent.Link{{Src: "app", Dst: "sql"}, {Src: "app", Dst: "gone"}}, ports)
	if len(ls[0].Dangling) != 0 || len(ls[1].Dangling) != 1 || ls[1].Dangling[0] != "gone" {
		t.Fatalf("dangling ends: %q and %q, want none and gone", ls[0].Dangling, ls[1].Dangling)
	}
}
