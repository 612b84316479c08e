package network

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// The testdata are real ofproto/trace outputs of OVS 3.1 on an icc=false
// bridge (the destination is on OpenFlow port 4).
func trace(t *testing.T, name string) *TraceResult {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return parseTrace(string(b), "4")
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
	if parseTrace(string(b), "7").Allowed {
		t.Fatal("a packet output to another port counted as delivered")
	}
}

func TestPacketSpec(t *testing.T) {
	s, err := packetSpec(3, "02:00:00:00:00:01", "02:00:00:00:00:02", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), "udp", 53)
	if err != nil || s != "udp,in_port=3,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.2,nw_dst=10.0.0.3,udp_src=40000,udp_dst=53" {
		t.Fatalf("%s %v", s, err)
	}
	if _, err := packetSpec(3, "a", "b", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), "tcp", 0); err == nil {
		t.Fatal("tcp without --dport accepted")
	}
	if _, err := packetSpec(3, "a", "b", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), "icmp", 80); err == nil {
		t.Fatal("icmp with --dport accepted")
	}
}

// ovn-trace's detailed output (OVN 23.03): the stages and the verdict.
// ovntrace-allowed.txt is a real output; ovntrace-dropped.txt is written
// in its format around the logical flow of a real icc=false drop (the
// end-to-end tests trace real drops).
func TestParseOVNTrace(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	r := parseOVNTrace(read("ovntrace-allowed.txt"), "ovsnet-gw-lab")
	if !r.Allowed || r.Verdict != "allowed" || len(r.Steps) != 4 || r.Steps[1].Stage != "ls_in_l2_lkup" || r.Steps[1].Actions != `outport = "ovsnet-gw-lab"; output;` {
		t.Fatalf("allowed: %+v", r)
	}
	if r := parseOVNTrace(read("ovntrace-allowed.txt"), "another"); r.Allowed {
		t.Fatal("output to one port taken for another")
	}
	r = parseOVNTrace(read("ovntrace-dropped.txt"), "ond3a4bd2dc8e0")
	if r.Allowed || !strings.HasPrefix(r.Verdict, "dropped (ls_out_acl: ") || !strings.Contains(r.Verdict, "no link allows") || r.Steps[len(r.Steps)-1].Priority != 2000 {
		t.Fatalf("dropped: %+v", r)
	}
}
