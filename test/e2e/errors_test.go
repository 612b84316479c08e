package e2e

import (
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/attach"
)

// Every bad input gets one clear error line, a non-zero exit, and changes
// nothing: the same OVSDB rows, links and addresses before and after.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.container(), e.container()
	e.must("add-br", "br0", "--subnet", "10.88.0.0/24")
	e.must("add-port", "br0", "eth1", c1, "--ipaddress=10.88.0.2/24")
	e.must("add-br", "brsmall", "--subnet", "10.99.0.0/30") // gateway .1, one host: .2
	e.must("add-port", "brsmall", "eth2", c1, "--ip")
	before := e.state(c1, c2)

	for _, c := range badInputs(c1, c2) {
		if c.want == "--ip without an address needs a subnet" {
			continue // needs a bridge without subnet: below
		}
		e.fails(c.want, c.args...)
		if after := e.state(c1, c2); after != before {
			t.Fatalf("ovsnet %s changed state:\nbefore: %s\nafter:  %s", strings.Join(c.args, " "), before, after)
		}
	}
	// A bridge made without ovsnet (as ovs-vsctl add-br does) has no subnet.
	if _, err := e.sb.Vsctl("add-br", "brplain", "--", "set", "bridge", "brplain", "datapath_type=netdev"); err != nil {
		t.Fatal(err)
	}
	before = e.state(c1, c2)
	e.fails("--ip without an address needs a subnet", "add-port", "brplain", "eth1", c2, "--ip")
	if after := e.state(c1, c2); after != before {
		t.Fatalf("state changed")
	}
	// del-ports of nothing succeeds, as with ovs-docker.
	if r := e.ovsnet("del-ports", "br0", c2); r.code != 0 {
		t.Fatalf("del-ports of nothing: exit %d: %s", r.code, r.err)
	}
	// ovs-docker's way still works on such a bridge: an explicit address.
	e.must("add-port", "brplain", "eth1", c2, "--ipaddress=192.0.2.10/24")
	if a := strings.Join(addrs(t, c2), " "); a != "eth1 192.0.2.10/24 lo 127.0.0.1/8 lo ::1/128" {
		t.Fatalf("addresses in %s: %q", c2, a)
	}
}

// A failure after links and rows were made rolls all of it back.
func TestRollback(t *testing.T) {
	e := newEnv(t)
	c1 := e.container()
	e.must("add-br", "br0", "--subnet", "10.89.0.0/24")
	before := e.state(c1)
	// A tap's MTU tops out at 65521: the internal port is made, moved into
	// the container, then configuring it fails.
	// (On the kernel datapath internal ports are refused before anything is made.)
	fails := map[bool]string{false: "set MTU 65535 on eth1", true: "use --type veth"}[kernelDatapath]
	e.fails(fails, "add-port", "br0", "eth1", c1, "--ip", "--type", "internal", "--mtu", "65535")
	if after := e.state(c1); after != before {
		t.Fatalf("internal port not rolled back:\nbefore: %s\nafter:  %s", before, after)
	}
	// IPv6 is off in the container: the veth is made, adding its IPv6
	// address fails, and the veth and the OVS port go away.
	e.must("add-br", "br6", "--subnet", "10.90.0.0/24", "--subnet", "fd90::/64")
	run(t, "ip", "netns", "exec", c1, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	before = e.state(c1)
	e.fails("add address fd90::2/64 to eth1", "add-port", "br6", "eth1", c1, "--ip", "--type", "veth")
	if after := e.state(c1); after != before {
		t.Fatalf("veth not rolled back:\nbefore: %s\nafter:  %s", before, after)
	}
	// A port of the same name made by hand is left alone.
	host := attach.HostName("br0", c1, "eth1")
	if _, err := e.sb.Vsctl("add-port", "br0", host, "--", "set", "interface", host, "type=internal"); err != nil {
		t.Fatal(err)
	}
	before = e.state(c1)
	e.fails("OVS port "+host+" already exists but is not "+c1+":eth1's", "add-port", "br0", "eth1", c1, "--ip", "--type", "veth")
	if after := e.state(c1); after != before {
		t.Fatalf("state changed:\nbefore: %s\nafter:  %s", before, after)
	}
	e.fails("gateway 10.1.1.1 is not on the interface's IPv4 subnet", "add-port", "br0", "eth1", c1, "--ip", "--gateway", "10.1.1.1")
	// The rolled-back addresses are free again, and the bookkeeping agrees.
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("reconcile after rollbacks: %q", out)
	}
	c2 := e.container()
	if out := e.must("add-port", "br6", "eth1", c2, "--ip"); !strings.Contains(out, "address 10.90.0.2/24") || !strings.Contains(out, "address fd90::2/64") {
		t.Fatalf("rolled-back addresses not reused: %q", out)
	}
}

// badInput is a command line and the error it must print.
type badInput struct {
	want string
	args []string
}

// badInputs are the command lines TestBadInputChangesNothing runs, with
// c1 attached to br0 (10.88.0.2) and brsmall (full), c2 attached nowhere.
func badInputs(c1, c2 string) []badInput {
	return []badInput{
		{"at most 15", []string{"add-port", "br0", "eth-name-too-long", c2}},
		{"at most 15", []string{"add-br", "br-name-too-long-x"}},
		{"contains '/'", []string{"add-port", "br0", "et/h1", c2}},
		{"contains '/'", []string{"add-br", "br/0"}},
		{`bridge not found: "nobr"`, []string{"add-port", "nobr", "eth1", c2}},
		{`bridge not found: "nobr"`, []string{"del-port", "nobr", "eth1", c1}},
		{`bridge not found: "nobr"`, []string{"del-br", "nobr"}},
		{`bridge not found: "nobr"`, []string{"show", "nobr"}},
		{`container not found: "no-such-ctr": no Docker `, []string{"add-port", "br0", "eth1", "no-such-ctr"}}, // container, or engine (test/vm has none)
		{"no netns /var/run/netns/no-such-ctr", []string{"add-port", "br0", "eth1", "no-such-ctr"}},
		{"no process 999999", []string{"add-port", "br0", "eth1", "pid:999999"}},
		{"no netns file at /tmp/nope", []string{"add-port", "br0", "eth1", "/tmp/nope"}},
		{"malformed subnet", []string{"add-br", "br1", "--subnet", "10.0.0.0/33"}},
		{"malformed subnet", []string{"add-br", "br1", "--subnet", "banana"}},
		{"malformed address", []string{"add-port", "br0", "eth1", c2, "--ipaddress=10.88.0.300/24"}},
		{"malformed address", []string{"add-port", "br0", "eth1", c2, "--ip=10.88.0.5/xx"}},
		{"outside the subnet 10.88.0.0/24", []string{"add-port", "br0", "eth1", c2, "--ipaddress=10.89.0.5/24"}},
		{"is the bridge's gateway", []string{"add-port", "br0", "eth1", c2, "--ipaddress=10.88.0.1/24"}},
		{"network address", []string{"add-port", "br0", "eth1", c2, "--ipaddress=10.88.0.0/24"}},
		{"broadcast address", []string{"add-port", "br0", "eth1", c2, "--ipaddress=10.88.0.255/24"}},
		{"10.88.0.2 is already taken by " + c1 + "/eth1", []string{"add-port", "br0", "eth1", c2, "--ipaddress=10.88.0.2/24"}},
		{"subnet exhausted: no free address left in 10.99.0.0/30", []string{"add-port", "brsmall", "eth1", c2, "--ip"}},
		{"MTU 67 is outside 68..65535", []string{"add-port", "br0", "eth1", c2, "--mtu=67"}},
		{"MTU 65536 is outside 68..65535", []string{"add-port", "br0", "eth1", c2, "--mtu", "65536"}},
		{"MTU 10 is outside 68..65535", []string{"add-br", "br1", "--mtu", "10"}},
		{"VLAN 4095 is outside 1..4094", []string{"add-port", "br0", "eth1", c2, "--vlan=4095"}},
		{"VLAN 0 is outside 1..4094", []string{"set-vlan", "br0", "eth1", c1, "0"}},
		{"VLAN \"x\" is not a number", []string{"set-vlan", "br0", "eth1", c1, "x"}},
		{"malformed MAC address", []string{"add-port", "br0", "eth1", c2, "--macaddress=zz:zz"}},
		{"is multicast", []string{"add-port", "br0", "eth1", c2, "--macaddress=01:00:5e:00:00:01"}},
		{"interface name lo is the container's loopback", []string{"add-port", "br0", "lo", c2}},
		{"port already attached for CONTAINER=" + c1 + " and INTERFACE=eth1", []string{"add-port", "br0", "eth1", c1}},
		{"failed to find any attached port", []string{"del-port", "br0", "eth9", c2}},
		{"failed to find any attached port", []string{"set-vlan", "br0", "eth9", c2, "5"}},
		{"already exists with other settings (subnet is", []string{"add-br", "br0", "--subnet", "10.1.0.0/24"}},
		{"--ip without an address needs a subnet", []string{"add-port", "brplain", "eth1", c2, "--ip"}},
		{"add-port takes 3 arguments (BRIDGE INTERFACE CONTAINER), got 2", []string{"add-port", "br0", "eth1"}},
		{"unknown flag: --bogus", []string{"add-port", "br0", "eth1", c2, "--bogus"}},
		{"unknown output format \"yaml\"", []string{"show", "-o", "yaml"}},
		{"unknown attach type \"tap\"", []string{"add-port", "br0", "eth1", c2, "--type", "tap"}},
		{"unknown datapath \"dpdk\"", []string{"add-br", "br1", "--datapath", "dpdk"}},
		{"OVS database not reachable at unix:/nonexistent/db.sock", []string{"--db", "unix:/nonexistent/db.sock", "add-br", "br1"}},
		{"start Open vSwitch", []string{"--db", "unix:/nonexistent/db.sock", "show"}},
	}
}
