package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Long work draws progress bars on a terminal (count, rate, time left):
// add-ports moving internal ports in, reconcile, del-br deleting them; and
// nothing of the kind when stdout is not a terminal or the output is JSON.
func TestProgressOnTerminal(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.61.0.0/24")
	var lines []string
	for i := 0; i < 60; i++ {
		lines = append(lines, "eth1 "+e.container())
	}
	file := filepath.Join(t.TempDir(), "ports")
	if err := os.WriteFile(file, []byte(strings.Join(lines[:55], "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out := onTerminal(t, e, "add-ports br0 "+file+" --ip --type internal")
	for _, want := range []string{"move internal ports into containers", "55/55", "ports/s", "attached"} {
		if !strings.Contains(out, want) {
			t.Fatalf("add-ports on a terminal lacks %q:\n%q", want, out)
		}
	}
	if out := onTerminal(t, e, "reconcile"); !strings.Contains(out, "reconcile br0") || !strings.Contains(out, "100%") {
		t.Fatalf("reconcile on a terminal:\n%q", out)
	}
	// Not a terminal, or JSON: the output alone.
	rest := filepath.Join(t.TempDir(), "rest")
	if err := os.WriteFile(rest, []byte(strings.Join(lines[55:], "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.must("add-ports", "br0", rest, "--ip"); strings.Contains(out, "ports/s") || strings.Contains(out, "\r") {
		t.Fatalf("add-ports into a pipe drew progress:\n%q", out)
	}
	if out := onTerminal(t, e, "show -o json"); strings.Contains(out, "ports/s") || !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Fatalf("show -o json on a terminal is not JSON alone:\n%.300q", out)
	}
	out = onTerminal(t, e, "del-br br0")
	if !strings.Contains(out, "delete internal ports in their containers") || !strings.Contains(out, "60/60") {
		t.Fatalf("del-br on a terminal:\n%q", out)
	}
}

// onTerminal runs ovsnet with args (one string, as a shell reads it) on a
// pseudo-terminal (script(1)) in e's host and returns what it wrote.
func onTerminal(t *testing.T, e *env, args string) string {
	t.Helper()
	out, err := e.sb.Command("script", "-qec", ovsnetBin+" "+args, "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("ovsnet %s on a terminal: %v\n%s", args, err, out)
	}
	return string(out)
}
