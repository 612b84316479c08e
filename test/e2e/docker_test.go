package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const testImage = "ovsnet-test/busybox:latest"

// dockerImage builds (once) a tiny image from Debian's busybox-static: there
// is no registry to pull from.
func dockerImage(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker engine not usable in CI: %v", err)
		}
		t.Skipf("no usable Docker engine: %v", err)
	}
	if exec.Command("docker", "image", "inspect", testImage).Run() == nil {
		return
	}
	if out, err := exec.Command("docker", "import", busyboxRootfs(t), testImage).CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v: %s", err, out)
	}
}

// dockerRun starts a container with no network, as users do for ovs-docker.
func dockerRun(t *testing.T, start bool) (name, id string) {
	t.Helper()
	name = uniq("ovsnet-e2e-")
	verb := []string{"run", "-d"}
	if !start {
		verb = []string{"create"}
	}
	id = strings.TrimSpace(run(t, "docker", append(verb, "--network", "none", "--name", name, testImage, "sleep", "3600")...))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	return name, id
}

func TestDockerContainers(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	n1, _ := dockerRun(t, true)
	n2, id2 := dockerRun(t, true)
	e.must("add-br", "ovs-br1", "--subnet", "172.16.1.0/24")
	// Exactly the seeds' commands: one by name, one by ID.
	e.must("add-port", "ovs-br1", "eth1", n1, "--ipaddress=172.16.1.2/24")
	e.must("add-port", "ovs-br1", "eth1", id2[:12], "--ipaddress=172.16.1.3/24")
	run(t, "docker", "exec", n1, "ping", "-c", "3", "-W", "2", "172.16.1.3")
	run(t, "docker", "exec", n2, "ping", "-c", "3", "-W", "2", "172.16.1.2")
	run(t, "docker", "exec", n2, "ping", "-c", "2", "-W", "2", "172.16.1.1")
	show := e.must("show")
	if !strings.Contains(show, n1+" eth1: 172.16.1.2/24") || !strings.Contains(show, id2[:12]+" eth1: 172.16.1.3/24") {
		t.Fatalf("show does not list the containers as typed:\n%s", show)
	}
	// The same container under its other name already has eth1.
	e.fails("interface eth1 already present in container "+n2, "add-port", "ovs-br1", "eth1", n2, "--ip")
	e.must("del-ports", "ovs-br1", n1)
	if l := run(t, "docker", "exec", n1, "ip", "-o", "link"); strings.Contains(l, "eth1") {
		t.Fatalf("eth1 left in %s: %s", n1, l)
	}
	e.must("del-port", "ovs-br1", "eth1", id2[:12])
}

func TestDockerLookupErrors(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.22.0.0/24")
	e.fails(`container not found: "ovsnet-no-such": no Docker container (engine at unix:///var/run/docker.sock), no netns /var/run/netns/ovsnet-no-such`,
		"add-port", "br0", "eth1", "ovsnet-no-such")
	stopped, _ := dockerRun(t, false)
	e.fails(`container "`+stopped+`" (`+stopped+`) is not running (state created): start it first`, "add-port", "br0", "eth1", stopped)

	c := e.sb.Command(ovsnetBin, "add-port", "br0", "eth1", "ovsnet-no-such")
	c.Env = append(c.Env, "DOCKER_HOST=unix:///nonexistent/docker.sock")
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no Docker engine (engine unreachable: no socket /nonexistent/docker.sock)") {
		t.Fatalf("no engine: %v: %s", err, out)
	}
	// With no engine, a named netns still resolves.
	cn := e.container()
	c = e.sb.Command(ovsnetBin, "add-port", "br0", "eth1", cn, "--ip")
	c.Env = append(c.Env, "DOCKER_HOST=unix:///nonexistent/docker.sock")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("netns without engine: %v: %s", err, out)
	}
}
