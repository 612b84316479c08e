package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// add-ports attaches a list in one call (mixed types, per-line flags,
// defaults from the command line), the result behaves like add-port's
// (addresses, isolation, TCP over both types, nothing for reconcile to
// repair), and a list with one bad line changes nothing at all.
func TestAddPortsBulk(t *testing.T) {
	e := newEnv(t)
	var cs []string
	for i := 0; i < 6; i++ {
		cs = append(cs, e.container())
	}
	e.must("add-br", "br0", "--subnet", "10.71.0.0/24", "--icc=false")
	list := filepath.Join(t.TempDir(), "list")
	write := func(lines ...string) {
		if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A bad line (unknown container) after good ones: nothing may stay.
	before := e.state(cs...)
	write("eth1 "+cs[0], "eth1 no-such-container-x")
	e.fails(`container not found: "no-such-container-x"`, "add-ports", "br0", list, "--ip")
	write("eth1 "+cs[0], "eth1 "+cs[1]+" --ip=10.71.0.2/24")
	e.fails("10.71.0.2 (line 2) is already taken", "add-ports", "br0", list, "--ip=10.71.0.2/24")
	if after := e.state(cs...); after != before {
		t.Fatalf("failed add-ports left changes:\nbefore %s\nafter  %s", before, after)
	}

	write("# web tier",
		"eth1 "+cs[0],
		"",
		"eth1 "+cs[1]+" --type "+otherType(),
		"eth1 "+cs[2]+" --ip=10.71.0.50/24",
		"eth1 "+cs[3],
		"eth1 "+cs[4]+" --type "+otherType())
	out := e.must("add-ports", "br0", list, "--ip", "--type", "veth")
	for _, want := range []string{
		"attached " + cs[0] + ":eth1 to br0", "(veth)", "(" + otherType() + ")",
		"address 10.71.0.2/24", "address 10.71.0.3/24", "address 10.71.0.50/24", "address 10.71.0.5/24",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("add-ports output lacks %q:\n%s", want, out)
		}
	}
	// Isolation holds until linked; links work on bulk-attached ports.
	noPing(t, cs[0], "10.71.0.3")
	e.must("link", "br0", cs[0], cs[1])
	e.must("link", "br0", cs[2], cs[3])
	ping(t, cs[0], "10.71.0.3")
	tcpTransfer(t, nsPath(cs[0]), nsPath(cs[1]), "10.71.0.3", 8<<20) // veth -> internal
	tcpTransfer(t, nsPath(cs[2]), nsPath(cs[3]), "10.71.0.4", 8<<20) // veth -> veth
	if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("reconcile after add-ports: %q", out)
	}
	// Already attached: refused, nothing changes.
	before = e.state(cs...)
	write("eth1 "+cs[5], "eth1 "+cs[0])
	e.fails("port already attached for CONTAINER="+cs[0], "add-ports", "br0", list, "--ip")
	if after := e.state(cs...); after != before {
		t.Fatalf("refused add-ports left changes")
	}
	// Standard input, JSON out; then a single add-port still allocates
	// around the bulk's addresses.
	c := e.sb.Command(ovsnetBin, "add-ports", "br0", "-", "--ip", "-o", "json")
	c.Stdin = strings.NewReader("eth1 " + cs[5] + "\n")
	b, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(b), `"address`) || !strings.Contains(string(b), "10.71.0.6/24") {
		t.Fatalf("add-ports from stdin: %v: %s", err, b)
	}
	e.must("del-port", "br0", "eth1", cs[1])
	e.must("add-port", "br0", "eth2", cs[5], "--ip")
	if got := strings.Join(addrs(t, cs[5]), " "); !strings.Contains(got, "10.71.0.3/24") {
		t.Fatalf("add-port after del-port did not reuse 10.71.0.3: %s", got)
	}
}
