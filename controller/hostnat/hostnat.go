// Package hostnat is the host's NAT as ovsnet keeps it: ovsnet's chains
// in iptables and ip6tables brought to a plan (natplan), and published
// ports: each host port reserved in OVSDB on the interface it leads to,
// guarded host-wide, with one DNAT rule. It works on the host's OVSDB and
// its firewall (nat.Firewall), not on a network: package network finds
// the interface and its network's NAT first.
package hostnat

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// NAT is one host's NAT.
type NAT struct {
	DB *ovsdb.Client
	// Firewall is the host's iptables and ip6tables (nat.System, which
	// opens each on first use and is kept by the Host for that).
	Firewall nat.Firewall
}

// Sync makes ovsnet's iptables chains match the plan (or removes them
// all when no bridge needs them). It returns what it changed.
func (n *NAT) Sync(ctx context.Context, p natplan.Plan) ([]string, error) {
	did, err := n.sync6(p)
	if err != nil {
		return did, err
	}
	fw := n.Firewall
	t, err := fw.Chains(false)
	if err != nil {
		return did, err
	}
	if len(p.Bridges) == 0 && len(p.Keep) == 0 {
		return did, t.RemoveAll()
	}
	for _, b := range p.Bridges {
		if !b.NAT {
			continue
		}
		if err := fw.Forward(false); err != nil {
			return did, fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
		if err := fw.Localnet(b.Name); err != nil {
			return did, err
		}
	}
	d, err := t.Sync(p.Rules, p.Keep...)
	did = append(did, d...)
	if other := fw.OtherBackend(); other != "" {
		fmt.Fprintf(os.Stderr, "ovsnet: warning: %s also holds ovsnet rules: remove them (both iptables backends in use)\n", other)
	}
	return did, err
}

// sync6 is Sync's IPv6 half: IPv6 subnets are routed, not
// translated, so forwarding on and the bridges isolated from each other.
func (n *NAT) sync6(p natplan.Plan) ([]string, error) {
	fw := n.Firewall
	t, err := fw.Chains(true)
	if len(p.IPv6) == 0 {
		if err != nil {
			return nil, nil // no ip6tables, and nothing of ovsnet's in it
		}
		return nil, t.RemoveAll()
	}
	if err != nil {
		return nil, err
	}
	if err := fw.Forward(true); err != nil {
		return nil, fmt.Errorf("enable IPv6 forwarding: %w", err)
	}
	did, err := t.Sync(p.Rules6, p.Keep...)
	for i := range did {
		did[i] = "ip6tables: " + did[i]
	}
	return did, err
}

// Resync reads the topology and brings NAT to it (add-br, del-br, an
// OVN gateway made).
func (n *NAT) Resync(ctx context.Context) error {
	topo, err := n.DB.ReadAll(ctx)
	if err != nil {
		return err
	}
	_, err = n.Sync(ctx, natplan.Of(topo))
	return err
}

// PortMapping is one published port as `ovsnet port` reports it.
type PortMapping struct {
	Container string `json:"container"`
	Iface     string `json:"interface"`
	Mapping   string `json:"mapping"`
	Proto     string `json:"proto"`
	Port      int    `json:"port"`
	HostIP    string `json:"host_ip"`
	HostPort  int    `json:"host_port"`
}

// Publish publishes req for container interface ifc on bridge nb: each
// mapping that ifc does not publish already (SatisfiedBy: publishing
// twice is publishing once) gets its host port reserved in OVSDB, under
// the host-wide guard, and its DNAT rules. It returns the mappings asked
// for, as published.
func (n *NAT) Publish(ctx context.Context, nb nat.Bridge, ifc vswitchd.Interface, req []nat.Mapping) ([]PortMapping, error) {
	tr := steptime.New()
	defer tr.Done("publish detail")
	var added, have []nat.Mapping
	retry := false
	err := ovsdb.OnConflict(func() error {
		// Host-wide serialization on a small map; the reservations
		// themselves are probed, so nothing here grows with them.
		root, err := n.DB.RootOtherConfig(ctx)
		if err != nil {
			return err
		}
		// On a retry, the interface as it is now: another publish changed it.
		if retry {
			ref := intent.RefOf(ifc.ExternalIDs)
			fresh, err := n.DB.FindInterfaces(ctx, intent.OfContainer(ref.Container, ref.Iface))
			if err == nil && len(fresh) > 0 {
				ifc = fresh[0]
			}
		}
		retry = true
		cur, err := intent.Published(intent.InterfaceRow(ifc.Name, ifc.ExternalIDs), ifc.ExternalIDs)
		if err != nil {
			return err
		}
		if added, have, err = n.reserve(ctx, req, cur); err != nil || len(added) == 0 {
			return err
		}
		tr.Step("probe")
		set := intent.Publish(append(cur, added...))
		_, err = n.DB.Do(ctx, func(tx *ovsdb.Tx) {
			tx.GuardRootOtherConfig(root)
			tx.SetInterfaceExternalIDs(ifc.UUID, set)
		})
		tr.Step("commit")
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(added) > 0 {
		if err := n.addRules(ifc, added); err != nil {
			return nil, err
		}
		tr.Step("append rule")
	}
	return Mappings(ifc, append(have, added...)), nil
}

// reserve splits req into what cur (ifc's published ports) already
// publishes (have) and what is to be added, each of those with a host
// port (a free one where none is given) that nothing else holds.
func (n *NAT) reserve(ctx context.Context, req, cur []nat.Mapping) (added, have []nat.Mapping, err error) {
	for _, m := range req {
		if i := slices.IndexFunc(cur, m.SatisfiedBy); i >= 0 {
			have = append(have, cur[i])
			continue
		}
		if m.HostPort == 0 {
			if m.HostPort, err = n.freePort(ctx, m, added); err != nil {
				return nil, nil, err
			}
		}
		for _, o := range added {
			if m.Overlaps(o) {
				return nil, nil, fmt.Errorf("host port %s %s:%d is given twice", m.Proto, m.HostIP, m.HostPort)
			}
		}
		if err := n.checkHostPort(ctx, m); err != nil {
			return nil, nil, err
		}
		added = append(added, m)
	}
	return added, have, nil
}

// addRules adds the DNAT rules of ifc's new mappings.
func (n *NAT) addRules(ifc vswitchd.Interface, added []nat.Mapping) error {
	fw := n.Firewall
	t, err := fw.Chains(false)
	if err != nil {
		return err
	}
	rules, udp := natplan.IfaceRules(ifc, added)
	if err := t.Add(rules...); err != nil {
		return err
	}
	if err := fw.Forward(false); err != nil {
		return err
	}
	for _, p := range udp {
		fw.FlushUDP(p)
	}
	return nil
}

// checkHostPort refuses a host port already published (probed in OVSDB, one
// small select per key) or bound by a host process.
func (n *NAT) checkHostPort(ctx context.Context, m nat.Mapping) error {
	var qs []ovsdb.Query
	for _, k := range intent.Conflicts(m) {
		qs = append(qs, ovsdb.Query{Table: vswitchd.InterfaceTable, Columns: []string{"external_ids"},
			Where: []ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{k: "1"})}})
	}
	rs, err := n.DB.Read(ctx, qs...)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if len(r) == 0 {
			continue
		}
		ext := ovsdb.ExternalIDsOf(r[0])
		held, _ := intent.Published("", ext)
		who := intent.RefOf(ext).String()
		for _, o := range held {
			if m.Overlaps(o) && o.HostIP != m.HostIP {
				return fmt.Errorf("host port %s %s:%d overlaps %s:%d, already published (by %s)", m.Proto, m.HostIP, m.HostPort, o.HostIP, o.HostPort, who)
			}
		}
		return fmt.Errorf("host port %s %s:%d is already published (by %s)", m.Proto, m.HostIP, m.HostPort, who)
	}
	return bindable(m)
}

func Mappings(ifc vswitchd.Interface, ms []nat.Mapping) []PortMapping {
	var out []PortMapping
	for _, m := range ms {
		ref := intent.RefOf(ifc.ExternalIDs)
		out = append(out, PortMapping{Container: ref.Container, Iface: ref.Iface,
			Mapping: m.Docker(), Proto: m.Proto, Port: int(m.ContainerPort), HostIP: m.HostIP.String(), HostPort: int(m.HostPort)})
	}
	return out
}

// bindable checks that no host process holds the host port.
func bindable(m nat.Mapping) error {
	addr := net.JoinHostPort(m.HostIP.String(), strconv.Itoa(int(m.HostPort)))
	var err error
	if m.Proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			l.Close()
		}
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("host address %s is not an address of this host: publish on one of its addresses, or on 0.0.0.0", m.HostIP)
	}
	if err != nil {
		return fmt.Errorf("host port %s %s is in use by a host process: choose another (%v)", m.Proto, addr, err)
	}
	return nil
}

// freePort picks a host port from ip_local_port_range, starting at a random
// place, that is neither published nor bound.
func (n *NAT) freePort(ctx context.Context, m nat.Mapping, added []nat.Mapping) (uint16, error) {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo, &hi)
	}
	size := hi - lo + 1
	start := rand.IntN(size)
	for i := 0; i < size && i < 1000; i++ {
		c := m
		c.HostPort = uint16(lo + (start+i)%size)
		free := true
		for _, o := range added {
			free = free && !c.Overlaps(o)
		}
		if free && n.checkHostPort(ctx, c) == nil {
			return c.HostPort, nil
		}
	}
	return 0, fmt.Errorf("no free host port in %d-%d for %s", lo, hi, m.Proto)
}

// Release stops publishing mappings ms of an interface that stays, and
// records what it keeps publishing (keep).
func (n *NAT) Release(ctx context.Context, ifc vswitchd.Interface, ms []nat.Mapping, keep []nat.Mapping) error {
	if err := n.deleteRules(natplan.IfaceRules(ifc, ms)); err != nil || len(ms) == 0 {
		return err
	}
	var del []string
	for _, m := range ms {
		del = append(del, intent.Reservations(m)...)
	}
	// "Any address" keys other kept mappings still need stay.
	set := intent.Publish(keep)
	_, err := n.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifc.UUID, set, del...) })
	return err
}

// ReleaseAll drops the published ports of interfaces that are going away
// (their rows take the reservations with them).
func (n *NAT) ReleaseAll(ifs []vswitchd.Interface) error {
	var rules []nat.Rule
	var udp []uint16
	for _, ifc := range ifs {
		rs, us := natplan.IfaceRules(ifc, natplan.Published(ifc))
		rules, udp = append(rules, rs...), append(udp, us...)
	}
	return n.deleteRules(rules, udp)
}

// deleteRules deletes rules in one iptables-restore transaction, then the
// conntrack entries of the UDP host ports udp (which would keep sending
// to the old destination).
func (n *NAT) deleteRules(rules []nat.Rule, udp []uint16) error {
	if len(rules) == 0 {
		return nil
	}
	fw := n.Firewall
	t, err := fw.Chains(false)
	if err != nil {
		return err
	}
	if err := t.Delete(rules...); err != nil {
		return err
	}
	for _, p := range udp {
		fw.FlushUDP(p)
	}
	return nil
}
