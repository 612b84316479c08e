package attach

import (
	"strings"
	"testing"
)

func TestHostName(t *testing.T) {
	a := HostName("ovs-br1", "container1", "eth1")
	if len(a) > 15 || !strings.HasPrefix(a, "on") {
		t.Fatalf("bad host name %q", a)
	}
	if a != HostName("ovs-br1", "container1", "eth1") {
		t.Fatal("not deterministic")
	}
	for _, o := range []string{HostName("ovs-br2", "container1", "eth1"), HostName("ovs-br1", "container2", "eth1"), HostName("ovs-br1", "container1", "eth2")} {
		if o == a {
			t.Fatalf("collision: %s", o)
		}
	}
}
