package poolstate

import (
	"testing"
	"time"
)

// A bridge keeps a pool while it holds containers or within Idle of its
// last attach here; the first attach on an idle bridge wakes the pool to
// fill it, later ones do not.
func TestWanted(t *testing.T) {
	p := New(8, nil)
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if p.Wanted("br0", false, t0) {
		t.Error("a bridge never attached to, without containers, wants a pool")
	}
	if !p.Wanted("br0", true, t0) {
		t.Error("a bridge with containers wants none")
	}
	p.Attached("br0", t0)
	select {
	case <-p.Woken():
	default:
		t.Error("the first attach did not wake the pool")
	}
	p.Attached("br0", t0.Add(time.Minute))
	select {
	case <-p.Woken():
		t.Error("an attach on a bridge in use woke the pool")
	default:
	}
	if !p.Wanted("br0", false, t0.Add(Idle)) {
		t.Error("within Idle of the last attach the pool goes")
	}
	if p.Wanted("br0", false, t0.Add(time.Minute+Idle)) {
		t.Error("an idle bridge keeps its pool")
	}
}

// The types kept: the bridge's default, veths on a Docker network's
// bridge, or those asked for that the datapath takes.
func TestTypesFor(t *testing.T) {
	if got := New(8, nil).TypesFor("netdev", false); len(got) != 1 || got[0] != "internal" {
		t.Errorf("userspace default: %v", got)
	}
	if got := New(8, nil).TypesFor("netdev", true); len(got) != 1 || got[0] != "veth" {
		t.Errorf("a Docker network's bridge: %v", got)
	}
	if got := New(8, []string{"veth", "internal"}).TypesFor("system", false); len(got) != 1 || got[0] != "veth" {
		t.Errorf("the kernel datapath refuses internal: %v", got)
	}
}
