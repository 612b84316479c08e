package nb

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ovn-org/libovsdb/model"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// seed makes an isolated network n in a fresh northbound database, with
// containers a and b as ports and the network's gateway, the way
// `ovsnet network create` and an attach leave it (before any sync).
func seed(t *testing.T) (context.Context, *ovsdb.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := ovsdb.ConnectNorthbound(ctx, ovsdbtest.ServeNB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ext := intent.Ownership("")
	ext[intent.KeyICC] = "false"
	lsp := func(uuid, name, c, addr string) *ovnnb.LogicalSwitchPort {
		return &ovnnb.LogicalSwitchPort{UUID: uuid, Name: name, Addresses: []string{addr},
			ExternalIDs: map[string]string{intent.KeyOwner: intent.OwnerOvsnet, intent.KeyContainerID: c, intent.KeyOVNNetwork: "n"}}
	}
	gw := NewGatewayPort("n", []netip.Addr{netip.MustParseAddr("10.0.0.1")})
	rows := []model.Model{lsp("pa", "port-a", "a", "0a:58:0a:00:00:02 10.0.0.2"), lsp("pb", "port-b", "b", "0a:58:0a:00:00:03 10.0.0.3"), gw,
		&ovnnb.LogicalSwitch{Name: "n", ExternalIDs: ext, Ports: []string{"pa", "pb", gw.UUID}}}
	ops, err := c.Create(rows...)
	if err == nil {
		err = c.Run(ctx, ops)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c
}

// acls reads network n's port group and the matches of its ACLs.
func acls(t *testing.T, ctx context.Context, c *ovsdb.Client) (*ovnnb.PortGroup, []string) {
	pg, err := PortGroup(ctx, c, "n")
	if err != nil || pg == nil {
		t.Fatalf("port group of n: %v, %v", pg, err)
	}
	all, err := ovsdb.Select[ovnnb.ACL](ctx, c, nil, "_uuid", "match", "action")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range all {
		if slices.Contains(pg.ACLs, a.UUID) {
			got = append(got, string(a.Action)+" "+a.Match)
		}
	}
	slices.Sort(got)
	return pg, got
}

// TestSyncIsolation: a sync makes the port group with the containers'
// ports (not the gateway's) and the isolation ACL; a link adds its ACL
// and an unlink takes it away; a sync with nothing to do writes nothing.
func TestSyncIsolation(t *testing.T) {
	ctx, c := seed(t)
	s, err := SyncIsolation(ctx, c, "n")
	if err != nil || !s.Changed {
		t.Fatalf("first sync: %+v, %v", s, err)
	}
	pg, got := acls(t, ctx, c)
	drop := "drop outport == @" + PortGroupName("n") + " && (ip4.src == $" + PortGroupName("n") + "_ip4 || ip6.src == $" + PortGroupName("n") + "_ip6)"
	if len(pg.Ports) != 2 || !slices.Equal(got, []string{drop}) {
		t.Fatalf("after the first sync: group ports %v, ACLs %q", pg.Ports, got)
	}
	if s, err := SyncIsolation(ctx, c, "n"); err != nil || s.Changed {
		t.Fatalf("a sync with nothing to do: %+v, %v", s, err)
	}

	setLink := func(value string) {
		t.Helper()
		lss, err := LogicalSwitches(ctx, c, "n")
		if err != nil || len(lss) != 1 {
			t.Fatal(lss, err)
		}
		ls := &ovnnb.LogicalSwitch{UUID: lss[0].UUID, ExternalIDs: lss[0].ExternalIDs}
		if value == "" {
			delete(ls.ExternalIDs, intent.LinkKey("a", "b"))
		} else {
			ls.ExternalIDs[intent.LinkKey("a", "b")] = value
		}
		ops, err := c.Where(ls).Update(ls, &ls.ExternalIDs)
		if err == nil {
			err = c.Run(ctx, ops)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	setLink("80/tcp")
	if s, err := SyncIsolation(ctx, c, "n"); err != nil || !s.Changed {
		t.Fatalf("sync after link: %+v, %v", s, err)
	}
	_, got = acls(t, ctx, c)
	link := `allow-related outport == {"port-b"} && ip4.src == {10.0.0.2} && (tcp.dst == 80)`
	if !slices.Equal(got, []string{link, drop}) {
		t.Fatalf("after link a -> b: %q", got)
	}
	setLink("80/sctp") // does not decode: grants nothing, reported
	s, err = SyncIsolation(ctx, c, "n")
	if _, got = acls(t, ctx, c); err != nil || len(s.Bad) != 1 || !slices.Equal(got, []string{drop}) {
		t.Fatalf("a link that does not decode: %+v, %v, ACLs %q", s, err, got)
	}
	setLink("")
	if s, err := SyncIsolation(ctx, c, "n"); err != nil || s.Changed || len(s.Bad) != 0 {
		t.Fatalf("sync after unlink (the bad link's ACL was never there): %+v, %v", s, err)
	}
}

// TestDropPorts: dropping a port takes it off its switch (the northbound
// database then garbage-collects the row); names already gone are fine.
func TestDropPorts(t *testing.T) {
	ctx, c := seed(t)
	if err := DropPorts(ctx, c, "n", []string{"port-a", "port-gone"}); err != nil {
		t.Fatal(err)
	}
	lss, err := LogicalSwitches(ctx, c, "n")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := SwitchPorts(ctx, c, lss[0])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ports {
		names = append(names, p.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{GatewayPortName("n"), "port-b"}) {
		t.Fatalf("ports left: %v", names)
	}
	if n, err := ContainerPortCount(ctx, c, lss[0]); err != nil || n != 1 {
		t.Fatalf("container ports: %d, %v", n, err)
	}
}
