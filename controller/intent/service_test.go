package intent

import (
	"maps"
	"testing"
)

func TestServiceCodec(t *testing.T) {
	vip, proto, err := ParseVIP("172.30.0.10:80")
	if err != nil || proto != "tcp" || vip.String() != "172.30.0.10:80" {
		t.Fatalf("%v %s %v", vip, proto, err)
	}
	for _, bad := range []string{"172.30.0.10", "172.30.0.10:0", "[fd00::1]:80", "172.30.0.10:80/sctp", "x:80"} {
		if _, _, err := ParseVIP(bad); err == nil {
			t.Errorf("vip %q parsed", bad)
		}
	}
	for _, bad := range []string{"web", ":80", "web:0", "web:70000", "web:x"} {
		if _, err := ParseBackend(bad); err == nil {
			t.Errorf("backend %q parsed", bad)
		}
	}
	s := Service{Name: "web", Network: "front", VIP: vip, Proto: "udp", Backends: []Backend{{Container: "ns/pod:a", Port: 53}, {Container: "w2", Port: 53}}}
	got, ok, err := DecodeService("load balancer x", s.Encode())
	if !ok || err != nil || got.Name != "web" || got.Network != "front" || got.Proto != "udp" || len(got.Backends) != 2 || got.Backends[0] != s.Backends[0] {
		t.Fatalf("round trip: %+v %v %v", got, ok, err)
	}
	if _, ok, _ := DecodeService("x", map[string]string{KeyService: "web"}); ok {
		t.Fatal("a load balancer not ovsnet's decoded as a service")
	}
	// What does not decode: an error, and no backends.
	ext := maps.Clone(s.Encode())
	ext[KeyBackends] = "w1:80,w2"
	if got, ok, err := DecodeService("x", ext); !ok || err == nil || len(got.Backends) != 0 {
		t.Fatalf("bad backends: %+v %v", got, err)
	}
}
