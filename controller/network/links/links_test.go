package links

import (
	"context"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/flowstest"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// TestRemoteEnds: an address as a link's end is taken only as the source,
// and only in another host's share of a subnet spanning hosts.
func TestRemoteEnds(t *testing.T) {
	b := intent.DecodeBridge("br0", map[string]string{intent.KeySubnet: "10.7.0.0/16", intent.KeyIPRange: "10.7.1.0/24"})
	for _, c := range []struct {
		addr  string
		isDst bool
		want  string // "" for accepted
	}{
		{"10.7.2.5", false, ""},
		{"10.7.2.5", true, "enforced there"},
		{"10.7.1.5", false, "this host's range"},
		{"192.0.2.1", false, "spans hosts"},
	} {
		a, _ := intent.RemoteEnd(c.addr)
		err := checkRemoteEnd(b, a, c.isDst)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (destination %v): %v, want %q", c.addr, c.isDst, err, c.want)
		}
	}
}

// TestChange: a change whose end has no port here changes nothing; one
// whose ends are attached writes the keys Edit gives and puts the link's
// flows in; one that deletes keys waits for revalidation.
func TestChange(t *testing.T) {
	ctx := context.Background()
	db, err := ovsdb.Connect(ctx, ovsdbtest.Serve(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	intenttest.Bridge(t, db, "10.1.0.0/24", map[string]string{intent.KeyICC: "false"}, "10.1.0.2", "10.1.0.3")
	br, err := db.GetBridge(ctx, "br0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &flowstest.Recorder{}
	b := Bridge{DB: db, Flows: rec, Br: br}
	a, d := "c10.1.0.2", "c10.1.0.3"
	link := func(_ intent.Bridge, src, dst string) (map[string]string, []string, error) {
		return intent.Link{Src: src, Dst: dst, Ports: "all"}.Encode(), nil, nil
	}
	if err := b.Change(ctx, Change{Src: a, Dst: "nobody", Attached: true, Edit: link}); err == nil || len(rec.Calls()) != 0 {
		t.Fatalf("a link to no port: %v, calls %v", err, rec.Calls())
	}
	if err := b.Change(ctx, Change{Src: a, Dst: d, Attached: true, Edit: link}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rec.CookieCount("br0", flows.LinkCookie(a, d), flows.ObjectMask); n == 0 {
		t.Fatalf("no flows of the link: %v", rec.Calls())
	}
	unlink := func(_ intent.Bridge, src, dst string) (map[string]string, []string, error) {
		return nil, []string{intent.LinkKey(src, dst)}, nil
	}
	if err := b.Change(ctx, Change{Src: a, Dst: d, Edit: unlink}); err != nil {
		t.Fatal(err)
	}
	n, _ := rec.CookieCount("br0", flows.LinkCookie(a, d), flows.ObjectMask)
	if calls := strings.Join(rec.Calls(), " "); n != 0 || !strings.Contains(calls, "WaitRevalidated") {
		t.Fatalf("after unlink: %d link flows, calls %s", n, calls)
	}
}
