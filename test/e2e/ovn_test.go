package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

// newCentral starts a hermetic OVN central node for the test.
func newCentral(t *testing.T) *sandbox.Central {
	t.Helper()
	c, err := sandbox.StartCentral(uniq("ovt-ovn"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("central cleanup: %v", err)
		}
	})
	return c
}

type ovnStatus struct {
	SystemID   string `json:"system_id"`
	EncapIP    string `json:"encap_ip"`
	Datapath   string `json:"bridge_datapath_type"`
	Underlay   string `json:"underlay_bridge"`
	Controller bool   `json:"ovn_controller_running"`
	InSB       bool   `json:"chassis_in_southbound"`
}

// A host joins OVN with one command on that host: its chassis appears in
// the southbound database with its address, on the userspace datapath
// with the address on an OVS bridge, and OVN makes the Geneve tunnels to
// the other chassis by itself. Joining again changes nothing; a host
// without ovn-controller is told so; leaving undoes it all.
func TestOVNJoin(t *testing.T) {
	c := newCentral(t)
	hs := newHosts(t, 3)
	for _, h := range hs[:2] {
		if err := h.sb.StartOVNController(); err != nil {
			t.Fatal(err)
		}
	}
	sb := "--sb=" + c.SB()
	hs[0].fails("not an OVN chassis", "ovn", "status")
	var st ovnStatus
	if err := json.Unmarshal([]byte(hs[0].must("ovn", "join", sb, "--encap-ip", underlayAddr(0), "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Controller || !st.InSB || st.EncapIP != underlayAddr(0) || st.Datapath != "netdev" || st.Underlay != "ovs-ul0" || st.SystemID == "" {
		t.Fatalf("join: %+v", st)
	}
	var again ovnStatus
	json.Unmarshal([]byte(hs[0].must("ovn", "join", sb, "--encap-ip", underlayAddr(0), "-o", "json")), &again)
	if again.SystemID != st.SystemID || !again.InSB {
		t.Fatalf("joining again: %+v, was %+v", again, st)
	}
	hs[1].must("ovn", "join", sb, "--encap-ip", underlayAddr(1))
	show := run(t, "ovn-sbctl", "--db="+c.SB(), "show")
	if !strings.Contains(show, st.SystemID) || !strings.Contains(show, `ip: "`+underlayAddr(1)+`"`) {
		t.Fatalf("the southbound database:\n%s", show)
	}
	// OVN's own tunnels, with no tunnel command on either host.
	eventually(t, 20*time.Second, "a Geneve tunnel from host 0 to host 1", func() bool {
		out, _ := hs[0].sb.Vsctl("--bare", "--columns=options", "find", "interface", "type=geneve")
		return strings.Contains(out, underlayAddr(1))
	})
	hs[2].fails("ovn-controller is not running on this host", "ovn", "join", sb, "--encap-ip", underlayAddr(2))

	hs[0].must("ovn", "leave")
	hs[0].must("ovn", "leave") // twice is fine
	if ext := hs[0].vsctlList("get", "open_vswitch", ".", "external_ids"); strings.Contains(ext, "ovn-remote") || !strings.Contains(ext, st.SystemID) {
		t.Fatalf("after leave, external_ids: %s", ext)
	}
	if show := run(t, "ovn-sbctl", "--db="+c.SB(), "show"); strings.Contains(show, st.SystemID) {
		t.Fatalf("the chassis is still in the southbound database:\n%s", show)
	}
	if a := addrs(t, hs[0].sb.Netns); !strings.Contains(strings.Join(a, "\n"), "ul0 "+underlayAddr(0)) {
		t.Fatalf("the underlay did not get its address back: %v", a)
	}
}
