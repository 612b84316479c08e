// Package nattest stands in for the host's firewall (nat.System) in unit
// tests: a Recorder keeps each family's rules as the calls left them, and
// what else was asked of the kernel, without touching the host.
package nattest

import (
	"slices"
	"sync"

	"github.com/ovsnet/ovsnet/nat"
)

// Recorder is a nat.Firewall. Its zero value is ready.
type Recorder struct {
	mu      sync.Mutex
	rules   [2][]string // by family (0: IPv4, 1: IPv6), as Rule.String
	forward [2]bool
	flushed []uint16
}

var _ nat.Firewall = (*Recorder)(nil)

func fam(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// Rules are the family's rules, as nat.Rule.String writes them, in order.
func (r *Recorder) Rules(v6 bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rules[fam(v6)])
}

// Forwarding says whether the family's forwarding was turned on.
func (r *Recorder) Forwarding(v6 bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forward[fam(v6)]
}

// Flushed are the UDP ports whose conntrack entries were dropped.
func (r *Recorder) Flushed() []uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.flushed)
}

func (r *Recorder) Chains(v6 bool) (nat.Chains, error) { return chains{r, fam(v6)}, nil }

func (r *Recorder) Forward(v6 bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forward[fam(v6)] = true
	return nil
}

func (r *Recorder) Localnet(string) error { return nil }

func (r *Recorder) FlushUDP(port uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushed = append(r.flushed, port)
}

func (r *Recorder) OtherBackend() string { return "" }

// chains are one family's rules in a Recorder.
type chains struct {
	r *Recorder
	f int
}

func (c chains) Add(rs ...nat.Rule) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	for _, x := range rs {
		c.r.rules[c.f] = append(c.r.rules[c.f], x.String())
	}
	return nil
}

func (c chains) Delete(rs ...nat.Rule) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	for _, x := range rs {
		if i := slices.Index(c.r.rules[c.f], x.String()); i >= 0 {
			c.r.rules[c.f] = slices.Delete(c.r.rules[c.f], i, i+1)
		}
	}
	return nil
}

// Sync makes the rules exactly want (keep's are not modelled) and says
// how many it added and removed, as "added N" and "removed N".
func (c chains) Sync(want []nat.Rule, keep ...string) ([]string, error) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	var next []string
	for _, x := range want {
		next = append(next, x.String())
	}
	var did []string
	for _, s := range next {
		if !slices.Contains(c.r.rules[c.f], s) {
			did = append(did, "added "+s)
		}
	}
	for _, s := range c.r.rules[c.f] {
		if !slices.Contains(next, s) {
			did = append(did, "removed "+s)
		}
	}
	c.r.rules[c.f] = next
	return did, nil
}

func (c chains) RemoveAll() error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.r.rules[c.f] = nil
	return nil
}
