package alloc

import (
	"context"
	"net/netip"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// InUse is what a bulk attach must not take: port numbers, container
// interfaces already attached (by container and interface), port names,
// the bridge's addresses and MACs (with their holders).
type InUse struct {
	Ofports  map[int]bool
	Attached map[string]string // port names by container and interface, "\x00" between
	Names    map[string]bool   // true: a warm pool's port's (a fresh port takes another name)
	Addrs    map[netip.Addr]bool
	MACs     map[string]string // holders by MAC
}

// Scan reads every interface of the host (ports ovsnet did not make
// included, for free port numbers) and works out what is in use from it
// and the bridge's snapshot.
func Scan(ctx context.Context, db *ovsdb.Client, snap *ovsdb.BridgeSnapshot) (InUse, error) {
	in := InUse{Ofports: map[int]bool{}, Attached: map[string]string{}, Names: map[string]bool{}, Addrs: map[netip.Addr]bool{}, MACs: map[string]string{}}
	all, err := ovsdb.Select[vswitchd.Interface](ctx, db, nil, "name", "ofport", "ofport_request", "external_ids")
	if err != nil {
		return in, err
	}
	for _, i := range all {
		for _, n := range []*int{i.Ofport, i.OfportRequest} {
			if n != nil {
				in.Ofports[*n] = true
			}
		}
		ref := intent.RefOf(i.ExternalIDs)
		in.Names[i.Name] = ref.IsPool()
		if ref.Container != "" {
			in.Attached[ref.Container+"\x00"+ref.Iface] = i.Name
		}
	}
	for a := range UsedAddrs(snap.Interfaces) {
		in.Addrs[a] = true
	}
	for _, i := range snap.Interfaces {
		if m, ok := intent.HeldMAC(i.ExternalIDs); ok {
			in.MACs[m.String()] = intent.RefOf(i.ExternalIDs).String()
		}
	}
	return in, nil
}

// AutoFrom is where Auto takes addresses from.
type AutoFrom struct {
	Used   map[netip.Addr]bool // taken, by this scan's items too; Auto adds its own
	Hints  map[bool]netip.Addr // by Is4: where this scan's next probe starts; Auto moves them on
	Bridge map[bool]netip.Addr // the bridge's hints, for a family Hints lacks
}

// Auto returns the free addresses, one per family of subs that have has
// none of, from f.
func Auto(have []netip.Prefix, subs []ipam.Subnet, f AutoFrom) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range subs {
		if HasFamily(have, s.Prefix.Addr()) {
			continue
		}
		var a netip.Addr
		var err error
		is4 := s.Prefix.Addr().Is4()
		from, ok := f.Hints[is4]
		if !ok {
			from = f.Bridge[is4]
		}
		if a, err = NextFree(s, from, f.Used); err == nil {
			f.Hints[is4] = a.Next()
		}
		if err != nil {
			return nil, err
		}
		f.Used[a] = true
		out = append(out, netip.PrefixFrom(a, s.Prefix.Bits()))
	}
	return out, nil
}
