package ovn

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-org/libovsdb/model"
	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/flood"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"
	"github.com/ovsnet/ovsnet/controller/show"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// chassisHost is a host on an in-memory OVSDB with bridge br0, joined as
// an OVN chassis
// to an in-memory northbound database holding ovsnet's isolated network
// "n1" with containers a and b attached (on any chassis), and a logical
// switch "foreign" that ovsnet did not make.
func chassisHost(t *testing.T) (*network.Host, *ovsdb.Client) {
	t.Helper()
	ctx := context.Background()
	h, err := network.Open(ctx, ovsdbtest.Serve(t), Backend{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.CreateBridge(ovsdb.BridgeSpec{Name: "br0", ExternalIDs: intent.NewBridge()}) }); err != nil {
		t.Fatal(err)
	}
	endpoint := ovsdbtest.ServeNB(t)
	c, err := ovsdb.ConnectNorthbound(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	subs, err := ipam.ParseSubnets([]string{"10.2.0.0/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	icc := false
	ext := intent.Settings{Subnets: subs, ICC: &icc}.Encode()
	for k, v := range intent.Ownership("") {
		ext[k] = v
	}
	lsp := func(uuid, container, addr string) *ovnnb.LogicalSwitchPort {
		return &ovnnb.LogicalSwitchPort{UUID: uuid, Name: "n1-" + container, Addresses: []string{addr},
			ExternalIDs: map[string]string{intent.KeyOwner: intent.OwnerOvsnet, intent.KeyContainerID: container, intent.KeyOVNNetwork: "n1"}}
	}
	rows := []model.Model{lsp("pa", "a", "0a:58:0a:02:00:02 10.2.0.2"), lsp("pb", "b", "0a:58:0a:02:00:03 10.2.0.3"),
		&ovnnb.LogicalSwitch{Name: "n1", ExternalIDs: ext, Ports: []string{"pa", "pb"}},
		&ovnnb.LogicalSwitch{Name: "foreign"}}
	ops, err := c.Create(rows...)
	if err == nil {
		err = c.Run(ctx, ops)
	}
	if err != nil {
		t.Fatal(err)
	}
	ch := intent.Chassis{Remote: "tcp:192.0.2.1:6642", EncapType: "geneve", EncapIP: netip.MustParseAddr("192.0.2.2"), SystemID: "here", NB: endpoint}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetRootExternalIDs(ch.Encode()) }); err != nil {
		t.Fatal(err)
	}
	return h, c
}

// TestNetworkResolves: a name is this host's bridge, else an ovsnet OVN
// network of the northbound database the host joined, else not found
// (a logical switch ovsnet did not make is not a network of its own).
func TestNetworkResolves(t *testing.T) {
	ctx := context.Background()
	h, _ := chassisHost(t)
	br, err := h.Network(ctx, "br0")
	if err != nil || br.Name() != "br0" || br.Bridge() != "br0" || br.Refuse(network.SettingVLAN) != nil {
		t.Fatalf("br0: %v, %v", br, err)
	}
	br.Close()
	n, err := h.Network(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Name() != "n1" || n.Bridge() != intent.DefaultOVNBrInt {
		t.Fatalf("n1 resolved as %s on %s", n.Name(), n.Bridge())
	}
	for _, s := range []network.Setting{network.SettingVLAN, network.SettingFloodLimit} {
		if err := n.Refuse(s); err == nil || !strings.Contains(err.Error(), "OVN network") {
			t.Errorf("OVN network takes setting %d: %v", s, err)
		}
	}
	mine := vswitchd.Interface{ExternalIDs: map[string]string{intent.KeyOVNNetwork: "n1"}}
	other := vswitchd.Interface{ExternalIDs: map[string]string{intent.KeyOVNNetwork: "n2"}}
	if !n.Holds(mine) || n.Holds(other) || br.Holds(mine) {
		t.Error("holds: an interface is claimed by the wrong network")
	}
	for _, name := range []string{"foreign", "nope"} {
		if _, err := h.Network(ctx, name); !errors.Is(err, network.ErrNoBridge) {
			t.Errorf("%s: %v, want ErrNoBridge", name, err)
		}
	}
	if _, err := h.Network(ctx, "-x"); err == nil || errors.Is(err, network.ErrNoBridge) {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetRootExternalIDs(nil, intent.ChassisKeys...) }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Network(ctx, "n1"); !errors.Is(err, network.ErrNoBridge) {
		t.Errorf("n1 after leaving OVN: %v, want ErrNoBridge", err)
	}
}

// TestOVNLinksAndRefusals: on an OVN network a link needs both ends
// attached and lands as the switch's intent and an ACL; an unlink may
// name a container that is gone; VLANs and flood bounds are refused.
func TestOVNLinksAndRefusals(t *testing.T) {
	ctx := context.Background()
	h, c := chassisHost(t)
	if _, err := h.Link(ctx, "n1", "a", "c", nil); err == nil || !strings.Contains(err.Error(), `"c" has no port`) {
		t.Fatalf("link to a container not attached: %v", err)
	}
	if _, err := h.Link(ctx, "n1", "a", "10.2.0.3", nil); err == nil || !strings.Contains(err.Error(), "name the container") {
		t.Fatalf("link to an address: %v", err)
	}
	if spec, err := h.Link(ctx, "n1", "a", "b", []string{"80"}); err != nil || spec != "80/tcp" {
		t.Fatalf("link a -> b: %q, %v", spec, err)
	}
	lss, err := nb.LogicalSwitches(ctx, c, "n1")
	if err != nil || lss[0].ExternalIDs[intent.LinkKey("a", "b")] != "80/tcp" {
		t.Fatalf("the switch's intent after link: %v, %v", lss, err)
	}
	acls, err := ovsdb.Select[ovnnb.ACL](ctx, c, nil, "match")
	if err != nil || len(acls) != 2 {
		t.Fatalf("ACLs after link (isolation and the link's): %v, %v", acls, err)
	}
	// A link whose destination then goes: it can still be removed.
	if err := nb.DropPorts(ctx, c, "n1", []string{"n1-b"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Unlink(ctx, "n1", "a", "b"); err != nil {
		t.Fatalf("unlink from a container that is gone: %v", err)
	}
	if err := h.Unlink(ctx, "n1", "a", "b"); err == nil || !strings.Contains(err.Error(), "no link from a to b") {
		t.Fatalf("unlink again: %v", err)
	}
	if err := h.SetVLAN(ctx, "n1", "eth0", "a", 10); err == nil || !strings.Contains(err.Error(), "no VLANs") {
		t.Errorf("set-vlan on an OVN network: %v", err)
	}
	if _, err := flood.Set(ctx, h, flood.Limit{Bridge: "n1", PPS: 10}); err == nil || !strings.Contains(err.Error(), "bounds no floods") {
		t.Errorf("set-flood-limit on an OVN network: %v", err)
	}
}

// TestShowOVNNetwork: show lists the host's bridges and, through the
// backend, its OVN networks with their ports on any chassis (here all on
// others: remote, down until OVN binds them).
func TestShowOVNNetwork(t *testing.T) {
	ctx := context.Background()
	h, _ := chassisHost(t)
	all, err := show.Read(ctx, h, "", Backend{})
	if err != nil || len(all) != 2 || all[0].Name != "br0" || all[1].Name != "n1" {
		t.Fatalf("show: %+v, %v", all, err)
	}
	n := all[1]
	if n.Datapath != show.DatapathOVN || n.MTU != DefaultMTU || len(n.Ports) != 2 || n.Ports[0].Type != "remote" || n.Ports[0].Addresses[0] != "10.2.0.2/24" {
		t.Fatalf("n1 shown as %+v", n)
	}
	if n.Ports[0].State != "down (OVN has not bound it)" {
		t.Fatalf("an unbound port shown %q", n.Ports[0].State)
	}
	if _, err := show.Read(ctx, h, "foreign", Backend{}); !errors.Is(err, network.ErrNoBridge) {
		t.Fatalf("a switch ovsnet did not make: %v", err)
	}
}

// TestConvergeDropsStrayLogicalPorts: a logical port of this chassis that
// no interface here plugs (its container went while the host was down) is
// removed, and the network's isolation synced; other chassis' ports stay.
func TestConvergeDropsStrayLogicalPorts(t *testing.T) {
	ctx := context.Background()
	h, c := chassisHost(t)
	lss, err := nb.LogicalSwitches(ctx, c, "n1")
	if err != nil {
		t.Fatal(err)
	}
	stray := &ovnnb.LogicalSwitchPort{UUID: "stray", Name: "n1-stray", Addresses: []string{"0a:58:0a:02:00:09 10.2.0.9"},
		ExternalIDs: map[string]string{intent.KeyOwner: intent.OwnerOvsnet, intent.KeyContainerID: "s", intent.KeyOVNNetwork: "n1", intent.KeyOVNChassis: "here"}}
	ops, err := c.Create(stray)
	if err == nil {
		ls := &ovnnb.LogicalSwitch{UUID: lss[0].UUID}
		var mut []ovsdbops.Operation
		mut, err = c.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdbops.MutateOperationInsert, Value: []string{"stray"}})
		ops = append(ops, mut...)
	}
	if err == nil {
		err = c.Run(ctx, ops)
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := Converge(ctx, h, nil)
	if err != nil || len(r.Did) < 2 {
		t.Fatalf("converge: %+v, %v", r, err)
	}
	lss, _ = nb.LogicalSwitches(ctx, c, "n1")
	ports, err := nb.SwitchPorts(ctx, c, lss[0])
	if err != nil || len(ports) != 2 {
		t.Fatalf("ports left: %+v, %v", ports, err)
	}
	if r, err := Converge(ctx, h, nil); err != nil || len(r.Did) != 0 {
		t.Fatalf("converge again: %+v, %v", r, err)
	}
}
