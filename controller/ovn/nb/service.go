package nb

import (
	"context"
	"net/netip"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// HealthCheckSource is the address a network's service health checks come
// from (OVN's service monitor answers ARP for it with its own MAC): the
// last host address of its IPv4 subnet, which its attaches never hand out.
func HealthCheckSource(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	v-- // the broadcast address's predecessor
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Services reads ovsnet's load balancers (all, or service name's only).
func Services(ctx context.Context, nb *ovsdb.Client, name string) ([]ovnnb.LoadBalancer, error) {
	kv := intent.Ownership("")
	if name != "" {
		kv[intent.KeyService] = name
	}
	return ovsdb.Select[ovnnb.LoadBalancer](ctx, nb, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(kv)})
}

// ServicesOn reads the load balancers of the services on network net.
func ServicesOn(ctx context.Context, nb *ovsdb.Client, net string) ([]ovnnb.LoadBalancer, error) {
	kv := intent.Ownership("")
	kv[intent.KeyOVNNetwork] = net
	return ovsdb.Select[ovnnb.LoadBalancer](ctx, nb, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(kv)})
}
