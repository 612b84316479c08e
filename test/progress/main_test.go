package main

import (
	"bufio"
	"strings"
	"testing"
)

// A failing test is named with its whole output and fails the run; a
// quick passing one is only counted, a skipped one named with its reason;
// input without a package result (go test failed before running anything)
// fails too.
func TestRun(t *testing.T) {
	in := `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"a_test.go:9: boom\n"}
{"Action":"output","Package":"p","Test":"TestA/sub_1","Output":"a_test.go:12: sub boom\n"}
{"Action":"fail","Package":"p","Test":"TestA/sub_1","Elapsed":1}
{"Action":"fail","Package":"p","Test":"TestA","Elapsed":2.5}
{"Action":"output","Package":"p","Test":"TestB","Output":"quiet\n"}
{"Action":"pass","Package":"p","Test":"TestB","Elapsed":0.01}
{"Action":"output","Package":"p","Test":"TestC","Output":"=== RUN   TestC\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:7: needs the kernel datapath\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"--- SKIP: TestC (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestC","Elapsed":0}
{"Action":"fail","Package":"p","Elapsed":3}
`
	var out strings.Builder
	if rc := run(bufio.NewScanner(strings.NewReader(in)), &out); rc != 1 {
		t.Errorf("exit %d, want 1", rc)
	}
	got := out.String()
	if !strings.Contains(got, "a_test.go:9: boom") || !strings.Contains(got, "a_test.go:12: sub boom") || !strings.Contains(got, "FAIL p TestA (2.5s)") || strings.Contains(got, "quiet") ||
		!strings.Contains(got, "1 tests passed, 1 failed, 1 skipped") || !strings.Contains(got, "SKIP p TestC (0.0s): needs the kernel datapath  [") {
		t.Errorf("output:\n%s", got)
	}
	if rc := run(bufio.NewScanner(strings.NewReader("# p\nbuild failed\n")), &out); rc != 1 {
		t.Errorf("no package result: exit %d, want 1", rc)
	}
	ok := `{"Action":"pass","Package":"p","Test":"TestB","Elapsed":0.01}
{"Action":"pass","Package":"p","Elapsed":1}
`
	if rc := run(bufio.NewScanner(strings.NewReader(ok)), &out); rc != 0 {
		t.Errorf("all passed: exit %d", rc)
	}
}
