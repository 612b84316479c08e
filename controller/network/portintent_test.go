package network

import (
	"testing"

	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
)

func TestPortModels(t *testing.T) {
	p := intenttest.SamplePort()
	fp := flowmodel.PortOf(p, "on1", 7, 3)
	if fp.Name != "on1" || fp.Ofport != 7 || fp.VLAN != 3 || len(fp.Addrs) != 2 || fp.MAC.String() != p.MAC.String() {
		t.Fatalf("flow port: %+v", fp)
	}
	v := portView(p, "on1", 7, 3)
	if v.Container != "web" || v.Addresses[1] != "fd00::2/64" || v.Gateways[0] != "10.1.0.1" || v.MTU != 1400 || v.VLAN != 3 {
		t.Fatalf("view: %+v", v)
	}
}
