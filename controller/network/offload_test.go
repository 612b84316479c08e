package network

import (
	"testing"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
)

func TestNoTxOffload(t *testing.T) {
	spanning := map[string]string{intent.KeySubnet: "10.0.0.0/16", intent.KeyIPRange: "10.0.1.0/24"}
	withTunnel := func(kernel bool) map[string]string {
		ext := map[string]string{}
		for k, v := range spanning {
			ext[k] = v
		}
		for k, v := range (intent.Tunnel{Remote: "192.0.2.2", Type: "vxlan", Local: "192.0.2.1", Port: "t1", Ofport: 65200, Kernel: kernel}).Encode() {
			ext[k] = v
		}
		return ext
	}
	for _, c := range []struct {
		name    string
		ext     map[string]string
		typ, dp string
		tso     bool
		want    bool
		asksTSO bool
	}{
		{"veth, userspace, TSO on", nil, attach.TypeVeth, datapath.Netdev, true, false, true},
		{"veth, userspace, TSO off", nil, attach.TypeVeth, datapath.Netdev, false, true, true},
		{"internal, userspace", nil, attach.TypeInternal, datapath.Netdev, false, false, false},
		// OVS's own tunnels cannot encapsulate offloaded packets; the
		// kernel's VXLAN devices can.
		{"internal, userspace, OVS tunnel", withTunnel(false), attach.TypeInternal, datapath.Netdev, true, true, false},
		{"veth, userspace, TSO on, OVS tunnel", withTunnel(false), attach.TypeVeth, datapath.Netdev, true, true, false},
		{"internal, userspace, kernel VXLAN", withTunnel(true), attach.TypeInternal, datapath.Netdev, true, false, false},
		{"veth, userspace, TSO on, kernel VXLAN", withTunnel(true), attach.TypeVeth, datapath.Netdev, true, false, true},
		{"internal, userspace, spanning, no tunnel yet", spanning, attach.TypeInternal, datapath.Netdev, true, false, false},
		{"veth, kernel datapath", nil, attach.TypeVeth, "system", false, false, false},
	} {
		asked := false
		got := datapath.NoTxOffload(intent.DecodeBridge("br", c.ext), c.typ, c.dp, func() bool { asked = true; return c.tso })
		if got != c.want || asked != c.asksTSO {
			t.Errorf("%s: noTxOffload = %v (asked for TSO: %v), want %v (%v)", c.name, got, asked, c.want, c.asksTSO)
		}
	}
}
