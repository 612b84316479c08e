package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// servePlugin starts a controller in e's sandbox serving the Docker
// network driver name, which dockerd (in this machine's own namespace)
// takes its endpoints' links from; args are more of its flags.
func (e *env) servePlugin(name string, args ...string) *exec.Cmd {
	e.t.Helper()
	sock := filepath.Join("/run/docker/plugins", name+".sock")
	os.Remove(sock)                         // a killed controller's
	e.t.Cleanup(func() { os.Remove(sock) }) // nothing of the test's left on the machine
	// This process runs in dockerd's namespace (the machine's own).
	c := e.startController("127.0.0.1:19481", append([]string{"--docker-plugin", name, "--docker-netns", fmt.Sprintf("/proc/%d/ns/net", os.Getpid())}, args...)...)
	eventually(e.t, 10*time.Second, "the plugin's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	return c
}

// dockerNet creates a Docker network with driver and args, removed at the end.
func dockerNet(t *testing.T, driver string, args ...string) string {
	t.Helper()
	name := uniq("ovt-net")
	t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })
	run(t, "docker", append(append([]string{"network", "create", "-d", driver}, args...), name)...)
	return name
}

// dockerOn starts a container on network net with extra docker run args.
func dockerOn(t *testing.T, net string, args ...string) string {
	t.Helper()
	return dockerCmdOn(t, net, args, "sleep", "3600")
}

// dockerCmdOn starts a container on network net running cmd.
func dockerCmdOn(t *testing.T, net string, args []string, cmd ...string) string {
	t.Helper()
	name := uniq("ovsnet-e2e-")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() }) // a failed run may leave it created
	run(t, "docker", append(append(append([]string{"run", "-d", "--name", name, "--network", net}, args...), testImage), cmd...)...)
	return name
}

// httpAnswers says whether an HTTP server answers at addr, dialled from
// the namespace netns.
func httpAnswers(t *testing.T, netns, addr string) bool {
	t.Helper()
	answered := false
	inNetns(t, netns, func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return nil
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		answered = strings.HasPrefix(line, "HTTP/1.")
		return nil
	})
	return answered
}

// rootLinks lists this machine's own links whose names start with prefix.
func rootLinks(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for _, f := range strings.Fields(run(t, "ls", "/sys/class/net")) {
		if strings.HasPrefix(f, prefix) {
			out = append(out, f)
		}
	}
	return out
}

// ovsnet as a Docker network: containers on it reach each other by name,
// with Docker's addresses; isolation holds; removing the
// containers and the network leaves nothing behind.
func TestDockerNetworkPlugin(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	driver := uniq("ovsnet-t")
	ctl := e.servePlugin(driver)
	net := dockerNet(t, driver, "--subnet", "10.71.0.0/24")
	a := dockerOn(t, net, "--cap-add", "NET_ADMIN")
	b := dockerOn(t, net, "--ip", "10.71.0.50")
	run(t, "docker", "exec", a, "ping", "-c", "2", "-W", "2", b)
	run(t, "docker", "exec", b, "ping", "-c", "2", "-W", "2", a)
	run(t, "docker", "exec", a, "ping", "-c", "1", "-W", "2", "10.71.0.1") // the gateway, on the bridge
	if out := run(t, "docker", "exec", b, "ip", "-o", "addr", "show", "eth0"); !strings.Contains(out, "10.71.0.50/24") {
		t.Fatalf("b's address: %s", out)
	}
	// The MAC ovsnet derives from the address (its flows hold the port to it).
	if out := run(t, "docker", "exec", b, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "0a:58:0a:47:00:32") {
		t.Fatalf("b's MAC: %s", out)
	}
	// The endpoints are shown with the interface the containers see
	// (Docker names it eth0 when it moves it in).
	eventually(t, 10*time.Second, "show listing the two endpoints as eth0", func() bool {
		return strings.Count(e.must("show"), " eth0: 10.71.0.") == 2
	})
	// Docker's name for the network is its bridge's other name: shown, and
	// taken by the commands that name a network.
	eventually(t, 10*time.Second, "show naming the Docker network", func() bool {
		return strings.Contains(e.must("show"), "Docker network "+net+" (")
	})
	if out := e.must("show", net); !strings.Contains(out, "ovd") || strings.Count(out, " eth0: 10.71.0.") != 2 {
		t.Fatalf("show by the Docker network's name:\n%s", out)
	}
	if svg := e.must("show", net, "-o", "svg"); !strings.Contains(svg, ">"+net+" (ovd") {
		t.Fatalf("the picture does not title the bridge with the network's name:\n%s", svg)
	}
	// The plugin keeps nothing but OVSDB: a controller killed and started
	// again serves the same network, and its containers never noticed
	// (not one ping at 20 ms lost while it was away).
	pinger := exec.Command("docker", "exec", a, "ping", "-c", "150", "-i", "0.02", "-W", "1", b)
	var pings strings.Builder
	pinger.Stdout = &pings
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	ctl.Process.Kill()
	ctl.Wait()
	e.servePlugin(driver)
	t.Log("controller killed and started again")
	if err := pinger.Wait(); err != nil || !strings.Contains(pings.String(), " 0% packet loss") {
		t.Fatalf("pings while the controller was killed and started again: %v\n%s", err, pings.String())
	}
	late := dockerCmdOn(t, net, []string{"-p", "18080:80"}, "busybox", "httpd", "-f", "-p", "80", "-h", "/")
	run(t, "docker", "exec", late, "ping", "-c", "2", "-W", "2", a)
	if out := e.must("port", net, late); !strings.Contains(out, "18080") {
		t.Fatalf("port by the Docker network's and container's names:\n%s", out)
	}
	// -p is published with ovsnet's NAT, in the host that holds the bridge:
	// the server answers on that host's address.
	if out, err := e.sb.Run("iptables-save", "-t", "nat"); err != nil || !strings.Contains(out, "--dport 18080") || !strings.Contains(out, "OVSNET-DNAT") {
		t.Fatalf("no DNAT rule for -p 18080:80: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, "-p 18080:80 answering on the host", func() bool { return httpAnswers(t, nsPath(e.sb.Netns), "10.71.0.1:18080") })
	run(t, "docker", "rm", "-f", late)
	if out, _ := e.sb.Run("iptables-save", "-t", "nat"); strings.Contains(out, "--dport 18080") {
		t.Fatalf("the DNAT rule outlived its container:\n%s", out)
	}
	// Spoofing is dropped as for any ovsnet port.
	run(t, "docker", "exec", a, "ip", "addr", "add", "10.71.0.99/32", "dev", "eth0")
	if exec.Command("docker", "exec", a, "ping", "-c", "1", "-W", "1", "-I", "10.71.0.99", "10.71.0.50").Run() == nil {
		t.Fatal("a container sent from an address Docker did not give it")
	}
	iso, c, d := dockerIsolatedNetwork(e, driver, net, a)
	// A controller that cannot be reached (doctor asks 127.0.0.1:1) is a
	// problem while Docker networks need its plugin, with how to start it.
	if out, ok := e.doctor(); ok || !regexp.MustCompile(`PROBLEM +controller: not running at 127\.0\.0\.1:1, and it is the network plugin of the Docker networks on (ovd\w+, ovt-iso|ovt-iso, ovd\w+)`).MatchString(out) ||
		!strings.Contains(out, "without systemd: ovsnet controller") {
		t.Fatalf("doctor with the plugin's controller away:\n%s", out)
	}
	// A Docker network of another driver is named as such, not as a
	// bridge to make.
	e.fails("Docker network bridge (driver bridge) is not one of ovsnet's", "show", "bridge")
	dockerPluginRefusesAndIPAM(t, driver)
	// Gone with the containers and the networks: rows, bridges and links.
	run(t, "docker", "rm", "-f", a, b, c, d)
	run(t, "docker", "network", "rm", net, iso)
	if show := e.must("show"); strings.Contains(show, "ovd") || strings.Contains(show, "ovt-iso") || strings.Contains(show, "eth0:") {
		t.Fatalf("left after the networks were removed:\n%s", show)
	}
	if left := rootLinks(t, "ovd"); len(left) > 0 {
		t.Fatalf("links left in this machine's namespace: %v", left)
	}
}

// dockerIsolatedNetwork: on a second network, isolated (returned with its
// containers c and d), containers reach only along links, by their Docker
// names, which outlive a restart's new endpoint and which show and doctor
// see as the link's ends; docker network connect
// gives c an interface on net too (where a runs), and disconnect takes it.
func dockerIsolatedNetwork(e *env, driver, net, a string) (iso, c, d string) {
	t := e.t
	iso = dockerNet(t, driver, "--subnet", "10.72.0.0/24", "-o", "ovsnet.icc=false", "-o", "ovsnet.bridge=ovt-iso")
	c, d = dockerOn(t, iso), dockerOn(t, iso)
	if exec.Command("docker", "exec", c, "ping", "-c", "1", "-W", "1", d).Run() == nil {
		t.Fatal("containers on an icc=false network reach each other without a link")
	}
	e.must("link", "ovt-iso", c, d) // by the names Docker knows them by
	run(t, "docker", "exec", c, "ping", "-c", "2", "-W", "2", d)
	if exec.Command("docker", "exec", d, "ping", "-c", "1", "-W", "1", c).Run() == nil {
		t.Fatal("a link let connections in the other direction")
	}
	// A link outlives the endpoint Docker makes anew at a restart.
	run(t, "docker", "restart", "-t", "1", d)
	eventually(t, 10*time.Second, "the link to a restarted container", func() bool {
		return exec.Command("docker", "exec", c, "ping", "-c", "1", "-W", "1", d).Run() == nil
	})
	// What users see of the working link: its ends by those names, not
	// dangling (the endpoints' container_id is Docker's endpoint ID).
	if out := e.must("show", "ovt-iso"); strings.Contains(out, "dangling") {
		t.Fatalf("a working link shown as dangling:\n%s", out)
	}
	// (The legend draws both kinds of arrow: the link's own is in its group.)
	if svg := e.must("show", "ovt-iso", "-o", "svg"); regexp.MustCompile(`<g id="link-[^"]*"><path class="link dangling"`).MatchString(svg) ||
		!regexp.MustCompile(`<g id="link-[^"]*"><path class="link"`).MatchString(svg) {
		t.Fatalf("the working link is not drawn as a link, or drawn dangling:\n%s", svg)
	}
	if out, _ := e.doctor(); strings.Contains(out, "has no port there") {
		t.Fatalf("doctor calls a working link's ends missing:\n%s", out)
	}
	if v := e.verdict(iso, "--from", c, "--to", d); !strings.HasPrefix(v, "allowed") {
		t.Fatalf("trace by the Docker network's name: %s", v)
	}
	e.must("unlink", iso, c, d) // by the Docker network's name
	if exec.Command("docker", "exec", c, "ping", "-c", "1", "-W", "1", d).Run() == nil {
		t.Fatal("unlink left the path open")
	}
	t.Log("isolation checked")
	// docker network connect: a running container gets a second interface.
	run(t, "docker", "network", "connect", net, c)
	run(t, "docker", "exec", c, "ping", "-c", "2", "-W", "2", a)
	run(t, "docker", "network", "disconnect", net, c)
	if exec.Command("docker", "exec", c, "ping", "-c", "1", "-W", "1", a).Run() == nil {
		t.Fatal("disconnected container still reaches the network")
	}
	return iso, c, d
}

// dockerPluginRefusesAndIPAM: Docker shows ovsnet's error for bad input
// and nothing is made; ovsnet's IPAM gives the lowest free address, and a
// container that stops and starts again gets its address (and so its
// MAC) back, where Docker's own IPAM hands out the next one.
func dockerPluginRefusesAndIPAM(t *testing.T, driver string) {
	out, err := exec.Command("docker", "network", "create", "-d", driver, "--subnet", "10.76.0.0/24", "-o", "ovsnet.bridge=ovt-iso", uniq("ovt-net")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already carries Docker network") {
		t.Fatalf("a second network on one bridge: %v %s", err, out)
	}
	out, err = exec.Command("docker", "network", "create", "-d", driver, "--subnet", "10.73.0.0/24", "-o", "ovsnet.bogus=1", uniq("ovt-net")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown option -o ovsnet.bogus") {
		t.Fatalf("unknown option: %v %s", err, out)
	}
	out, err = exec.Command("docker", "network", "create", "-d", driver, "--subnet", "10.71.0.0/25", uniq("ovt-net")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "overlaps") {
		t.Fatalf("overlapping subnet: %v %s", err, out)
	}
	// ovsnet's IPAM: the lowest free address, and a container that stops
	// and starts again gets its address (and so its MAC) back, where
	// Docker's own IPAM hands out the next one.
	own := dockerNet(t, driver, "--ipam-driver", driver, "--subnet", "10.74.0.0/24")
	r1, r2 := dockerOn(t, own), dockerOn(t, own)
	addrOf := func(c string) string {
		return strings.TrimSpace(run(t, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c))
	}
	if a1, a2 := addrOf(r1), addrOf(r2); a1 != "10.74.0.2" || a2 != "10.74.0.3" {
		t.Fatalf("ovsnet's IPAM gave %s and %s, want 10.74.0.2 and 10.74.0.3", a1, a2)
	}
	run(t, "docker", "restart", "-t", "1", r1)
	if a := addrOf(r1); a != "10.74.0.2" {
		t.Fatalf("restarted container has %s, want its 10.74.0.2 back", a)
	}
	run(t, "docker", "exec", r2, "ping", "-c", "2", "-W", "2", r1)
	run(t, "docker", "rm", "-f", r1, r2)
	run(t, "docker", "network", "rm", own)
}

// A container attached with the CLI keeps its interface across docker
// restart, stop and start and a kill under --restart always: the
// controller follows the runtime's events and attaches it again with the
// same address and MAC, links included; without a controller, reconcile
// does. Only its removal takes the port.
func TestDockerRestartKeepsNetwork(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.75.0.0/24", "--icc=false")
	name := uniq("ovsnet-e2e-")
	run(t, "docker", "run", "-d", "--restart", "always", "--network", "none", "--name", name, testImage, "sleep", "3600")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	peer := e.container()
	e.must("add-port", "br0", "eth1", name, "--ip") // 10.75.0.2
	e.must("add-port", "br0", "eth1", peer, "--ip") // 10.75.0.3
	e.must("link", "br0", name, peer)
	mac := func() string {
		return strings.TrimSpace(run(t, "docker", "exec", name, "cat", "/sys/class/net/eth1/address"))
	}
	was := mac()
	back := func(when string) {
		t.Helper()
		eventually(t, 10*time.Second, when+": eth1 back", func() bool {
			out, err := exec.Command("docker", "exec", name, "ip", "-o", "addr", "show", "eth1").CombinedOutput()
			return err == nil && strings.Contains(string(out), "10.75.0.2/24")
		})
		if m := mac(); m != was {
			t.Fatalf("%s: MAC %s, was %s", when, m, was)
		}
		run(t, "docker", "exec", name, "ping", "-c", "2", "-W", "2", "10.75.0.3") // along the link
	}
	// Without a controller: reconcile brings it back.
	run(t, "docker", "restart", "-t", "1", name)
	if out := e.must("reconcile"); !strings.Contains(out, "re-attached") {
		t.Fatalf("reconcile after a restart:\n%s", out)
	}
	back("docker restart, then ovsnet reconcile")
	// With one: within seconds of the container starting.
	e.startController("127.0.0.1:19482", "--resync", "1h")
	run(t, "docker", "restart", "-t", "1", name)
	back("docker restart under the controller")
	run(t, "docker", "stop", "-t", "1", name)
	time.Sleep(2 * time.Second) // a run or two: a stopped container keeps its port
	if show := e.must("show", "br0"); !strings.Contains(show, name+" eth1:") {
		t.Fatalf("stopping the container took its port:\n%s", show)
	}
	run(t, "docker", "start", name)
	back("docker stop and start under the controller")
	pid := dockerPid(t, name)
	run(t, "kill", "-9", pid)
	back("killed, started again by --restart always")
	run(t, "docker", "rm", "-f", name)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(e.must("show", "br0"), name+" eth1:") {
		if time.Now().After(deadline) {
			logs, _ := exec.Command("sh", "-c", "cat "+e.sb.Dir+"/controller-*.log").CombinedOutput()
			t.Fatalf("the port outlived its container; the controller said:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dockerWithMAC starts an HTTP server on network nw with MAC mac, network
// alias alias and -P for port 80, through the Engine API: a newer docker
// client refuses --mac-address with a network against an older daemon.
func dockerWithMAC(t *testing.T, nw, mac, alias string) string {
	t.Helper()
	return dockerCreate(t, map[string]any{
		"Image": testImage, "Cmd": []string{"busybox", "httpd", "-f", "-p", "80", "-h", "/"},
		"MacAddress": mac, "ExposedPorts": map[string]any{"80/tcp": struct{}{}},
		"HostConfig":       map[string]any{"NetworkMode": nw, "PublishAllPorts": true},
		"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{nw: map[string]any{"Aliases": []string{alias}}}},
	})
}

// dockerCreate creates a container from body (the Engine API's, at the
// daemon's version 1.41) and starts it.
func dockerCreate(t *testing.T, body map[string]any) string {
	t.Helper()
	name := uniq("ovsnet-e2e-")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	b, _ := json.Marshal(body)
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", "/var/run/docker.sock")
	}}}
	resp, err := hc.Post("http://docker/v1.41/containers/create?name="+name, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %s %s", name, resp.Status, out)
	}
	run(t, "docker", "start", name)
	return name
}

// Docker's per-container and per-network options on an ovsnet network:
// --mac-address, --network-alias, -P, --network container:NAME, -o
// ovsnet.vlan and --internal.
func TestDockerNetworkOptions(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	driver := uniq("ovsnet-t")
	e.servePlugin(driver)
	net := dockerNet(t, driver, "--subnet", "10.77.0.0/24", "-o", "ovsnet.vlan=12", "-o", "ovsnet.bridge=ovt-vl")
	web := dockerWithMAC(t, net, "02:42:0a:4d:00:99", "db")
	if out := run(t, "docker", "exec", web, "cat", "/sys/class/net/eth0/address"); strings.TrimSpace(out) != "02:42:0a:4d:00:99" {
		t.Fatalf("--mac-address: eth0 has %s", out)
	}
	cli := dockerOn(t, net)
	run(t, "docker", "exec", cli, "ping", "-c", "2", "-W", "2", "db") // the alias, through Docker's DNS
	// A container in web's namespace shares its interface, as Docker does.
	side := dockerOn(t, "container:"+web)
	if out := run(t, "docker", "exec", side, "cat", "/sys/class/net/eth0/address"); strings.TrimSpace(out) != "02:42:0a:4d:00:99" {
		t.Fatalf("--network container:%s: eth0 has %s", web, out)
	}
	run(t, "docker", "exec", side, "ping", "-c", "2", "-W", "2", cli)

	// -o ovsnet.vlan: Docker's endpoints are in VLAN 12; a port on the
	// bridge in another VLAN does not reach them, one in 12 does.
	if show := e.must("show", "ovt-vl"); strings.Count(show, "vlan 12, ") != 2 || strings.Count(show, ", veth, up") != 2 {
		t.Fatalf("endpoints not up in VLAN 12:\n%s", show)
	}
	// show names Docker's endpoints by their containers' names.
	eventually(t, 10*time.Second, "show naming "+web, func() bool { return strings.Contains(e.must("show", "ovt-vl"), web+" (docker endpoint ") })
	in12, in13 := e.container(), e.container()
	e.must("add-port", "ovt-vl", "eth1", in12, "--ip", "10.77.0.112/24", "--vlan", "12")
	e.must("add-port", "ovt-vl", "eth1", in13, "--ip", "10.77.0.113/24", "--vlan", "13")
	webIP := strings.TrimSpace(run(t, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", web))
	ping(t, in12, webIP)
	noPing(t, in13, webIP)

	// -P: the exposed port, published on a free host port by ovsnet's NAT.
	// ovsnet port names the container as Docker does.
	hostPort := 0
	if out := e.must("port", "ovt-vl", web, "80"); func() bool { _, err := fmt.Sscanf(out, "80/tcp -> 0.0.0.0:%d", &hostPort); return err != nil }() {
		t.Fatalf("-P: ovsnet port says %q", out)
	}
	eventually(t, 10*time.Second, "-P's port answering on the host", func() bool {
		return httpAnswers(t, nsPath(e.sb.Netns), fmt.Sprintf("10.77.0.1:%d", hostPort))
	})

	// --internal, dual-stack: containers reach each other, nothing routes
	// them out.
	internal := dockerNet(t, driver, "--internal", "--subnet", "10.78.0.0/24", "--ipv6", "--subnet", "fd00:78::/64")
	i1, i2 := dockerOn(t, internal), dockerOn(t, internal)
	run(t, "docker", "exec", i1, "ping", "-c", "2", "-W", "2", i2)
	v6 := strings.TrimSpace(run(t, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", i2))
	if !strings.HasPrefix(v6, "fd00:78::") {
		t.Fatalf("no IPv6 address from --ipv6: %q", v6)
	}
	run(t, "docker", "exec", i1, "ping", "-6", "-c", "2", "-W", "2", v6)
	if out := run(t, "docker", "exec", i1, "ip", "route"); strings.Contains(out, "default") {
		t.Fatalf("a container on an internal network has a default route:\n%s", out)
	}
	if show := e.must("show"); !strings.Contains(show, "nat off, Docker network") || !strings.Contains(show, "(internal)") {
		t.Fatalf("the internal network's bridge translates:\n%s", show)
	}
}

// Rate limits on a Docker network: -o ovsnet.egress-rate is the default
// of its endpoints, an endpoint's --driver-opt ovsnet.rate its own; the
// host end is shaped as the endpoint is made, the container's side once
// Docker has moved the link in after Join (a queue does not move with it),
// for a starting container and a running one connected alike; TCP runs at
// the endpoint's cap.
func TestDockerRateLimit(t *testing.T) {
	dockerImage(t)
	e := newEnv(t)
	driver := uniq("ovsnet-t")
	e.servePlugin(driver)
	nw := dockerNet(t, driver, "--subnet", "10.78.0.0/24", "-o", "ovsnet.bridge=ovt-rl", "-o", "ovsnet.egress-rate=30mbit")
	if s := e.must("show", "ovt-rl"); !strings.Contains(s, "default rate limit out 30mbit") {
		t.Fatalf("show: %s", s)
	}
	srv := dockerOn(t, nw)
	cli := dockerCreate(t, map[string]any{
		"Image": testImage, "Cmd": []string{"busybox", "sleep", "3600"},
		"HostConfig":       map[string]any{"NetworkMode": nw},
		"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{nw: map[string]any{"DriverOpts": map[string]string{"ovsnet.rate": "20mbit"}}}},
	})
	eventually(t, 15*time.Second, "the endpoints' caps in the containers", func() bool {
		return strings.Contains(dockerQdisc(t, srv, "eth0"), "rate 30Mbit") && strings.Contains(dockerQdisc(t, cli, "eth0"), "rate 20Mbit")
	})
	if s := e.must("show", "ovt-rl"); !strings.Contains(s, "rate limit: in 20mbit, out 20mbit") || !strings.Contains(s, "rate limit: out 30mbit") {
		t.Fatalf("show: %s", s)
	}
	srvIP := strings.TrimSpace(run(t, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", srv))
	srvNs, cliNs := dockerNetns(t, e, srv), dockerNetns(t, e, cli)
	for _, reverse := range []bool{false, true} {
		if got := iperfMbit(t, srvNs, cliNs, srvIP, reverse); !within(got, 20) {
			t.Fatalf("TCP to a Docker endpoint capped at 20 Mbit/s (reverse %v): %.1f Mbit/s", reverse, got)
		}
	}
	// A running container connected to another network with a cap: no
	// start event then; its side is capped once Docker has moved the link.
	nw2 := dockerNet(t, driver, "--subnet", "10.80.0.0/24", "-o", "ovsnet.bridge=ovt-r2")
	run(t, "docker", "network", "connect", "--driver-opt", "ovsnet.egress-rate=10mbit", nw2, srv)
	t.Cleanup(func() { exec.Command("docker", "network", "disconnect", "-f", nw2, srv).Run() }) // before the network goes
	eventually(t, 15*time.Second, "the connected endpoint's cap in the running container", func() bool {
		return strings.Contains(dockerQdisc(t, srv, "eth1"), "rate 10Mbit")
	})
	out, err := exec.Command("docker", "network", "create", "-d", driver, "--subnet", "10.79.0.0/24", "-o", "ovsnet.rate=fast", uniq("ovt-net")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ovsnet.rate") {
		t.Fatalf("a rate that does not parse: %v: %s", err, out)
	}
}

// dockerQdisc is the root qdisc of Docker container c's dev.
func dockerQdisc(t *testing.T, c, dev string) string {
	t.Helper()
	pid := dockerPid(t, c)
	out, _ := exec.Command("nsenter", "-t", pid, "-n", "tc", "qdisc", "show", "dev", dev, "root").CombinedOutput()
	return string(out)
}

// dockerPid is the pid of Docker container c's process.
func dockerPid(t *testing.T, c string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "docker", "inspect", "-f", "{{.State.Pid}}", c))
}

// dockerNetns names Docker container c's network namespace for ip netns
// (a link to its pid's), removed with the test.
func dockerNetns(t *testing.T, e *env, c string) string {
	t.Helper()
	pid := dockerPid(t, c)
	name := uniq("ovt-dk")
	if err := os.Symlink("/proc/"+pid+"/ns/net", "/run/netns/"+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/run/netns/" + name) })
	return name
}
