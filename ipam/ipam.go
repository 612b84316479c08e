// Package ipam is ovsnet's address arithmetic: subnets, gateways, validation
// of requested addresses, lowest-free allocation and the MACs derived from
// addresses. It is pure logic; the set of addresses in use comes from
// OVSDB and reservations are made there.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Subnet is one family's network of a bridge and its gateway.
type Subnet struct {
	Prefix  netip.Prefix // masked network, e.g. 172.16.1.0/24
	Gateway netip.Addr
	// Range is this host's share of a network that spans hosts (--ip-range):
	// addresses are allocated from it only. Not valid: the whole Prefix.
	Range netip.Prefix
}

// pool is where s allocates: its range, or the whole prefix.
func (s Subnet) pool() netip.Prefix {
	if s.Range.IsValid() {
		return s.Range
	}
	return s.Prefix
}

// SetRanges applies --ip-range values to subs: each must lie inside the
// subnet of its family and hold a gateway and a container. The gateway of a
// subnet with a range must be in the range (each host has its own on the
// shared segment); one left at its default becomes the range's first host.
func SetRanges(subs []Subnet, ranges []string) error {
	for _, r := range ranges {
		p, err := netip.ParsePrefix(strings.TrimSpace(r))
		if err != nil {
			return fmt.Errorf("malformed range %q: want CIDR such as 10.97.1.0/24", r)
		}
		p = p.Masked()
		i := -1
		for j := range subs {
			if subs[j].Prefix.Addr().Is4() == p.Addr().Is4() {
				i = j
			}
		}
		switch {
		case i < 0:
			return fmt.Errorf("range %s has no %s subnet: add --subnet", p, Family(p.Addr()))
		case subs[i].Range.IsValid():
			return fmt.Errorf("two %s ranges (%s, %s): a host has one per family", Family(p.Addr()), subs[i].Range, p)
		case p.Bits() < subs[i].Prefix.Bits() || !subs[i].Prefix.Contains(p.Addr()):
			return fmt.Errorf("range %s is outside the subnet %s", p, subs[i].Prefix)
		case hostBits(p) < 2:
			return fmt.Errorf("range %s is too small: it must hold a gateway and at least one container", p)
		}
		s := &subs[i]
		s.Range = p
		if !p.Contains(s.Gateway) {
			if s.Gateway != FirstHost(s.Prefix) {
				return fmt.Errorf("gateway %s is outside this host's range %s: each host's gateway is in its own range", s.Gateway, p)
			}
			s.Gateway = FirstHost(p)
		}
	}
	return nil
}

// Family names the address family of a for messages and keys.
func Family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// ParseSubnets parses --subnet and --gateway values: at most one subnet per
// family; each gateway must lie in the subnet of its family; a subnet without
// a gateway gets its first host address.
func ParseSubnets(subnets, gateways []string) ([]Subnet, error) {
	var out []Subnet
	for _, s := range subnets {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("malformed subnet %q: want CIDR such as 172.16.1.0/24 or fd00:1::/64", s)
		}
		p = p.Masked()
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("subnet %q: use plain IPv4 notation", s)
		}
		if hostBits(p) < 2 {
			return nil, fmt.Errorf("subnet %s is too small: it must hold a gateway and at least one container", p)
		}
		for _, o := range out {
			if o.Prefix.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("two %s subnets (%s, %s): a bridge has at most one per family", Family(p.Addr()), o.Prefix, p)
			}
		}
		out = append(out, Subnet{Prefix: p, Gateway: FirstHost(p)})
	}
	// IPv4 first, so that the same subnets given in any order store alike.
	if len(out) == 2 && out[1].Prefix.Addr().Is4() {
		out[0], out[1] = out[1], out[0]
	}
	seen := map[bool]netip.Addr{}
	for _, g := range gateways {
		a, err := netip.ParseAddr(strings.TrimSpace(g))
		if err != nil {
			return nil, fmt.Errorf("malformed gateway %q: want an address such as 172.16.1.1", g)
		}
		if o, ok := seen[a.Is4()]; ok {
			return nil, fmt.Errorf("two %s gateways (%s, %s): give at most one per family", Family(a), o, a)
		}
		seen[a.Is4()] = a
		i := -1
		for j := range out {
			if out[j].Prefix.Addr().Is4() == a.Is4() {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("gateway %s has no %s subnet: add --subnet", a, Family(a))
		}
		if err := CheckHost(out[i].Prefix, a); err != nil {
			return nil, fmt.Errorf("gateway %s: %w", a, err)
		}
		out[i].Gateway = a
	}
	return out, nil
}

func hostBits(p netip.Prefix) int { return p.Addr().BitLen() - p.Bits() }

// FirstHost is the first usable host address of p (network + 1).
func FirstHost(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// broadcast returns the last address of p.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// CheckHost says why a cannot be a host address in p, or nil.
func CheckHost(p netip.Prefix, a netip.Addr) error {
	switch {
	case !p.Contains(a):
		return fmt.Errorf("%s is outside the subnet %s", a, p)
	case a == p.Masked().Addr():
		return fmt.Errorf("%s is the network address of %s", a, p)
	case a.Is4() && a == broadcast(p):
		return fmt.Errorf("%s is the broadcast address of %s", a, p)
	}
	return nil
}

// ParseRequest parses a requested ADDR/PLEN (ovs-docker's --ipaddress) or a
// bare ADDR (the subnet's length is used).
func ParseRequest(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil && !p.Addr().Is4In6() {
		return p, nil
	}
	if a, err := netip.ParseAddr(s); err == nil && !a.Is4In6() {
		return netip.PrefixFrom(a, -1), nil // length filled in from the subnet
	}
	return netip.Prefix{}, fmt.Errorf("malformed address %q: want ADDR/PLEN such as 172.16.1.2/24", s)
}

// Validate checks a requested address against the bridge's subnet of its
// family (if any) and the addresses already in use, and returns it with the
// subnet's prefix length when none was given.
func Validate(req netip.Prefix, subnets []Subnet, used map[netip.Addr]string) (netip.Prefix, error) {
	a := req.Addr()
	if a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() {
		return netip.Prefix{}, fmt.Errorf("%s is not a unicast host address", a)
	}
	if len(subnets) > 0 && !hasFamily(subnets, a) {
		return netip.Prefix{}, fmt.Errorf("%s: the bridge has no %s subnet (its containers could not reach or be reached from it); give an address of its subnet %s, or recreate the bridge with an %s --subnet", a, Family(a), subnets[0].Prefix, Family(a))
	}
	for _, s := range subnets {
		if s.Prefix.Addr().Is4() != a.Is4() {
			continue
		}
		bits := req.Bits()
		if bits < 0 {
			bits = s.Prefix.Bits()
		}
		if bits != s.Prefix.Bits() {
			return netip.Prefix{}, fmt.Errorf("%s/%d: the bridge's subnet is %s (prefix length %d)", a, bits, s.Prefix, s.Prefix.Bits())
		}
		if err := CheckHost(s.Prefix, a); err != nil {
			return netip.Prefix{}, err
		}
		if a == s.Gateway {
			return netip.Prefix{}, fmt.Errorf("%s is the bridge's gateway", a)
		}
		if s.Range.IsValid() && (!s.Range.Contains(a) || a == s.Range.Masked().Addr() || a == s.last()) {
			return netip.Prefix{}, fmt.Errorf("%s is outside this host's range %s of %s: other hosts allocate the rest", a, s.Range, s.Prefix)
		}
		req = netip.PrefixFrom(a, bits)
	}
	if req.Bits() < 0 {
		return netip.Prefix{}, fmt.Errorf("%s needs a prefix length (ADDR/PLEN): the bridge has no %s subnet", a, Family(a))
	}
	if who, ok := used[a]; ok {
		return netip.Prefix{}, fmt.Errorf("%s is already taken by %s", a, who)
	}
	return req, nil
}

// ErrExhausted is returned when a subnet has no free host address left.
var ErrExhausted = errors.New("subnet exhausted")

// Allocate returns the lowest free host address of s, skipping the gateway
// and everything in used. Cost is O(len(used)).
func Allocate(s Subnet, used map[netip.Addr]string) (netip.Prefix, error) {
	last := s.last()
	for a := s.firstHost(); s.pool().Contains(a); a = a.Next() {
		if a.Is4() && a == last {
			break
		}
		if _, taken := used[a]; taken || a == s.Gateway {
			continue
		}
		return netip.PrefixFrom(a, s.Prefix.Bits()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%w: no free address left in %s", ErrExhausted, s.pool())
}

// firstHost is the first host address of s's pool: a range, like a subnet,
// leaves out its first and last addresses (x.x.x.0 and x.x.x.255 of a /24
// look like network and broadcast addresses to people, if not to the
// kernel).
func (s Subnet) firstHost() netip.Addr { return FirstHost(s.pool()) }

// last is the last address s allocates.
func (s Subnet) last() netip.Addr { return broadcast(s.pool()) }

// Candidates returns up to n host addresses of s in ascending order,
// starting at from (or the first host address if from is lower or invalid),
// skipping the gateway and skip. An empty result means the subnet has no
// address left at or above from.
func Candidates(s Subnet, from netip.Addr, n int, skip map[netip.Addr]bool) []netip.Addr {
	a := s.firstHost()
	if from.IsValid() && from.Is4() == a.Is4() && s.pool().Contains(from) && a.Less(from) {
		a = from
	}
	last := s.last()
	var out []netip.Addr
	for ; len(out) < n && s.pool().Contains(a); a = a.Next() {
		if a.Is4() && a == last {
			break
		}
		if a == s.Gateway || skip[a] {
			continue
		}
		out = append(out, a)
	}
	return out
}

// HostCount is how many addresses s hands out (its pool's hosts less
// the gateway), capped at 1<<30 for large IPv6 subnets.
func HostCount(s Subnet) int {
	hb := hostBits(s.pool())
	if hb >= 30 {
		return 1 << 30
	}
	n := 1<<hb - 2 // not the first and last addresses
	if s.pool().Contains(s.Gateway) {
		n--
	}
	return max(n, 0)
}

func hasFamily(subnets []Subnet, a netip.Addr) bool {
	for _, s := range subnets {
		if s.Prefix.Addr().Is4() == a.Is4() {
			return true
		}
	}
	return false
}

// unusable are ranges no container network may take, with the reason.
var unusable = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (0.0.0.0/8)`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved and broadcast (240.0.0.0/4)"},
	{netip.MustParsePrefix("::/128"), "unspecified (::)"},
	{netip.MustParsePrefix("::1/128"), "loopback (::1)"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped (::ffff:0:0/96)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (ff00::/8)"},
}

// CheckUsable refuses a subnet no container network can use: every
// address (it would masquerade everything), loopback, link-local,
// multicast, reserved.
func CheckUsable(p netip.Prefix) error {
	if p.Bits() == 0 {
		return fmt.Errorf("subnet %s takes every address: give a private range such as 10.88.0.0/24 or fd00:88::/64", p)
	}
	for _, u := range unusable {
		if u.p.Addr().Is4() == p.Addr().Is4() && u.p.Overlaps(p) {
			return fmt.Errorf("subnet %s is %s: give a private range such as 10.88.0.0/24 or fd00:88::/64", p, u.why)
		}
	}
	return nil
}

// private are the IPv4 ranges no host on the internet has: RFC 1918's,
// the shared (carrier-grade NAT) range, the benchmarking and
// documentation ranges.
var private = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
}

// PublicIPv4 says whether p is IPv4 address space of the internet's (not
// private, shared or documentation): containers there, masqueraded,
// shadow the real hosts with their addresses.
func PublicIPv4(p netip.Prefix) bool {
	if !p.Addr().Is4() {
		return false
	}
	for _, q := range private {
		if q.Contains(p.Addr()) && q.Bits() <= p.Bits() {
			return false
		}
	}
	return true
}

// GatewaysFor picks the default gateway of each family the interface has an
// address in: explicit if given (--gateway), else the bridge's gateway when the address
// is in the bridge's subnet.
func GatewaysFor(addrs []netip.Prefix, subnets []Subnet, explicit netip.Addr) []netip.Addr {
	var gws []netip.Addr
	for _, a := range addrs {
		if explicit.IsValid() && explicit.Is4() == a.Addr().Is4() {
			gws = append(gws, explicit)
			continue
		}
		for _, s := range subnets {
			if s.Prefix.Contains(a.Addr()) {
				gws = append(gws, s.Gateway)
			}
		}
	}
	return gws
}
