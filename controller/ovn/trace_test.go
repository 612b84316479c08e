package ovn

import (
	"os"
	"strings"
	"testing"
)

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
