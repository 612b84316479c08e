package network

import (
	"testing"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
)

func TestNoTxOffload(t *testing.T) {
	spanning := map[string]string{intent.KeySubnet: "10.0.0.0/16", intent.KeyIPRange: "10.0.1.0/24"}
	for _, c := range []struct {
		name    string
		ext     map[string]string
		typ, dp string
		tso     bool
		want    bool
		asksTSO bool
	}{
		{"veth, userspace, TSO on", nil, attach.TypeVeth, DatapathNetdev, true, false, true},
		{"veth, userspace, TSO off", nil, attach.TypeVeth, DatapathNetdev, false, true, true},
		{"internal, userspace", nil, attach.TypeInternal, DatapathNetdev, false, false, false},
		{"internal, userspace, network spanning hosts", spanning, attach.TypeInternal, DatapathNetdev, true, true, false},
		{"veth, userspace, TSO on, network spanning hosts", spanning, attach.TypeVeth, DatapathNetdev, true, true, false},
		{"veth, kernel datapath", nil, attach.TypeVeth, "system", false, false, false},
	} {
		asked := false
		got := NoTxOffload(intent.DecodeBridge("br", c.ext), c.typ, c.dp, func() bool { asked = true; return c.tso })
		if got != c.want || asked != c.asksTSO {
			t.Errorf("%s: noTxOffload = %v (asked for TSO: %v), want %v (%v)", c.name, got, asked, c.want, c.asksTSO)
		}
	}
}
