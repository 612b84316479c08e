package flows

import (
	"testing"

	"github.com/ovsnet/ovsnet/flows/openflow"
)

// spread keeps the changes' order, never splits a change, fills at most k
// groups, and balances them by messages (one delete per change plus its
// flows).
func TestSpread(t *testing.T) {
	var changes []Change
	for i := 0; i < 100; i++ {
		changes = append(changes, Change{Cookie: uint64(i), Flows: make([]*openflow.Flow, 5)})
	}
	groups := spread(changes, 4, 150) // 600 messages, 150 a group
	if len(groups) != 4 {
		t.Fatalf("%d groups, want 4", len(groups))
	}
	next := uint64(0)
	for i, g := range groups {
		if len(g) != 25 {
			t.Errorf("group %d has %d changes, want 25", i, len(g))
		}
		for _, ch := range g {
			if ch.Cookie != next {
				t.Fatalf("group %d: cookie %d where %d comes next", i, ch.Cookie, next)
			}
			next++
		}
	}
	if next != 100 {
		t.Fatalf("%d changes in the groups, want 100", next)
	}
	// More than k groups' worth goes into the last group, not a k+1th.
	if g := spread(changes, 2, 60); len(g) != 2 || len(g[0]) != 10 || len(g[1]) != 90 {
		t.Fatalf("k=2, per=60: groups of %d", lens(g))
	}
}

func lens(gs [][]Change) []int {
	var n []int
	for _, g := range gs {
		n = append(n, len(g))
	}
	return n
}
