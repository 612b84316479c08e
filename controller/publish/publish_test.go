package publish

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/nat/nattest"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
)

// TestRecordsAndRules: a published port is recorded on its
// interface and gets its DNAT rule (forwarding on, UDP's conntrack
// flushed); the same host port for another container is refused; an
// unpublish takes the rule away; NAT's sync from the topology holds the
// bridge's masquerade and the published ports, and a bridge-less host
// removes every rule.
func TestRecordsAndRules(t *testing.T) {
	ctx := context.Background()
	h, err := network.Open(ctx, ovsdbtest.Serve(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	intenttest.Bridge(t, h.DB, "10.1.0.0/24", map[string]string{intent.KeyNAT: "true"}, "10.1.0.2", "10.1.0.3")
	fw := &nattest.Recorder{}
	h.Firewall = fw
	a, b := "c10.1.0.2", "c10.1.0.3"
	ms, err := Add(ctx, h, "br0", a, []string{"80", "53/udp"})
	if err != nil || len(ms) != 2 || ms[0].HostPort == 0 || ms[1].Proto != "udp" {
		t.Fatalf("publish: %+v, %v", ms, err)
	}
	dnat := func(to string) int {
		return len(slices.DeleteFunc(fw.Rules(false), func(r string) bool { return !strings.Contains(r, "--to-destination "+to) }))
	}
	if dnat("10.1.0.2:80") != 1 || dnat("10.1.0.2:53") != 1 || !fw.Forwarding(false) || !slices.Contains(fw.Flushed(), uint16(ms[1].HostPort)) {
		t.Fatalf("after publish: rules %q, forwarding %v, flushed %v", fw.Rules(false), fw.Forwarding(false), fw.Flushed())
	}
	if got, err := List(ctx, h, "br0", a, ""); err != nil || len(got) != 2 {
		t.Fatalf("ports: %+v, %v", got, err)
	}
	taken := fmt.Sprintf("%d:80", ms[0].HostPort)
	if _, err := Add(ctx, h, "br0", b, []string{taken}); err == nil || !strings.Contains(err.Error(), "already published") {
		t.Fatalf("a host port published twice: %v", err)
	}
	if dnat("10.1.0.3:80") != 0 {
		t.Fatal("a refused publish left a rule")
	}

	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.NAT().Sync(ctx, natplan.Of(topo)); err != nil {
		t.Fatal(err)
	}
	masq := slices.ContainsFunc(fw.Rules(false), func(r string) bool { return strings.Contains(r, "10.1.0.0/24") && strings.Contains(r, "MASQUERADE") })
	if !masq || dnat("10.1.0.2:80") != 1 {
		t.Fatalf("NAT synced from the topology: %q", fw.Rules(false))
	}
	if _, err := Remove(ctx, h, "br0", a, []string{"80"}); err != nil {
		t.Fatal(err)
	}
	if dnat("10.1.0.2:80") != 0 || dnat("10.1.0.2:53") != 1 {
		t.Fatalf("after unpublishing 80: %q", fw.Rules(false))
	}
	if got, _ := List(ctx, h, "br0", a, ""); len(got) != 1 {
		t.Fatalf("ports after unpublish: %+v", got)
	}
	if _, err := h.NAT().Sync(ctx, natplan.Plan{}); err != nil || len(fw.Rules(false)) != 0 {
		t.Fatalf("no bridge: rules %q, %v", fw.Rules(false), err)
	}
}
