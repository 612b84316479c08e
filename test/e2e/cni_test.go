package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// goTools are the Go commands the tests build (module@version -> build).
var goTools sync.Map

type goToolBuild struct {
	once sync.Once
	path string
	err  error
}

// goTool builds Go command name (module@version pkg) once per test run,
// unless it was built beside a prebuilt ovsnet (test/vm builds cnitool on
// the host).
func goTool(t *testing.T, pkg, name string) string {
	t.Helper()
	v, _ := goTools.LoadOrStore(pkg, &goToolBuild{})
	b := v.(*goToolBuild)
	b.once.Do(func() {
		dir := filepath.Join(filepath.Dir(ovsnetBin), name+"-bin")
		b.path = filepath.Join(dir, name)
		if _, err := os.Stat(b.path); err == nil && os.Getenv("OVSNET_BIN") != "" {
			return
		}
		c := exec.Command("go", "install", pkg)
		c.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if out, err := c.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build %s: %v: %s", name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// cnitool is CNI's cnitool.
func cnitool(t *testing.T) string {
	return goTool(t, "github.com/containernetworking/cni/cnitool@v1.3.1", "cnitool")
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

	cniCheckTampered(e, dir, a, b, addrA)

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

// cniCheckTampered: CHECK names what differs: an address removed in
// container a (addrA), an OVS port deleted behind ovsnet's back.
func cniCheckTampered(e *env, dir, a, b, addrA string) {
	t := e.t
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
}

// ovsnet chained with Debian's portmap and tuning (spec 1.0.0, theirs),
// with host-local as delegated IPAM; and ovsnet publishing the
// portMappings capability itself, with CNI_ARGS' IP and MAC.
func TestCNIChained(t *testing.T) {
	e := newEnv(t)
	data := t.TempDir()
	chain := e.cniNet("ovt-chain", "1.0.0",
		fmt.Sprintf(`{"type":"ovsnet","bridge":"br-chain","ipam":{"type":"host-local","subnet":"10.62.0.0/24","dataDir":%q}}`, data),
		`{"type":"portmap","capabilities":{"portMappings":true}}`,
		`{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_ignore":"1"}}`)
	web, client := e.container(), e.container()
	ports := []string{`CAP_ARGS={"portMappings":[{"hostPort":18091,"containerPort":80,"protocol":"tcp"}]}`}
	addr := cniAddress(t, e.cniMust(chain, ports, "add", "ovt-chain", nsPath(web)))
	if addr != "10.62.0.2" {
		t.Fatalf("host-local gave %s, want 10.62.0.2", addr)
	}
	if _, err := os.Stat(filepath.Join(data, "ovt-chain", addr)); err != nil {
		t.Fatalf("host-local holds no reservation for %s: %v", addr, err)
	}
	if out := run(t, "ip", "netns", "exec", web, "sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore"); strings.TrimSpace(out) != "1" {
		t.Fatalf("tuning after ovsnet: arp_ignore %s", out)
	}
	e.cniMust(chain, nil, "add", "ovt-chain", nsPath(client))
	ping(t, client, addr)
	serveHTTP(t, web)
	o := e.outside()
	eventually(t, 10*time.Second, "portmap's 18091 -> 80 from outside", func() bool { return httpAnswers(t, nsPath(o), "192.0.2.1:18091") })
	// (No CHECK of this chain: Debian's portmap 1.1.1 fails its own on an
	// IPv4-only result, looking for an IPv6 chain it never made.)
	e.cniMust(chain, ports, "del", "ovt-chain", nsPath(web))
	if _, err := os.Stat(filepath.Join(data, "ovt-chain", addr)); err == nil {
		t.Fatalf("DEL left host-local's reservation of %s", addr)
	}

	// static IPAM: its address, and its gateway on the bridge ovsnet makes.
	static := e.cniNet("ovt-static", "1.0.0",
		`{"type":"ovsnet","bridge":"br-static","ipam":{"type":"static","addresses":[{"address":"10.69.0.9/24","gateway":"10.69.0.254"}]}}`)
	st := e.container()
	if got := cniAddress(t, e.cniMust(static, nil, "add", "ovt-static", nsPath(st))); got != "10.69.0.9" {
		t.Fatalf("static IPAM's address: %s", got)
	}
	ping(t, st, "10.69.0.254")
	e.cniMust(static, nil, "del", "ovt-static", nsPath(st))

	// ovsnet's own portMappings, and the address and MAC of CNI_ARGS.
	own := e.cniNet("ovt-own", "1.1.0",
		`{"type":"ovsnet","bridge":"br-own","subnet":"10.63.0.0/24","capabilities":{"portMappings":true}}`)
	srv := e.container()
	out := e.cniMust(own, append([]string{"CNI_ARGS=IP=10.63.0.40;MAC=02:00:0a:3f:00:28"},
		`CAP_ARGS={"portMappings":[{"hostPort":18092,"containerPort":80,"protocol":"tcp"}]}`), "add", "ovt-own", nsPath(srv))
	if cniAddress(t, out) != "10.63.0.40" || !strings.Contains(out, "02:00:0a:3f:00:28") {
		t.Fatalf("CNI_ARGS IP and MAC not taken:\n%s", out)
	}
	serveHTTP(t, srv)
	eventually(t, 10*time.Second, "ovsnet's published 18092 -> 80 from outside", func() bool { return httpAnswers(t, nsPath(o), "192.0.2.1:18092") })
	e.cniMust(own, nil, "del", "ovt-own", nsPath(srv))
	if nat, _ := e.sb.Run("iptables-save", "-t", "nat"); strings.Contains(nat, "18092") {
		t.Fatalf("the published port outlived DEL:\n%s", nat)
	}
}

// serveHTTP runs busybox httpd on port 80 in netns until the test ends.
func serveHTTP(t *testing.T, netns string) {
	t.Helper()
	c := exec.Command("ip", "netns", "exec", netns, "busybox", "httpd", "-f", "-p", "80", "-h", "/")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
}

// Bad input gets the spec's error codes and leaves nothing behind.
func TestCNIBadInput(t *testing.T) {
	e := newEnv(t)
	conf := func(extra string) string {
		return fmt.Sprintf(`{"cniVersion":"1.1.0","name":"ovt-bad","type":"ovsnet","bridge":"br-bad","portType":"veth","ovsdb":%q%s}`, e.sb.DB(), extra)
	}
	c := e.container()
	for _, bad := range []struct{ what, stdin, netns, code string }{
		{"malformed JSON", `{"cniVersion":"1.1.0",`, nsPath(c), `"code": 6`},
		{"a value of the wrong type", conf(`,"subnet":"10.64.0.0/30","icc":"yes"`), nsPath(c), `"code": 6`},
		{"no subnet", conf(``), nsPath(c), `"code": 7`},
		{"a bad MTU", conf(`,"subnet":"10.64.0.0/30","mtu":9`), nsPath(c), `"code": 7`},
		{"a missing netns", conf(`,"subnet":"10.64.0.0/30"`), "/var/run/netns/ovt-nonesuch", `"code": 8`},
	} {
		if out, err := e.plugin("ADD", "bad", bad.netns, bad.stdin); err == nil || !strings.Contains(out, bad.code) {
			t.Errorf("ADD with %s: %v, want %s:\n%s", bad.what, err, bad.code, out)
		}
	}
	// A /30 has one address for containers: the second ADD finds none.
	if out, err := e.plugin("ADD", "first", nsPath(c), conf(`,"subnet":"10.64.0.0/30"`)); err != nil {
		t.Fatalf("ADD: %v\n%s", err, out)
	}
	if out, err := e.plugin("ADD", "second", nsPath(e.container()), conf(`,"subnet":"10.64.0.0/30"`)); err == nil || !strings.Contains(out, "10.64.0.0/30") {
		t.Fatalf("ADD in an exhausted range: %v\n%s", err, out)
	}
	// Another subnet on the same bridge: the bridge's settings conflict.
	if out, err := e.plugin("ADD", "third", nsPath(e.container()), conf(`,"subnet":"10.65.0.0/24"`)); err == nil || !strings.Contains(out, `"code": 7`) || !strings.Contains(out, "other settings") {
		t.Fatalf("ADD with another subnet on the bridge: %v\n%s", err, out)
	}
	show := e.must("show", "br-bad")
	if strings.Count(show, " eth0: ") != 1 || !strings.Contains(show, "first eth0") {
		t.Fatalf("left behind by failed ADDs:\n%s", show)
	}
	if ports := e.hostPorts(); len(ports) != 1 {
		t.Fatalf("host ends left by failed ADDs: %v", ports)
	}
	// A 0.4.0 configuration gets its result in 0.4.0's format.
	if out, err := e.plugin("DEL", "first", nsPath(c), conf(`,"subnet":"10.64.0.0/30"`)); err != nil {
		t.Fatalf("DEL: %v\n%s", err, out)
	}
	old := strings.Replace(conf(`,"subnet":"10.64.0.0/30"`), `"1.1.0"`, `"0.4.0"`, 1)
	if out, err := e.plugin("ADD", "old", nsPath(c), old); err != nil || !strings.Contains(out, `"cniVersion": "0.4.0"`) || !strings.Contains(out, `"version": "4"`) {
		t.Fatalf("ADD of a 0.4.0 configuration: %v\n%s", err, out)
	}
}

// With a controller on the host, the plugin hands ADD and DEL to it
// (its API counter moves), concurrent ADDs included.
func TestCNIThroughController(t *testing.T) {
	e := newEnv(t)
	const listen = "127.0.0.1:19483"
	e.startController(listen, "--resync", "1h")
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"ovt-ctl","type":"ovsnet","bridge":"br-ctl","subnet":"10.66.0.0/24","ovsdb":%q}`, e.sb.DB())
	ns := []string{e.container(), e.container(), e.container(), e.container()}
	var wg sync.WaitGroup
	errs := make([]error, len(ns))
	for i := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := e.plugin("ADD", fmt.Sprintf("ctl%d", i), nsPath(ns[i]), conf); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
	}
	if n := e.apiCount(listen, "add-port", "ok"); n != len(ns) {
		t.Fatalf("the controller served %d ADDs, want %d", n, len(ns))
	}
	ping(t, ns[0], "10.66.0.5")
	for i := range ns {
		if out, err := e.plugin("DEL", fmt.Sprintf("ctl%d", i), nsPath(ns[i]), conf); err != nil {
			t.Fatalf("DEL %d: %v\n%s", i, err, out)
		}
	}
	if n := e.apiCount(listen, "detach", "ok"); n != len(ns) {
		t.Fatalf("the controller served %d DELs, want %d", n, len(ns))
	}
}

// Past the Linux bridge's 1,024 ports: 1,100 ADDs through cnitool on one
// bridge (8 at a time, the controller serving them), random pairs reach
// each other.
func TestCNIPastLinuxBridge(t *testing.T) {
	const n, workers = 1100, 8
	e := newEnv(t)
	e.startController("127.0.0.1:19484", "--resync", "1h")
	dir := e.cniNet("ovt-many", "1.1.0", fmt.Sprintf(`{"type":"ovsnet","bridge":"br-many","subnet":"10.68.0.0/20","ovsdb":%q}`, e.sb.DB()))
	ns := make([]string, n)
	addrs := make([]string, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out, err := e.cnitool(dir, nil, "add", "ovt-many", nsPath(ns[i]))
				if err != nil {
					errs <- fmt.Errorf("ADD %d: %v\n%s", i, err, out)
					continue
				}
				addrs[i] = strings.Split(strings.Split(out, `"address": "`)[1], "/")[0]
			}
		}()
	}
	for i := range ns {
		ns[i] = e.container()
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if show := e.must("show", "br-many"); strings.Count(show, " eth0: ") != n {
		t.Fatalf("%d attachments on br-many, want %d", strings.Count(show, " eth0: "), n)
	}
	for k := 0; k < 20; k++ {
		a, b := rand.IntN(n), rand.IntN(n)
		run(t, "ip", "netns", "exec", ns[a], "ping", "-c", "1", "-W", "2", addrs[b])
	}
}

// Pods through CNI carry their names (K8S_POD_NAMESPACE/K8S_POD_NAME in
// CNI_ARGS, as containerd's CRI and Podman pass them): show lists them by
// NAMESPACE/NAME beside their container IDs, and link and trace take the
// names on an icc=false network.
func TestCNIPodNames(t *testing.T) {
	e := newEnv(t)
	ovsnet := fmt.Sprintf(`{"type":"ovsnet","bridge":"br-pods","subnet":"10.61.0.0/24","icc":false,"ovsdb":%q}`, e.sb.DB())
	dir := e.cniNet("ovt-pods", "1.0.0", ovsnet)
	web, db := e.container(), e.container()
	pod := func(name string) []string {
		return []string{"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=" + name + ";K8S_POD_INFRA_CONTAINER_ID=x"}
	}
	e.cniMust(dir, pod("web"), "add", "ovt-pods", nsPath(web))
	addrDB := cniAddress(t, e.cniMust(dir, pod("db"), "add", "ovt-pods", nsPath(db)))
	show := e.must("show", "br-pods")
	if !strings.Contains(show, "shop/web (cnitool-") || !strings.Contains(show, "shop/db (cnitool-") {
		t.Fatalf("pods not shown by their names:\n%s", show)
	}
	noPing(t, web, addrDB)
	if v := e.verdict("br-pods", "--from", "shop/web", "--to", "shop/db"); !strings.HasPrefix(v, "dropped") {
		t.Fatalf("trace between unlinked pods by name: %s", v)
	}
	e.must("link", "br-pods", "shop/web", "shop/db")
	ping(t, web, addrDB)
	if v := e.verdict("br-pods", "--from", "shop/web", "--to", "shop/db"); !strings.HasPrefix(v, "allowed") {
		t.Fatalf("trace along the link by name: %s", v)
	}
	if show := e.must("show", "br-pods"); strings.Contains(show, "dangling") {
		t.Fatalf("a link between named pods shown dangling:\n%s", show)
	}
	e.cniMust(dir, pod("web"), "del", "ovt-pods", nsPath(web))
	e.cniMust(dir, pod("db"), "del", "ovt-pods", nsPath(db))
	// The pods are gone; the link, the user's intent, stays and shows its
	// ends detached.
	if show := e.must("show", "br-pods"); strings.Contains(show, "shop/web (cnitool-") || strings.Contains(show, "shop/db (cnitool-") ||
		!strings.Contains(show, "dangling: shop/web, shop/db not attached") {
		t.Fatalf("after DEL:\n%s", show)
	}
}
