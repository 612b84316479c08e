package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crictl is cri-tools' crictl.
func crictl(t *testing.T) string {
	return goTool(t, "sigs.k8s.io/cri-tools/cmd/crictl@v1.34.0", "crictl")
}

// criEnv is a containerd of the test's own (state, sockets, the CRI
// plugin with ovsnet's CNI network) run in the sandbox host, as kubelet
// would drive it.
type criEnv struct {
	e     *env
	sock  string
	netns []string // the pods', removed at the end if a failure left them
}

const pauseImage = "ovsnet-test/pause:1"

// cri starts a private containerd whose CRI plugin attaches pods with
// ovsnet's network list, its sandbox image imported from Docker (no
// registry).
func (e *env) cri(list string) *criEnv {
	t := e.t
	dockerImage(t)
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skipf("no containerd: %v", err)
	}
	dir := t.TempDir()
	c := &criEnv{e: e, sock: filepath.Join(dir, "containerd.sock")}
	netd, bin := filepath.Join(dir, "net.d"), filepath.Join(dir, "cni-bin")
	os.MkdirAll(netd, 0o755)
	os.MkdirAll(bin, 0o755)
	// The CRI plugin runs CNI's loopback for every pod too: one plugin
	// directory holds both.
	os.Symlink(ovsnetBin, filepath.Join(bin, "ovsnet"))
	os.Symlink("/usr/lib/cni/loopback", filepath.Join(bin, "loopback"))
	if err := os.WriteFile(filepath.Join(netd, "10-ovsnet.conflist"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	// restrict_oom_score_adj: runc here may not raise a score; the native
	// snapshotter needs no overlay mounts.
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/%s"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, filepath.Join(dir, "opt"), pauseImage, bin, netd)
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	log, _ := os.Create(filepath.Join(dir, "containerd.log"))
	d := exec.Command("nsenter", "--net="+nsPath(e.sb.Netns), "containerd", "--config", cfg)
	d.Stdout, d.Stderr = log, log
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.run("rmp", "-a", "-f")
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
		for _, ns := range c.netns {
			if _, err := os.Stat(ns); err == nil {
				exec.Command("ip", "netns", "del", filepath.Base(ns)).Run()
			}
		}
		exec.Command("sh", "-c", "umount $(grep "+dir+" /proc/mounts | cut -d' ' -f2) 2>/dev/null").Run()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("containerd's log:\n%s", b)
		}
	})
	eventually(t, 30*time.Second, "containerd's CRI answering", func() bool { _, err := c.run("info"); return err == nil })
	// The sandbox image: busybox sleeping, from Docker into containerd.
	if exec.Command("docker", "image", "inspect", pauseImage).Run() != nil {
		run(t, "docker", "import", "--change", `CMD ["/bin/sleep","2147483647"]`, busyboxRootfs(t), pauseImage)
	}
	imp := exec.Command("sh", "-c", fmt.Sprintf("docker save %s | ctr -a %s -n k8s.io images import -", pauseImage, c.sock))
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("import the sandbox image: %v\n%s", err, out)
	}
	return c
}

// run runs crictl against the private containerd: its stdout, and its
// stderr in the error.
func (c *criEnv) run(args ...string) (string, error) {
	cmd := exec.Command(crictl(c.e.t), append([]string{"--runtime-endpoint", "unix://" + c.sock, "--timeout", "60s"}, args...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, errb.String())
	}
	return string(out), err
}

func (c *criEnv) must(args ...string) string {
	c.e.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.e.t.Fatalf("crictl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// runp starts pod name in namespace ns with the pod config's extra JSON
// fields and returns its ID, its network namespace and its address.
func (c *criEnv) runp(ns, name, extra string) (id, netns, addr string) {
	t := c.e.t
	t.Helper()
	f := filepath.Join(t.TempDir(), "pod.json")
	conf := fmt.Sprintf(`{"metadata":{"name":%q,"namespace":%q,"uid":%q},"linux":{}%s}`, name, ns, name+"-uid", extra)
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	id = c.must("runp", f)
	var insp struct {
		Status struct {
			Network struct{ IP string }
		}
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(c.must("inspectp", id)), &insp); err != nil {
		t.Fatal(err)
	}
	for _, n := range insp.Info.RuntimeSpec.Linux.Namespaces {
		if n.Type == "network" {
			netns = n.Path
			c.netns = append(c.netns, netns)
		}
	}
	if netns == "" || insp.Status.Network.IP == "" {
		t.Fatalf("pod %s/%s: no network namespace or address: %+v", ns, name, insp)
	}
	return id, netns, insp.Status.Network.IP
}

// kubelet's path: containerd's CRI plugin runs ovsnet's CNI plugin for
// each pod. Two pods reach each other, a hostPort answers on the host,
// show names the pods by namespace and name, and stopp and rmp leave
// nothing behind.
func TestCRIPods(t *testing.T) {
	notInVM(t, "the VM runs no containerd or Docker")
	e := newEnv(t)
	list := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"ovt-cri","plugins":[{"type":"ovsnet","bridge":"br-cri","subnet":"10.68.0.0/24","ovsdb":%q,"capabilities":{"portMappings":true}}]}`, e.sb.DB())
	c := e.cri(list)
	idA, nsA, addrA := c.runp("web", "front", `,"port_mappings":[{"protocol":0,"container_port":80,"host_port":18090}]`)
	idB, nsB, addrB := c.runp("db", "store", "")
	for _, p := range [][2]string{{nsA, addrB}, {nsB, addrA}, {nsA, "10.68.0.1"}} {
		run(t, "nsenter", "--net="+p[0], "ping", "-c", "2", "-W", "2", p[1])
	}
	show := e.must("show", "br-cri")
	if !strings.Contains(show, "web/front ("+idA[:12]) || !strings.Contains(show, "db/store ("+idB[:12]) {
		t.Fatalf("show does not name the pods by namespace and name:\n%s", show)
	}
	// hostPort 18090 -> front's 80, on the host that holds the bridge.
	srv := exec.Command("nsenter", "--net="+nsA, "busybox", "httpd", "-f", "-p", "80", "-h", "/")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	eventually(t, 10*time.Second, "hostPort 18090 answering on the host", func() bool { return httpAnswers(t, nsPath(e.sb.Netns), "10.68.0.1:18090") })
	// stopp is CNI DEL: the pod's port and its DNAT go; rmp the rest.
	c.must("stopp", idA, idB)
	if show := e.must("show", "br-cri"); strings.Contains(show, "front") || strings.Contains(show, "store") {
		t.Fatalf("stopped pods are still attached:\n%s", show)
	}
	if out, _ := e.sb.Run("iptables-save", "-t", "nat"); strings.Contains(out, "18090") {
		t.Fatalf("the hostPort's DNAT outlived its pod:\n%s", out)
	}
	c.must("rmp", idA, idB)
	if out := c.must("pods", "-q"); out != "" {
		t.Fatalf("pods left: %s", out)
	}
	if hp := e.hostPorts(); len(hp) != 0 {
		t.Fatalf("host links left after the pods went: %v", hp)
	}
}
