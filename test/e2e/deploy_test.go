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
	notInVM(t, "it installs onto the host's own root")
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
	// A tree without the openvswitch module: userspace TSO on at every
	// start of ovs-vswitchd.
	tso := root + "/etc/systemd/system/ovs-vswitchd.service.d/ovsnet-userspace-tso.conf"
	if out := install(); !strings.Contains(out, "installed "+root+"/usr/local/bin/ovsnet") || !strings.Contains(out, "ovsnet-controller.service") ||
		!strings.Contains(out, "installed "+root+"/opt/cni/bin/ovsnet") ||
		!strings.Contains(out, "installed "+tso) {
		t.Fatalf("first install: %q", out)
	}
	if b, err := os.ReadFile(tso); err != nil || !strings.Contains(string(b), "ExecStartPre=-/usr/bin/ovs-vsctl --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true") {
		t.Fatalf("userspace TSO drop-in: %v %q", err, b)
	}
	if out := install(); strings.Contains(out, "installed") {
		t.Fatalf("second install changed something: %q", out)
	}
	// A tree with it: the kernel datapath needs none.
	kroot := t.TempDir()
	mod := kroot + "/lib/modules/6.1.0-1-amd64/kernel/net/openvswitch"
	os.MkdirAll(mod, 0o755)
	os.WriteFile(mod+"/openvswitch.ko.xz", nil, 0o644)
	c := exec.Command("../../deploy/install.sh", ovsnetBin)
	c.Env = append(os.Environ(), "ROOT="+kroot)
	if out, err := c.CombinedOutput(); err != nil || strings.Contains(string(out), "userspace-tso") {
		t.Fatalf("install on a tree with the openvswitch module: %v: %s", err, out)
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
	// The drop-in, with Debian's ovs-vswitchd unit (whose commands verify
	// looks for in the root).
	for _, f := range []string{"/usr/share/openvswitch/scripts/ovs-ctl", "/usr/bin/ovs-vsctl"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		if out, err := exec.Command("cp", "-a", f, filepath.Join(root, f)).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v: %s", f, err, out)
		}
	}
	out, err = exec.Command("systemd-analyze", "verify", "--root="+root, "/lib/systemd/system/ovs-vswitchd.service").CombinedOutput()
	if err != nil || strings.Contains(string(out), "ovsnet-userspace-tso") {
		t.Fatalf("systemd-analyze verify ovs-vswitchd with the drop-in: %v: %s", err, out)
	}
}

// On a host without systemd (this one: PID 1 is not systemd) the install
// starts nothing and says what to run instead, and that Open vSwitch is
// not running yet for its TSO step. It runs in a mount namespace whose
// install directories are empty tmpfs, so the machine keeps its own.
func TestDeployWithoutSystemd(t *testing.T) {
	notInVM(t, "it installs onto the host's own root (in a private mount namespace)")
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("this host runs systemd")
	}
	if _, err := os.Stat("/var/run/openvswitch/db.sock"); err == nil {
		t.Skip("the host's own Open vSwitch runs")
	}
	script := `set -e
for d in /usr/local/bin /opt/cni /etc/systemd/system; do mkdir -p $d; mount -t tmpfs ovsnet-test $d; done
../../deploy/install.sh "$1"
`
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "bash", "-c", script, "install", ovsnetBin).CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh without systemd: %v\n%s", err, out)
	}
	for _, want := range []string{"installed /usr/local/bin/ovsnet", "This host does not run systemd", "nothing was enabled or started",
		"/usr/share/openvswitch/scripts/ovs-ctl start", "nohup ovsnet controller", "Open vSwitch is not running, so userspace TSO was not turned on"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("install.sh without systemd does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat("/etc/systemd/system/ovsnet-controller.service"); err == nil {
		t.Error("the install reached the machine's own /etc")
	}
}
