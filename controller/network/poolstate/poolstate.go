// Package poolstate is what one controller process knows of its warm pool
// (the ports made ahead of the attaches that take them; the engine takes
// them, package pool keeps them): how many of which types it keeps, the
// rows being taken here, one claim at a time per bridge, the subnets found
// full, and which bridges are in use. What the pool holds is in OVSDB.
package poolstate

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ipam"
)

// Idle is how long after its last attach a bridge with no container keeps
// its pool: then its ports are removed, and an attach there fills it again.
const Idle = 10 * time.Minute

// Pool is the controller's warm pool: what it keeps, and which rows this
// process is taking.
type Pool struct {
	Size  int      // ready ports kept per bridge and type
	Types []string // the port types kept; none: each bridge's default type
	// RuntimeNetns is where dockerd takes its endpoints' links from when
	// that is not the host's namespace: a Docker network's pool veths
	// wait there, and a take only renames one ("": in the host).
	RuntimeNetns string
	mu           sync.Mutex
	busy         map[string]bool // rows being taken here (by UUID)
	// claims: per bridge, held while this process claims one of its
	// pool's ports.
	claims map[string]*sync.Mutex
	wake   chan struct{}
	// full: bridges whose subnet had no address left for a fill, by the
	// bridge generation then: no fill is tried again until it changes.
	full map[string]string
	used map[string]time.Time // each bridge's last attach here
}

// New keeps size ports of each of types ready on every ovsnet bridge with
// a subnet that is in use (Wanted).
func New(size int, types []string) *Pool {
	return &Pool{Size: size, Types: types, busy: map[string]bool{}, claims: map[string]*sync.Mutex{},
		wake: make(chan struct{}, 1), full: map[string]string{}, used: map[string]time.Time{}}
}

// Woken is signalled after a take, or an attach that may want a pool
// filled: time to converge it.
func (p *Pool) Woken() <-chan struct{} { return p.wake }

// Wake signals Woken.
func (p *Pool) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Reserve marks row uuid as being taken by this process; false if it
// already is.
func (p *Pool) Reserve(uuid string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[uuid] {
		return false
	}
	p.busy[uuid] = true
	return true
}

// Release ends Reserve.
func (p *Pool) Release(uuid string) {
	p.mu.Lock()
	delete(p.busy, uuid)
	p.mu.Unlock()
}

// Claiming takes bridge's claim lock of this process; the returned
// function releases it.
func (p *Pool) Claiming(bridge string) func() {
	p.mu.Lock()
	m := p.claims[bridge]
	if m == nil {
		m = &sync.Mutex{}
		p.claims[bridge] = m
	}
	p.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// TypesFor is the port types kept on a bridge of datapath dp; by
// default its default type, or veth where it carries a Docker network
// (whose endpoints are veths, at the addresses Docker's IPAM picks, which
// are the pool's: lowest first).
func (p *Pool) TypesFor(dp string, docker bool) []string {
	if len(p.Types) == 0 && docker {
		return []string{"veth"}
	}
	if len(p.Types) == 0 {
		return []string{datapath.DefaultType(dp)}
	}
	var ts []string
	for _, t := range p.Types {
		if datapath.CheckType(dp, t) == nil {
			ts = append(ts, t)
		}
	}
	return ts
}

// WaitsIn is where the container end of a pool's port of type typ waits:
// a Docker network's veths' in RuntimeNetns, the rest in the host ("").
func (p *Pool) WaitsIn(docker bool, typ string) string {
	if docker && typ == "veth" {
		return p.RuntimeNetns
	}
	return ""
}

// Fits says whether a port with intent pi, on bridge bi of datapath dp,
// is what the pool makes there (so that a detach may return it to the
// pool): a type it keeps, with addresses, the MAC derived from them, the
// bridge's MTU, flood bound and gateways, and no links of its container.
func (p *Pool) Fits(bi intent.Bridge, dp string, pi intent.Port) bool {
	if p.Size == 0 || !slices.Contains(p.TypesFor(dp, bi.Docker.ID != ""), pi.Type) || bi.SubnetsErr != nil || len(pi.Addrs) == 0 ||
		pi.MTU != bi.MTU || pi.FloodPPS != bi.FloodPPS || pi.MAC.String() != ipam.MACFor(pi.Addrs).String() ||
		!slices.Equal(pi.Gateways, ipam.GatewaysFor(pi.Addrs, bi.Subnets, netip.Addr{})) {
		return false
	}
	return !slices.ContainsFunc(bi.Links, func(l intent.Link) bool { return l.Src == pi.Container || l.Dst == pi.Container })
}

// Full says whether bridge's subnet had no address left for a fill at
// generation gen: no fill is tried again until the bridge changes.
func (p *Pool) Full(bridge, gen string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.full[bridge]
	return ok && at == gen
}

// SetFull records that a fill of bridge at generation gen found no
// address left.
func (p *Pool) SetFull(bridge, gen string) {
	p.mu.Lock()
	p.full[bridge] = gen
	p.mu.Unlock()
}

// Attached records an attach on bridge, and wakes the pool if the bridge
// was idle (its pool is to be filled).
func (p *Pool) Attached(bridge string, now time.Time) {
	p.mu.Lock()
	last, seen := p.used[bridge]
	p.used[bridge] = now
	p.mu.Unlock()
	if !seen || now.Sub(last) >= Idle {
		p.Wake()
	}
}

// Wanted says whether bridge keeps a pool: it holds containers, or had an
// attach here within Idle. An empty bridge nobody attaches to keeps none
// (a host with many bridges would hold Size ports on each).
func (p *Pool) Wanted(bridge string, containers bool, now time.Time) bool {
	if containers {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last, ok := p.used[bridge]
	return ok && now.Sub(last) < Idle
}
