package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The install script runs twice cleanly into a separate root, and the unit
// it installs passes systemd-analyze verify there.
func TestDeployInstallAndUnit(t *testing.T) {
	root := t.TempDir()
	install := func() string {
		c := exec.Command("../../deploy/install.sh", ovsnetBin)
		c.Env = append(os.Environ(), "ROOT="+root)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v: %s", err, out)
		}
		return string(out)
	}
	if out := install(); !strings.Contains(out, "installed "+root+"/usr/local/bin/ovsnet") || !strings.Contains(out, "ovsnet-controller.service") {
		t.Fatalf("first install: %q", out)
	}
	if out := install(); strings.Contains(out, "installed") {
		t.Fatalf("second install changed something: %q", out)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze")
	}
	// verify resolves the unit's dependencies (Debian's Open vSwitch units,
	// the basic targets) inside the root: give it the system's units.
	lib := filepath.Join(root, "lib/systemd/system")
	os.MkdirAll(lib, 0o755)
	if out, err := exec.Command("cp", "-a", "/lib/systemd/system/.", lib).CombinedOutput(); err != nil {
		t.Fatalf("copy units: %v: %s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "/etc/systemd/system/ovsnet-controller.service").CombinedOutput()
	if err != nil || strings.Contains(string(out), "ovsnet-controller") {
		t.Fatalf("systemd-analyze verify: %v: %s", err, out)
	}
}
