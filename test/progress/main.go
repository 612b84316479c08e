// Command progress shows a long `go test -json` run as it goes: one line
// per test as it finishes (its name, result, time and the tally so far;
// passing tests quicker than half a second only counted, a skipped one
// named with its reason),
// each package's result, and the whole output of a test that fails, so
// that `make test` is not silent for the twenty minutes its end-to-end
// tests take. It exits 1 if any test or package failed, or if the input
// ended without a package result (go test itself failed).
//
//	go test -json ./... | go run ./test/progress
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// quick is how long a passing test may take without being named.
const quick = 0.5 // seconds

// event is one line of test2json's output.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

func main() {
	os.Exit(run(bufio.NewScanner(os.Stdin), os.Stdout))
}

func run(in *bufio.Scanner, w io.Writer) int {
	in.Buffer(make([]byte, 1<<20), 16<<20)
	start := time.Now()
	out := map[string]*strings.Builder{} // a running test's output, by package and test
	passed, failed, skipped, packages, bad := 0, 0, 0, 0, 0
	for in.Scan() {
		var e event
		if err := json.Unmarshal(in.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, in.Text()) // not test2json's: a build error, say
			continue
		}
		top, _, isSub := strings.Cut(e.Test, "/")
		key := e.Package + " " + top // a subtest's output goes with its test's
		switch {
		case e.Action == "build-output" || e.Test == "" && e.Action == "output" && !strings.HasPrefix(e.Output, "ok ") && !strings.HasPrefix(e.Output, "PASS") && !strings.HasPrefix(e.Output, "FAIL") && !strings.HasPrefix(e.Output, "?"):
			fmt.Fprint(w, e.Output) // a package's own lines (TestMain's, build errors)
		case e.Action == "output" && e.Test != "":
			if out[key] == nil {
				out[key] = &strings.Builder{}
			}
			out[key].WriteString(e.Output)
		case isSub && e.Action != "output":
			// a subtest's result: its test reports it
		case e.Test != "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			why := ""
			switch e.Action {
			case "pass":
				passed++
			case "skip":
				skipped++
				why = ": " + skipReason(out[key].String())
			case "fail":
				failed++
				fmt.Fprint(w, out[key].String())
			}
			delete(out, key)
			if e.Action == "pass" && e.Elapsed < quick {
				continue // counted; named only when it takes a while
			}
			fmt.Fprintf(w, "%-4s %s %s (%.1fs)%s  [%s: %d passed, %d failed, %d skipped]\n", strings.ToUpper(e.Action), short(e.Package), e.Test, e.Elapsed, why,
				time.Since(start).Round(time.Second), passed, failed, skipped)
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			packages++
			if e.Action == "fail" {
				bad++
			}
			if e.Action != "skip" {
				fmt.Fprintf(w, "%-4s package %s (%.1fs)\n", strings.ToUpper(e.Action), e.Package, e.Elapsed)
			}
		}
	}
	fmt.Fprintf(w, "%d tests passed, %d failed, %d skipped in %s; %d packages, %d failed\n", passed, failed, skipped, time.Since(start).Round(time.Second), packages, bad)
	if failed > 0 || bad > 0 || packages == 0 {
		return 1
	}
	return 0
}

// skipReason is the last line a skipped test wrote before its result
// (t.Skip's message, after its file:line).
func skipReason(output string) string {
	reason := "no reason given"
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		if _, msg, ok := strings.Cut(l, ": "); ok && strings.Contains(l[:len(l)-len(msg)], ".go:") {
			l = msg
		}
		reason = l
	}
	return reason
}

// short is a package path without the module's.
func short(pkg string) string { return strings.TrimPrefix(pkg, "github.com/ovsnet/ovsnet/") }
