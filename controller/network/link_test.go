package network

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/flowstest"
)

var _ OpenFlow = (*flowstest.Recorder)(nil)

// TestBridgeLinkFlows: a link is recorded in the bridge's intent and its
// flows go in under the link's cookie; narrowing its ports and unlinking
// take access away, so they wait for the datapath's cached flows to be
// rechecked; a link to a container with no port on the bridge changes
// nothing.
func TestBridgeLinkFlows(t *testing.T) {
	ctx := context.Background()
	h, _ := allocHost(t, "10.1.0.0/24", map[string]string{intent.KeyICC: "false"}, "10.1.0.2", "10.1.0.3")
	rec := &flowstest.Recorder{}
	h.Flows = rec
	a, b := "c10.1.0.2", "c10.1.0.3"
	linkFlows := func() int {
		n, err := rec.CookieCount("br0", flows.LinkCookie(a, b), flows.ObjectMask)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	intentOf := func() intent.Bridge {
		br, err := h.DB.GetBridge(ctx, "br0")
		if err != nil {
			t.Fatal(err)
		}
		return intent.DecodeBridge("br0", br.ExternalIDs)
	}
	revalidations := func() int {
		return len(slices.DeleteFunc(rec.Calls(), func(c string) bool { return !strings.HasPrefix(c, "WaitRevalidated") }))
	}

	if _, err := h.Link(ctx, "br0", a, "nobody", nil); err == nil || !strings.Contains(err.Error(), `"nobody" has no interface on br0`) {
		t.Fatalf("link to a container not attached: %v", err)
	}
	if len(rec.Calls()) != 0 || len(intentOf().Links) != 0 {
		t.Fatalf("a refused link changed something: %v, %v", rec.Calls(), intentOf().Links)
	}
	if spec, err := h.Link(ctx, "br0", a, b, []string{"80", "53/udp"}); err != nil || spec != "80/tcp,53/udp" {
		t.Fatalf("link: %q, %v", spec, err)
	}
	if l := intentOf().Links; len(l) != 1 || l[0].Src != a || l[0].Dst != b || l[0].Ports != "80/tcp,53/udp" {
		t.Fatalf("the bridge's links: %+v", l)
	}
	wide := linkFlows()
	if wide == 0 || revalidations() != 0 {
		t.Fatalf("after link: %d link flows, %d revalidations (a new link takes nothing away)", wide, revalidations())
	}
	if _, err := h.Link(ctx, "br0", a, b, []string{"80"}); err != nil {
		t.Fatal(err)
	}
	if n := linkFlows(); n == 0 || n >= wide || revalidations() != 1 {
		t.Fatalf("narrowed to one port: %d link flows (were %d), %d revalidations", n, wide, revalidations())
	}
	if err := h.Unlink(ctx, "br0", a, b); err != nil {
		t.Fatal(err)
	}
	if linkFlows() != 0 || revalidations() != 2 || len(intentOf().Links) != 0 {
		t.Fatalf("after unlink: %d link flows, %d revalidations, links %+v", linkFlows(), revalidations(), intentOf().Links)
	}
	if err := h.Unlink(ctx, "br0", a, b); err == nil || !strings.Contains(err.Error(), "no link from") {
		t.Fatalf("unlink again: %v", err)
	}
}
