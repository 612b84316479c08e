package docker

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// ovsnet's IPAM driver (docker network create --ipam-driver NAME): the
// lowest free address of the network's bridge, as the CLI's --ip gives,
// so a container that stops and starts again gets its address back (if no
// other took it meanwhile), where Docker's own IPAM hands out the next one,
// and Docker's containers and the CLI's share one view of what is taken:
// the addresses the bridge's interfaces hold in OVSDB, plus those handed
// to Docker and not yet attached.

// pending are addresses handed to Docker whose endpoints are not attached
// yet, by pool: a second request must not get them too.
type pending struct {
	mu    sync.Mutex
	addrs map[string]map[netip.Addr]bool
}

func (p *pending) hold(pool string, a netip.Addr, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addrs == nil {
		p.addrs = map[string]map[netip.Addr]bool{}
	}
	if p.addrs[pool] == nil {
		p.addrs[pool] = map[netip.Addr]bool{}
	}
	if on {
		p.addrs[pool][a] = true
	} else {
		delete(p.addrs[pool], a)
	}
}

func (p *pending) of(pool string) []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []netip.Addr
	for a := range p.addrs[pool] {
		out = append(out, a)
	}
	return out
}

type poolRequest struct {
	AddressSpace, Pool, SubPool string
	Options                     map[string]string
	V6                          bool
}

// poolID names a pool by its subnet: "ovsnet:10.50.0.0/24".
const poolPrefix = "ovsnet:"

func (p *Plugin) requestPool(_ context.Context, req *poolRequest) (any, error) {
	if req.Pool == "" {
		return nil, errorf("ovsnet's IPAM needs --subnet: it has no default pools")
	}
	if req.SubPool != "" && req.SubPool != req.Pool {
		return nil, errorf("ovsnet's IPAM does not take --ip-range: it allocates from the whole --subnet")
	}
	pr, err := netip.ParsePrefix(req.Pool)
	if err != nil || pr.Addr().Is4() == req.V6 {
		return nil, errorf("bad subnet %q", req.Pool)
	}
	pr = pr.Masked()
	return map[string]any{"PoolID": poolPrefix + pr.String(), "Pool": pr.String(), "Data": map[string]string{}}, nil
}

type addressRequest struct {
	PoolID, Address string
	Options         map[string]string
}

// requestAddress gives the gateway (Docker asks for it first) or a
// container's address: the one asked for, or the lowest free one.
func (p *Plugin) requestAddress(ctx context.Context, req *addressRequest) (any, error) {
	pr, err := netip.ParsePrefix(strings.TrimPrefix(req.PoolID, poolPrefix))
	if err != nil {
		return nil, errorf("unknown pool %q", req.PoolID)
	}
	s := ipam.Subnet{Prefix: pr}
	var out netip.Prefix
	switch {
	case req.Options["RequestAddressType"] == "com.docker.network.gateway":
		a := ipam.FirstHost(pr)
		if req.Address != "" {
			if a, err = netip.ParseAddr(req.Address); err != nil {
				return nil, errorf("bad gateway %q", req.Address)
			}
		}
		return map[string]any{"Address": netip.PrefixFrom(a, pr.Bits()).String()}, nil
	case req.Address != "":
		a, err := netip.ParseAddr(req.Address)
		if err != nil || !pr.Contains(a) {
			return nil, errorf("address %q is not in %s", req.Address, pr)
		}
		used, err := p.usedIn(ctx, pr)
		if err != nil {
			return nil, err
		}
		if who, taken := used[a]; taken {
			return nil, errorf("%s is already taken by %s", a, who)
		}
		out = netip.PrefixFrom(a, pr.Bits())
	default:
		a, ok, err := p.lowestFree(ctx, pr)
		if err != nil {
			return nil, err
		}
		if out = netip.PrefixFrom(a, pr.Bits()); !ok {
			used, err := p.usedIn(ctx, pr)
			if err != nil {
				return nil, err
			}
			if out, err = ipam.Allocate(s, used); err != nil {
				return nil, errorf("%v", err)
			}
		}
	}
	p.pending.hold(req.PoolID, out.Addr(), true)
	return map[string]any{"Address": out.String()}, nil
}

// lowestFree is the lowest address of pool pr that no container holds,
// found as the attach engine finds one, in O(1) rows: the warm pool's
// lowest port's address (the pool holds the lowest free ones) when
// nothing below it is free, else the engine's probes from the bridge's
// hints. ok is false when that cannot say: pr is not one bridge's subnet,
// or the address is one handed to Docker and not attached yet (usedIn
// then reads the bridge).
func (p *Plugin) lowestFree(ctx context.Context, pr netip.Prefix) (netip.Addr, bool, error) {
	bs, err := ovsdb.Select[vswitchd.Bridge](ctx, p.Host.DB, nil, "name", "external_ids")
	if err != nil {
		return netip.Addr{}, false, err
	}
	var bi intent.Bridge
	var sub ipam.Subnet
	n := 0
	for _, b := range bs {
		d := intent.DecodeBridge(b.Name, b.ExternalIDs)
		for _, s := range d.Subnets {
			if s.Prefix == pr {
				bi, sub, n = d, s, n+1
			}
		}
	}
	if n != 1 {
		return netip.Addr{}, false, nil
	}
	pending := p.pending.of(poolPrefix + pr.String())
	free := func(a netip.Addr) bool { return a.IsValid() && pr.Contains(a) && !slices.Contains(pending, a) }
	pooled, err := ovsdb.Select[vswitchd.Interface](ctx, p.Host.DB, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.OfBridgePool(bi.Name))}, "external_ids")
	if err != nil {
		return netip.Addr{}, false, err
	}
	pooled = slices.DeleteFunc(pooled, func(i vswitchd.Interface) bool {
		r := intent.RefOf(i.ExternalIDs)
		return r.State != intent.StateReady || !r.IsPool() || !free(intent.LowestHeld(i.ExternalIDs))
	})
	if len(pooled) > 0 {
		low := slices.MinFunc(pooled, func(x, y vswitchd.Interface) int {
			return intent.LowestHeld(x.ExternalIDs).Compare(intent.LowestHeld(y.ExternalIDs))
		})
		a := intent.LowestHeld(low.ExternalIDs)
		_, ok, err := alloc.NoneFreeBelow(ctx, p.Host.DB, bi, []ipam.Subnet{sub}, []netip.Prefix{netip.PrefixFrom(a, pr.Bits())})
		if err != nil || ok {
			return a, ok, err
		}
	}
	cl, err := alloc.Probe(ctx, p.Host.DB, bi, []ipam.Subnet{sub}, nil, true)
	if err != nil || len(cl.Addrs) != 1 || !free(cl.Addrs[0].Addr()) {
		return netip.Addr{}, false, err
	}
	return cl.Addrs[0].Addr(), true, nil
}

// usedIn is what is taken in pool pr: the addresses of every ovsnet
// bridge with that subnet (its gateway too; a warm pool's ports hold
// theirs for the next container, so not against Docker's), and those
// handed out and not attached yet.
func (p *Plugin) usedIn(ctx context.Context, pr netip.Prefix) (map[netip.Addr]string, error) {
	used := map[netip.Addr]string{}
	bs, err := ovsdb.Select[vswitchd.Bridge](ctx, p.Host.DB, nil, "name", "external_ids")
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
		for _, s := range bi.Subnets {
			if s.Prefix != pr {
				continue
			}
			used[s.Gateway] = "the gateway of " + b.Name
			snap, err := p.Host.DB.ReadBridge(ctx, b.Name, intent.OfBridge(b.Name))
			if err != nil {
				return nil, err
			}
			if snap == nil {
				continue // deleted since
			}
			ifs := slices.DeleteFunc(snap.Interfaces, func(i vswitchd.Interface) bool { return intent.RefOf(i.ExternalIDs).Pooled })
			for a, who := range alloc.UsedAddrs(ifs) {
				used[a] = who
			}
		}
	}
	for _, a := range p.pending.of(poolPrefix + pr.String()) {
		if _, ok := used[a]; !ok {
			used[a] = "a container Docker is starting"
		}
	}
	return used, nil
}

func (p *Plugin) releaseAddress(_ context.Context, req *addressRequest) (any, error) {
	if a, err := netip.ParseAddr(req.Address); err == nil {
		p.pending.hold(req.PoolID, a, false)
	}
	return struct{}{}, nil
}
