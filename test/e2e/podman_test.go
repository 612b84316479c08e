package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podmanEnv is a Podman of the test's own (storage, configuration) whose
// CNI backend finds ovsnet's network ovt-pod, run inside the sandbox host.
type podmanEnv struct {
	e                   *env
	conf, root, runroot string
}

func (e *env) podman() *podmanEnv {
	e.t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") != "" {
			e.t.Fatalf("podman not installed in CI: %v", err)
		}
		e.t.Skipf("no podman: %v", err)
	}
	dir := e.t.TempDir()
	p := &podmanEnv{e: e, conf: filepath.Join(dir, "containers.conf"), root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "run")}
	netd := filepath.Join(dir, "net.d")
	os.MkdirAll(netd, 0o755)
	// Podman 4.3's CNI library takes configurations up to spec 1.0.0.
	list := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"ovt-pod","plugins":[{"type":"ovsnet","bridge":"br-pod","subnet":"10.67.0.0/24","ovsdb":%q,"capabilities":{"portMappings":true}}]}`, e.sb.DB())
	conf := fmt.Sprintf("[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\nevents_logger = \"file\"\n"+
		"[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [%q, \"/usr/lib/cni\"]\nnetwork_config_dir = %q\n", filepath.Dir(ovsnetBin), netd)
	for path, data := range map[string]string{filepath.Join(netd, "ovt-pod.conflist"): list, p.conf: conf} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	e.t.Cleanup(func() { p.run("rm", "-f", "-a", "-t", "0") })
	tar := busyboxRootfs(e.t)
	if out, err := p.run("import", tar, "localhost/ovsnet-bb:1"); err != nil {
		e.t.Fatalf("podman import: %v\n%s", err, out)
	}
	return p
}

// run runs podman in the sandbox host's network namespace (nsenter, not
// ip netns exec, which remounts /sys where runc then finds no cgroups).
func (p *podmanEnv) run(args ...string) (string, error) {
	c := exec.Command("nsenter", append([]string{"--net=" + nsPath(p.e.sb.Netns), "podman", "--root", p.root, "--runroot", p.runroot, "--storage-driver", "vfs"}, args...)...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (p *podmanEnv) must(args ...string) string {
	p.e.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.e.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// start runs a container on ovt-pod with args, running cmd.
func (p *podmanEnv) start(name string, args []string, cmd ...string) {
	p.e.t.Helper()
	base := []string{"run", "-d", "--name", name, "--network", "ovt-pod", "--cap-add", "NET_RAW",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	p.must(append(append(append(base, args...), "localhost/ovsnet-bb:1"), cmd...)...)
}

func (p *podmanEnv) addr(name string) string {
	p.e.t.Helper()
	return strings.TrimSpace(p.must("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
}

// busyboxRootfs is a tar of a root file system with busybox and its
// applets the tests use.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox not installed (apt-get install busybox-static): %v", err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "tmp"), 0o1777)
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"sh", "ping", "ping6", "sleep", "ip", "cat", "ls", "httpd"} {
		os.Symlink("busybox", filepath.Join(root, "bin", app))
	}
	tar := filepath.Join(t.TempDir(), "rootfs.tar")
	run(t, "tar", "-C", root, "-cf", tar, ".")
	return tar
}

// Podman 4 on its CNI backend with ovsnet's network: containers reach each
// other by address and are shown by name, -p answers from outside the host
// (and port lists it by the container's name), and podman rm frees the
// address.
func TestCNIPodman(t *testing.T) {
	notInVM(t, "Podman's runtime needs the host's cgroups and storage")
	e := newEnv(t)
	p := e.podman()
	p.start("ovt-web", []string{"-p", "18093:80"}, "busybox", "httpd", "-f", "-p", "80", "-h", "/")
	p.start("ovt-client", nil, "sleep", "3600")
	web, client := p.addr("ovt-web"), p.addr("ovt-client")
	if web != "10.67.0.2" || client != "10.67.0.3" {
		t.Fatalf("addresses %s and %s, want 10.67.0.2 and 10.67.0.3", web, client)
	}
	p.must("exec", "ovt-client", "ping", "-c", "2", "-W", "2", web)
	// Podman names its containers to the plugin (K8S_POD_NAME): show and
	// port take the names.
	if show := e.must("show", "br-pod"); !strings.Contains(show, "ovt-web (") || !strings.Contains(show, "ovt-client (") {
		t.Fatalf("Podman's containers not shown by their names:\n%s", show)
	}
	if port := strings.TrimSpace(e.must("port", "br-pod", "ovt-web")); port != "80/tcp -> 0.0.0.0:18093" {
		t.Fatalf("port of a Podman container by its name: %q", port)
	}
	o := e.outside()
	eventually(t, 10*time.Second, "-p 18093:80 from outside", func() bool { return httpAnswers(t, nsPath(o), "192.0.2.1:18093") })
	p.must("rm", "-f", "-t", "0", "ovt-web")
	if show := e.must("show", "br-pod"); strings.Contains(show, web+"/") {
		t.Fatalf("podman rm left %s attached:\n%s", web, show)
	}
	if nat, _ := e.sb.Run("iptables-save", "-t", "nat"); strings.Contains(nat, "18093") {
		t.Fatalf("podman rm left the published port:\n%s", nat)
	}
	p.start("ovt-next", nil, "sleep", "3600")
	if got := p.addr("ovt-next"); got != web {
		t.Fatalf("the next container got %s, want the freed %s", got, web)
	}
}
