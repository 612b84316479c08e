package ovn

import (
	"net/netip"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/ovn/nb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// A service's load balancer follows its backends by name: the attached
// ones are served, each health-checked from the network's last host
// address, the missing ones named.
func TestDeriveService(t *testing.T) {
	sub := netip.MustParsePrefix("10.72.0.0/24")
	if src := nb.HealthCheckSource(sub); src.String() != "10.72.0.254" {
		t.Fatalf("health-check source %s", src)
	}
	if src := nb.HealthCheckSource(netip.MustParsePrefix("10.8.0.0/16")); src.String() != "10.8.255.254" {
		t.Fatalf("health-check source %s", src)
	}
	ports := []ovnnb.LogicalSwitchPort{
		{Name: "p1", Addresses: []string{"0a:58:0a:48:00:02 10.72.0.2"}, ExternalIDs: map[string]string{intent.KeyContainerID: "w1"}},
		{Name: "p2", Addresses: []string{"0a:58:0a:48:00:03 10.72.0.3"}, ExternalIDs: map[string]string{intent.KeyContainerID: "w2"}},
	}
	s := intent.Service{VIP: netip.MustParseAddrPort("172.30.0.10:80"), Proto: "tcp", Backends: []intent.Backend{{Container: "w1", Port: 8080}, {Container: "w3", Port: 8080}, {Container: "w2", Port: 9090}}}
	d := derive(s, ports, sub)
	if d.vips["172.30.0.10:80"] != "10.72.0.2:8080,10.72.0.3:9090" || d.mappings["10.72.0.2"] != "p1:10.72.0.254" || len(d.missing) != 1 || d.missing[0] != "w3" {
		t.Fatalf("%+v", d)
	}
	if d := derive(intent.Service{VIP: s.VIP, Backends: []intent.Backend{{Container: "w3", Port: 1}}}, ports, sub); len(d.vips) != 0 {
		t.Fatalf("a service with no backend attached has an address: %+v", d.vips)
	}
}
