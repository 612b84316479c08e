package nat

import (
	"errors"
	"os"
	"sync"
)

// Firewall is the host's side of what ovsnet asks of the packet filter:
// its chains in iptables (IPv4) and ip6tables (IPv6), and the kernel
// settings forwarding needs. System is the host's own; nattest.Recorder
// stands in for it in unit tests.
type Firewall interface {
	// Chains are the family's ovsnet chains (v6: ip6tables), opened on
	// first use (an error: the family's tool is missing).
	Chains(v6 bool) (Chains, error)
	// Forward turns the family's forwarding on.
	Forward(v6 bool) error
	// Localnet lets packets arriving on dev be routed to 127/8 (a
	// published port's DNAT from the host's loopback); a dev that does
	// not exist (yet) is not an error.
	Localnet(dev string) error
	// FlushUDP drops the conntrack entries of UDP host port port, which
	// would keep sending to an old destination.
	FlushUDP(port uint16)
	// OtherBackend names the other iptables backend when it holds
	// ovsnet's rules too ("" if not).
	OtherBackend() string
}

// Chains are one family's ovsnet chains (Tables).
type Chains interface {
	Add(rs ...Rule) error
	Delete(rs ...Rule) error
	Sync(want []Rule, keep ...string) ([]string, error)
	RemoveAll() error
}

// System is the host's iptables and ip6tables, each opened on first use:
// commands that publish nothing never pay for it.
type System struct {
	mu     sync.Mutex
	v4, v6 *Tables
}

func (s *System) Chains(v6 bool) (Chains, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, open := &s.v4, Open
	if v6 {
		t, open = &s.v6, Open6
	}
	if *t == nil {
		o, err := open()
		if err != nil {
			return nil, err
		}
		*t = o
	}
	return *t, nil
}

func (*System) Forward(v6 bool) error {
	if v6 {
		return EnableIPv6Forwarding()
	}
	return EnableForwarding()
}

func (*System) Localnet(dev string) error {
	if err := AllowLocalnet(dev); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (*System) FlushUDP(port uint16) { FlushUDP(port) }
func (*System) OtherBackend() string { return OtherBackend() }
