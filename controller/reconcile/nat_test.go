package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/nat/nattest"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// TestConvergeNAT: a run brings NAT to the topology's plan and remembers
// it; a run with the same plan leaves iptables alone (rules removed behind
// its back stay removed) unless a check is due, which puts them back.
func TestConvergeNAT(t *testing.T) {
	c, _ := seeded(t)
	fw := c.host.Firewall.(*nattest.Recorder)
	topo, err := c.host.DB.ReadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	masq := func() bool {
		for _, r := range fw.Rules(false) {
			if strings.Contains(r, "10.9.0.0/24") && strings.Contains(r, "MASQUERADE") {
				return true
			}
		}
		return false
	}
	var seen string
	if r := c.convergeNAT(context.Background(), topo, Options{NATSeen: &seen}); r.err != nil || len(r.did) == 0 || !masq() || seen == "" {
		t.Fatalf("first run: %+v, masquerade %v, remembered %q", r, masq(), seen)
	}
	chains, _ := fw.Chains(false)
	if err := chains.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if r := c.convergeNAT(context.Background(), topo, Options{NATSeen: &seen}); r.err != nil || len(r.did) != 0 || masq() {
		t.Fatalf("the same plan: %+v (iptables should be left alone)", r)
	}
	if r := c.convergeNAT(context.Background(), topo, Options{NATSeen: &seen, NATCheck: true}); r.err != nil || !masq() {
		t.Fatalf("a check: %+v, masquerade %v", r, masq())
	}
}

// TestFinishDeletes: a bridge a killed del-br left marked deleting is
// removed before anything else converges; others stay.
func TestFinishDeletes(t *testing.T) {
	c, _ := seeded(t)
	ctx := context.Background()
	if _, err := c.host.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: "gone", ExternalIDs: intent.NewBridge()})
		tx.SetBridgeExternalIDs("gone", intent.Deleting())
	}); err != nil {
		t.Fatal(err)
	}
	topo, err := c.host.DB.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	did, err := c.finishDeletes(ctx, topo)
	if err != nil || len(did) != 1 || did[0] != "finished interrupted del-br of gone" {
		t.Fatalf("finish deletes: %v, %v", did, err)
	}
	for name, want := range map[string]bool{"gone": false, "br0": true} {
		if br, err := c.host.DB.GetBridge(ctx, name); err != nil || (br != nil) != want {
			t.Fatalf("bridge %s there: %v (want %v), %v", name, br != nil, want, err)
		}
	}
}

// ProbeLink names an ovsnet bridge's own port, which must be in the
// host's namespace; none without one.
func TestProbeLink(t *testing.T) {
	c, _ := seeded(t)
	topo, err := c.host.DB.ReadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := ProbeLink(topo); got != "br0" {
		t.Fatalf("probe link: %q", got)
	}
	if got := ProbeLink(&ovsdb.Topology{}); got != "" {
		t.Fatalf("probe link of an empty host: %q", got)
	}
}

// A run's record: a step that failed counts as failed, not done (even if
// it says what it would have done); one that did several things before
// failing keeps both.
func TestChangesRecord(t *testing.T) {
	var c changes
	c.add("set br0's MTU", nil)
	c.add("", nil)
	c.add("would have done", errors.New("no"))
	c.addAll([]string{"a", "b"}, errors.New("then failed"))
	if len(c.did) != 3 || c.did[0] != "set br0's MTU" || len(c.errs) != 2 {
		t.Fatalf("did %q, errs %v", c.did, c.errs)
	}
}
