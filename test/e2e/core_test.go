package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The seeds' scenario (ovs-docker's README) for each attach type: two
// containers on ovs-br1, pings both ways and to the gateway, and a TCP
// transfer. On the userspace datapath a veth stalls TCP unless ovsnet turns
// TX offload off, so the veth case checks that too.
func TestSeedScenario(t *testing.T) {
	for _, typ := range []string{"internal", "veth"} {
		t.Run(typ, func(t *testing.T) {
			e := newEnv(t)
			c1, c2 := e.container(), e.container()
			e.must("add-br", "ovs-br1", "--subnet", "172.16.1.0/24", "--gateway", "172.16.1.1")
			if typ == "internal" && kernelDatapath {
				// Renamed in the container, a kernel vport would be made
				// again in the host by ovs-vswitchd: refused, nothing made.
				r := e.ovsnet("add-port", "ovs-br1", "eth1", c1, "--ipaddress=172.16.1.2/24", "--type", typ)
				if r.code == 0 || !strings.Contains(r.err, "use --type veth") {
					t.Fatalf("internal port on the kernel datapath: exit %d, %q", r.code, r.err)
				}
				if ports := e.vsctlList("list-ports", "ovs-br1"); ports != "" {
					t.Fatalf("a refused attach left ports: %q", ports)
				}
				return
			}
			out := e.must("add-port", "ovs-br1", "eth1", c1, "--ipaddress=172.16.1.2/24", "--type", typ)
			if !strings.Contains(out, "172.16.1.2/24") || !strings.Contains(out, "("+typ+")") {
				t.Fatalf("add-port output does not say what it made: %q", out)
			}
			e.must("add-port", "ovs-br1", "eth1", c2, "--ipaddress", "172.16.1.3/24", "--type="+typ)
			ping(t, c1, "172.16.1.3")
			ping(t, c2, "172.16.1.2")
			ping(t, c1, "172.16.1.1")
			ping(t, e.sb.Netns, "172.16.1.3")
			tcpTransfer(t, nsPath(c1), nsPath(c2), "172.16.1.3", 16<<20)
			tcpTransfer(t, nsPath(c2), nsPath(c1), "172.16.1.2", 16<<20)
		})
	}
}

type portJSON struct {
	Container string   `json:"container"`
	Iface     string   `json:"interface"`
	Addresses []string `json:"addresses"`
	Gateways  []string `json:"gateways"`
	MAC       string   `json:"mac"`
	MTU       int      `json:"mtu"`
	VLAN      int      `json:"vlan"`
	FloodPPS  int      `json:"flood_pps"`
	Type      string   `json:"type"`
	OVSPort   string   `json:"ovs_port"`
	Ofport    int      `json:"ofport"`
	State     string   `json:"state"`
	Chassis   string   `json:"chassis"`
}

func (e *env) addPortJSON(args ...string) portJSON {
	e.t.Helper()
	var p portJSON
	out := e.must(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		e.t.Fatalf("add-port -o json: %v: %q", err, out)
	}
	return p
}

func TestAllocationDualStackAndFlags(t *testing.T) {
	e := newEnv(t)
	c1, c2, c3, c4 := e.container(), e.container(), e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.77.0.0/24", "--subnet", "fd77::/64")
	// Same settings again: nothing changes; other settings: refused.
	e.must("add-br", "br0", "--subnet", "fd77::/64", "--subnet", "10.77.0.0/24")
	e.fails("already exists with other settings", "add-br", "br0", "--subnet", "10.78.0.0/24")

	p1 := e.addPortJSON("add-port", "br0", "eth1", c1, "--ip")
	p2 := e.addPortJSON("add-port", "br0", "eth1", c2, "--ip")
	if got := strings.Join(p1.Addresses, " "); got != "10.77.0.2/24 fd77::2/64" {
		t.Fatalf("first --ip got %q, want the lowest free address of each family", got)
	}
	if got := strings.Join(p2.Addresses, " "); got != "10.77.0.3/24 fd77::3/64" {
		t.Fatalf("second --ip got %q", got)
	}
	ping(t, c1, "10.77.0.3")
	run(t, "ip", "netns", "exec", c1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd77::3")
	run(t, "ip", "netns", "exec", c2, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd77::1")
	if r := run(t, "ip", "-n", c1, "route", "show", "default"); !strings.Contains(r, "via 10.77.0.1 dev eth1") {
		t.Fatalf("default route in %s: %q", c1, r)
	}

	// Addresses taken explicitly just past the bridge's hint: allocation
	// probes on past them, in more than one round (IPv6 is free at once).
	var taken []string
	for _, a := range []string{"10.77.0.4/24", "10.77.0.5/24", "10.77.0.6/24"} {
		c := e.container()
		e.must("add-port", "br0", "eth1", c, "--ipaddress="+a)
		taken = append(taken, c)
	}
	c := e.container()
	if got := strings.Join(e.addPortJSON("add-port", "br0", "eth1", c, "--ip").Addresses, " "); got != "10.77.0.7/24 fd77::4/64" {
		t.Fatalf("--ip past explicitly taken addresses got %q, want 10.77.0.7/24 fd77::4/64", got)
	}
	for _, c := range append(taken, c) {
		e.must("del-ports", "br0", c)
	}

	// Flags, with the space-separated --ip form.
	p3 := e.addPortJSON("add-port", "br0", "eth1", c3, "--ip", "10.77.0.50/24", "--macaddress=02:42:ac:10:01:09", "--mtu=1400", "--vlan=10")
	link := run(t, "ip", "-n", c3, "-o", "link", "show", "eth1")
	if !strings.Contains(link, "mtu 1400") || !strings.Contains(link, "link/ether 02:42:ac:10:01:09") {
		t.Fatalf("MAC/MTU not applied: %s", link)
	}
	if tag, _ := e.sb.Vsctl("get", "port", p3.OVSPort, "tag"); strings.TrimSpace(tag) != "10" {
		t.Fatalf("VLAN tag of %s = %q, want 10", p3.OVSPort, tag)
	}
	if got := strings.Join(p3.Addresses, " "); got != "10.77.0.50/24" {
		t.Fatalf("explicit address: %q", got)
	}
	// VLAN 10 and untagged ports do not talk, until set-vlan puts c1 in VLAN 10.
	noPing(t, c3, "10.77.0.2")
	e.must("set-vlan", "br0", "eth1", c1, "10")
	ping(t, c3, "10.77.0.2")
	noPing(t, c3, "10.77.0.3")

	defaultRouteKept(e, c4)
	shownAsMade(e, c3)
}

// defaultRouteKept: an existing default route in container c stays (the
// container's own network keeps it), unless --default-route; neither is
// an error.
func defaultRouteKept(e *env, c string) {
	t := e.t
	run(t, "ip", "-n", c, "link", "add", "old0", "type", "veth", "peer", "name", "old1")
	run(t, "ip", "-n", c, "link", "set", "old1", "up")
	run(t, "ip", "-n", c, "link", "set", "old0", "up")
	run(t, "ip", "-n", c, "addr", "add", "192.0.2.1/24", "dev", "old0")
	run(t, "ip", "-n", c, "route", "add", "default", "via", "192.0.2.254")
	e.must("add-port", "br0", "eth1", c, "--ip")
	if r := run(t, "ip", "-n", c, "route", "show", "default"); strings.TrimSpace(r) != "default via 192.0.2.254 dev old0" {
		t.Fatalf("default route taken without --default-route: %q", r)
	}
	e.must("del-port", "br0", "eth1", c)
	e.must("add-port", "br0", "eth1", c, "--ip", "--default-route")
	if r := run(t, "ip", "-n", c, "route", "show", "default"); !strings.Contains(r, "via 10.77.0.1 dev eth1") || strings.Contains(r, "192.0.2.254") {
		t.Fatalf("default route not replaced with --default-route: %q", r)
	}
}

// shownAsMade: show -o json and show report what
// TestAllocationDualStackAndFlags made (c: the container with flags).
func shownAsMade(e *env, c string) {
	t := e.t
	var bs []struct {
		Name       string     `json:"name"`
		Datapath   string     `json:"datapath"`
		Subnets    []string   `json:"subnets"`
		Gateways   []string   `json:"gateways"`
		Containers []portJSON `json:"containers"`
	}
	if err := json.Unmarshal([]byte(e.must("show", "-o", "json")), &bs); err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Datapath != sandboxDatapath() || strings.Join(bs[0].Gateways, " ") != "10.77.0.1 fd77::1" || len(bs[0].Containers) != 4 {
		t.Fatalf("show: %+v", bs)
	}
	for _, p := range bs[0].Containers {
		if p.State != "up" || p.Ofport == 0 || p.MAC == "" {
			t.Fatalf("show: container port %+v", p)
		}
		if p.Container == c && (p.VLAN != 10 || p.MTU != 1400 || p.MAC != "02:42:ac:10:01:09") {
			t.Fatalf("show: %s: %+v", c, p)
		}
	}
	text := e.must("show", "br0")
	if !strings.Contains(text, "br0 (datapath "+sandboxDatapath()+", subnet 10.77.0.0/24 via 10.77.0.1") || !strings.Contains(text, c+" eth1: 10.77.0.50/24, mac 02:42:ac:10:01:09, vlan 10") {
		t.Fatalf("show text:\n%s", text)
	}
}

// Concurrent attaches never get the same address.
func TestConcurrentAttach(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.66.0.0/24")
	const n = 20
	cs := make([]string, n)
	for i := range cs {
		cs[i] = e.container()
	}
	var wg sync.WaitGroup
	ports := make([]portJSON, n)
	errs := make([]string, n)
	for i := range cs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.ovsnet("add-port", "br0", "eth1", cs[i], "--ip", "-o", "json")
			if r.code != 0 {
				errs[i] = r.err
				return
			}
			if err := json.Unmarshal([]byte(r.out), &ports[i]); err != nil {
				errs[i] = err.Error()
			}
		}(i)
	}
	wg.Wait()
	seen := map[string]string{}
	for i, p := range ports {
		if errs[i] != "" {
			t.Fatalf("attach %s: %s", cs[i], errs[i])
		}
		if len(p.Addresses) != 1 {
			t.Fatalf("%s got %v", cs[i], p.Addresses)
		}
		if o, dup := seen[p.Addresses[0]]; dup {
			t.Fatalf("%s and %s both got %s", o, cs[i], p.Addresses[0])
		}
		seen[p.Addresses[0]] = cs[i]
	}
	var all []string
	for a := range seen {
		all = append(all, a)
	}
	sort.Strings(all)
	if len(all) != n {
		t.Fatalf("got %d distinct addresses, want %d: %v", len(all), n, all)
	}
	// They are the lowest n free ones, and they work.
	for i := 2; i < n+2; i++ {
		if _, ok := seen[fmt.Sprintf("10.66.0.%d/24", i)]; !ok {
			t.Fatalf("10.66.0.%d not allocated: %v", i, all)
		}
	}
	ping(t, cs[0], strings.TrimSuffix(ports[n-1].Addresses[0], "/24"))
	ping(t, cs[n-1], "10.66.0.1")
}
