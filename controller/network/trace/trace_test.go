package trace

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// The testdata are real ofproto/trace outputs of OVS 3.1 on an icc=false
// bridge (the destination is on OpenFlow port 4).
func trace(t *testing.T, name string) *Result {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(string(b), "4")
}

func TestParseTrace(t *testing.T) {
	r := trace(t, "trace-linked.txt")
	if !r.Allowed || r.Verdict != "allowed" {
		t.Fatalf("linked: %+v", r.Verdict)
	}
	var tables []int
	for _, st := range r.Steps {
		tables = append(tables, st.Table)
	}
	if got := fmt.Sprint(tables); got != "[0 10 20 30 40 41 50]" {
		t.Fatalf("tables passed: %s", got)
	}
	if !strings.Contains(r.Steps[5].Actions, "ct(commit,zone=1)") || strings.Contains(r.Steps[4].Actions, "thaw") {
		t.Fatalf("link step: %+v", r.Steps)
	}

	r = trace(t, "trace-unlinked.txt")
	if r.Allowed || r.Verdict != "dropped (table 41, links (connection tracking): no link allows this new connection)" {
		t.Fatalf("unlinked: %q", r.Verdict)
	}
	r = trace(t, "trace-spoofed.txt")
	if r.Allowed || !strings.HasPrefix(r.Verdict, "dropped (table 10, spoof guard") {
		t.Fatalf("spoofed: %q", r.Verdict)
	}
	// Delivered elsewhere than the destination's port is not allowed.
	b, _ := os.ReadFile("testdata/trace-linked.txt")
	if Parse(string(b), "7").Allowed {
		t.Fatal("a packet output to another port counted as delivered")
	}
}

func TestPacketSpec(t *testing.T) {
	s, err := PacketSpec(3, "02:00:00:00:00:01", "02:00:00:00:00:02", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), "udp", 53)
	if err != nil || s != "udp,in_port=3,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.2,nw_dst=10.0.0.3,udp_src=40000,udp_dst=53" {
		t.Fatalf("%s %v", s, err)
	}
	if _, err := PacketSpec(3, "a", "b", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), "tcp", 0); err == nil {
		t.Fatal("tcp without --dport accepted")
	}
	if _, err := PacketSpec(3, "a", "b", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), "icmp", 80); err == nil {
		t.Fatal("icmp with --dport accepted")
	}
}

// A packet for another host's container is output to a tunnel port named
// in the action itself (real output of OVS 3.1, a two-host VXLAN mesh):
// delivered when that port is one wanted, not when only another is.
func TestParseTunnelOutput(t *testing.T) {
	b, err := os.ReadFile("testdata/trace-tunnel.txt")
	if err != nil {
		t.Fatal(err)
	}
	if r := Parse(string(b), "65201", "65200"); !r.Allowed {
		t.Errorf("output to tunnel port 65200: %s", r.Verdict)
	}
	if r := Parse(string(b), "4"); r.Allowed {
		t.Errorf("delivered to port 4, which it never reached: %s", r.Verdict)
	}
}

// A pipeline that says why it drops (flows.RegDrop, table 60): the
// verdict is the pipeline's own reason, and the drop table is no step
// (real outputs of OVS 3.1; the destination on port 2).
func TestParseDropReason(t *testing.T) {
	for _, c := range []struct{ file, verdict, tables string }{
		{"trace-unlinked-why.txt", "dropped (table 41, links (connection tracking): no link allows this new connection)", "[0 10 20 30 40 41]"},
		{"trace-spoofed-why.txt", "dropped (table 10, spoof guard (own MAC and addresses only): the source MAC or address is not the port's own)", "[0 10]"},
	} {
		b, err := os.ReadFile("testdata/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		r := Parse(string(b), "2")
		var tables []int
		for _, st := range r.Steps {
			tables = append(tables, st.Table)
		}
		if r.Allowed || r.Verdict != c.verdict || fmt.Sprint(tables) != c.tables {
			t.Errorf("%s: %q through %v", c.file, r.Verdict, tables)
		}
		if last := r.Steps[len(r.Steps)-1]; last.Actions != "drop" {
			t.Errorf("%s: the last step's actions %q, want drop", c.file, last.Actions)
		}
	}
}
