package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var cnitoolBuild struct {
	once sync.Once
	path string
	err  error
}

// cnitool builds CNI's cnitool once per test run.
func cnitool(t *testing.T) string {
	t.Helper()
	cnitoolBuild.once.Do(func() {
		dir := filepath.Join(filepath.Dir(ovsnetBin), "cnitool-bin")
		c := exec.Command("go", "install", "github.com/containernetworking/cni/cnitool@v1.3.1")
		c.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			cnitoolBuild.err = fmt.Errorf("build cnitool: %v: %s", err, out)
		}
		cnitoolBuild.path = filepath.Join(dir, "cnitool")
	})
	if cnitoolBuild.err != nil {
		t.Fatal(cnitoolBuild.err)
	}
	return cnitoolBuild.path
}

// cniPath is where runtimes in the tests find plugins: ovsnet (the binary
// under test, named as /opt/cni/bin's would be) and Debian's.
func cniPath() string { return filepath.Dir(ovsnetBin) + ":/usr/lib/cni" }

// cniNet writes network name's configuration list (cniVersion, plugins as
// JSON objects) into a directory of its own and returns the directory.
func (e *env) cniNet(name, version string, plugins ...string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	conf := fmt.Sprintf(`{"cniVersion":%q,"name":%q,"plugins":[%s]}`, version, name, strings.Join(plugins, ","))
	if err := os.WriteFile(filepath.Join(dir, name+".conflist"), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// cnitool runs cnitool in the sandbox host with the configurations of dir.
func (e *env) cnitool(dir string, env []string, args ...string) (string, error) {
	e.t.Helper()
	c := e.sb.Command(cnitool(e.t), args...)
	c.Env = append(append(c.Env, "NETCONFPATH="+dir, "CNI_PATH="+cniPath()), env...)
	out, err := c.CombinedOutput()
	return string(out), err
}

// cniMust runs cnitool and fails the test unless it succeeds.
func (e *env) cniMust(dir string, env []string, args ...string) string {
	e.t.Helper()
	out, err := e.cnitool(dir, env, args...)
	if err != nil {
		e.t.Fatalf("cnitool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// cniAddress is the first address of a CNI result.
func cniAddress(t *testing.T, out string) string {
	t.Helper()
	var r struct {
		IPs []struct{ Address string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.IPs) == 0 {
		t.Fatalf("CNI result without an address (%v):\n%s", err, out)
	}
	return strings.Split(r.IPs[0].Address, "/")[0]
}

// plugin runs the ovsnet plugin directly (as a runtime does) in the
// sandbox host: command, container ID, netns and stdin; it returns stdout.
func (e *env) plugin(command, id, netns, stdin string) (string, error) {
	e.t.Helper()
	c := e.sb.Command(ovsnetBin)
	c.Env = append(c.Env, "CNI_COMMAND="+command, "CNI_CONTAINERID="+id, "CNI_NETNS="+netns, "CNI_IFNAME=eth0", "CNI_PATH="+cniPath())
	c.Stdin = strings.NewReader(stdin)
	var out strings.Builder
	c.Stdout = &out
	err := c.Run()
	return out.String(), err
}

// An ovsnet CNI network through cnitool: two namespaces reach each other;
// CHECK passes, and fails naming what was tampered with; DEL twice
// succeeds and leaves nothing; GC keeps only the valid attachments; STATUS
// fails (50) once ovs-vswitchd is gone.
func TestCNIPlugin(t *testing.T) {
	e := newEnv(t)
	ovsnet := fmt.Sprintf(`{"type":"ovsnet","bridge":"br-cni","subnet":"10.60.0.0/24","subnet6":"fd00:60::/64","ovsdb":%q}`, e.sb.DB())
	dir := e.cniNet("ovt-cni", "1.1.0", ovsnet)
	a, b := e.container(), e.container()
	addrA := cniAddress(t, e.cniMust(dir, nil, "add", "ovt-cni", nsPath(a)))
	addrB := cniAddress(t, e.cniMust(dir, nil, "add", "ovt-cni", nsPath(b)))
	if addrA != "10.60.0.2" || addrB != "10.60.0.3" {
		t.Fatalf("addresses %s and %s, want 10.60.0.2 and 10.60.0.3", addrA, addrB)
	}
	ping(t, a, addrB)
	ping(t, b, addrA)
	ping(t, a, "fd00:60::3")
	tcpTransfer(t, nsPath(a), nsPath(b), addrB, 1<<20)
	e.cniMust(dir, nil, "check", "ovt-cni", nsPath(a))
	e.cniMust(dir, nil, "check", "ovt-cni", nsPath(b))
	if out, err := e.cnitool(dir, nil, "add", "ovt-cni", nsPath(a)); err == nil || !strings.Contains(out, "already") {
		t.Fatalf("a second ADD of one container and interface: %v\n%s", err, out)
	}

	// Tampering: CHECK names what differs.
	run(t, "ip", "-n", a, "addr", "del", addrA+"/24", "dev", "eth0")
	if out, err := e.cnitool(dir, nil, "check", "ovt-cni", nsPath(a)); err == nil || !strings.Contains(out, addrA) {
		t.Fatalf("CHECK after an address was removed: %v\n%s", err, out)
	}
	var shown []struct {
		Containers []struct {
			Container string
			OVSPort   string `json:"ovs_port"`
		}
	}
	if err := jsonUnmarshal(e.must("show", "br-cni", "-o", "json"), &shown); err != nil {
		t.Fatal(err)
	}
	ovsPortB := ""
	for _, c := range shown[0].Containers {
		if strings.HasPrefix(c.Container, "cnitool-") {
			ovsPortB = c.OVSPort // any will do: the last one listed
		}
	}
	if _, err := e.sb.Vsctl("del-port", "br-cni", ovsPortB); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, ns := range []string{a, b} {
		if out, err := e.cnitool(dir, nil, "check", "ovt-cni", nsPath(ns)); err != nil && strings.Contains(out, "attached port") {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("CHECK after OVS port %s was deleted: %d failures naming the port, want 1", ovsPortB, failed)
	}

	// DEL, twice: nothing left.
	for i := 0; i < 2; i++ {
		e.cniMust(dir, nil, "del", "ovt-cni", nsPath(a))
		e.cniMust(dir, nil, "del", "ovt-cni", nsPath(b))
	}
	if show := e.must("show", "br-cni"); strings.Contains(show, "cnitool-") {
		t.Fatalf("left after DEL:\n%s", show)
	}
	if ports := e.hostPorts(); len(ports) > 0 {
		t.Fatalf("host ends left after DEL: %v", ports)
	}

	// GC: only the valid attachments stay.
	ids := []string{"gc-keep", "gc-drop1", "gc-drop2"}
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"ovt-cni","type":"ovsnet","bridge":"br-cni","subnet":"10.60.0.0/24","subnet6":"fd00:60::/64","ovsdb":%q`, e.sb.DB())
	for _, id := range ids {
		if out, err := e.plugin("ADD", id, nsPath(e.container()), conf+"}"); err != nil {
			t.Fatalf("ADD %s: %v\n%s", id, err, out)
		}
	}
	valid := `,"cni.dev/valid-attachments":[{"containerID":"gc-keep","ifname":"eth0"}]}`
	if out, err := e.plugin("GC", "", "", conf+valid); err != nil {
		t.Fatalf("GC: %v\n%s", err, out)
	}
	show := e.must("show", "br-cni")
	if !strings.Contains(show, "gc-keep eth0") || strings.Contains(show, "gc-drop") {
		t.Fatalf("after GC keeping gc-keep:\n%s", show)
	}

	// STATUS: fine, then error 50 without ovs-vswitchd.
	e.cniMust(dir, nil, "status", "ovt-cni", nsPath(a))
	if err := e.sb.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	if out, err := e.cnitool(dir, nil, "status", "ovt-cni", nsPath(a)); err == nil || !strings.Contains(out, "ovs-vswitchd") {
		t.Fatalf("STATUS without ovs-vswitchd: %v\n%s", err, out)
	}
	if out, _ := e.plugin("STATUS", "", "", conf+"}"); !strings.Contains(out, `"code": 50`) {
		t.Fatalf("STATUS without ovs-vswitchd, want code 50:\n%s", out)
	}
}
