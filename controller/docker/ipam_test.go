package docker

import (
	"context"
	"net/netip"
	"testing"

	"github.com/ovsnet/ovsnet/controller/network/networktest"
)

// TestRequestAddress: the IPAM driver gives the lowest address no
// container holds and none it handed out still pending (found by probes,
// and by reading the bridge when a pending one is in the way); a released
// address is given again; an address asked for that a container holds is
// refused.
func TestRequestAddress(t *testing.T) {
	ctx := context.Background()
	p := &Plugin{Host: networktest.Host(t, "10.1.0.0/24", nil, "10.1.0.2", "10.1.0.3")}
	ask := func(addr string) (string, error) {
		out, err := p.requestAddress(ctx, &addressRequest{PoolID: "ovsnet:10.1.0.0/24", Address: addr})
		if err != nil {
			return "", err
		}
		return out.(map[string]any)["Address"].(string), nil
	}
	pr := netip.MustParsePrefix("10.1.0.0/24")
	if a, ok, err := p.lowestFree(ctx, pr); err != nil || !ok || a.String() != "10.1.0.4" {
		t.Fatalf("probes found %v (%v, %v), want 10.1.0.4", a, ok, err)
	}
	for _, want := range []string{"10.1.0.4/24", "10.1.0.5/24"} {
		if got, err := ask(""); err != nil || got != want {
			t.Fatalf("requested %q, %v; want %s", got, err, want)
		}
	}
	if _, ok, err := p.lowestFree(ctx, pr); err != nil || ok {
		t.Fatalf("probes answered past pending .4 and .5: %v, %v; want the bridge read", ok, err)
	}
	p.releaseAddress(ctx, &addressRequest{PoolID: "ovsnet:10.1.0.0/24", Address: "10.1.0.4"})
	if got, err := ask(""); err != nil || got != "10.1.0.4/24" {
		t.Fatalf("after releasing .4: %q, %v", got, err)
	}
	if _, err := ask("10.1.0.2"); err == nil {
		t.Fatal("10.1.0.2, a container's, was handed out")
	}
}
