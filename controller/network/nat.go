package network

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// firewall is the host's firewall: Host.Firewall, or the system's
// iptables and ip6tables when none was given.
func (h *Host) firewall() nat.Firewall {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Firewall == nil {
		h.Firewall = &nat.System{}
	}
	return h.Firewall
}

// SyncNAT makes ovsnet's iptables chains match the plan (or removes them
// all when no bridge needs them). It returns what it changed.
func (h *Host) SyncNAT(ctx context.Context, p natplan.Plan) ([]string, error) {
	did, err := h.syncNAT6(p)
	if err != nil {
		return did, err
	}
	fw := h.firewall()
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

// syncNAT6 is SyncNAT's IPv6 half: IPv6 subnets are routed, not
// translated, so forwarding on and the bridges isolated from each other.
func (h *Host) syncNAT6(p natplan.Plan) ([]string, error) {
	fw := h.firewall()
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

// ResyncNAT reads the topology and brings NAT to it (add-br, del-br, an
// OVN gateway made).
func (h *Host) ResyncNAT(ctx context.Context) error {
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return err
	}
	_, err = h.SyncNAT(ctx, natplan.Of(topo))
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

// publishTarget is the container interface on bridge that publishing uses:
// the first with an IPv4 address.
func (h *Host) publishTarget(ctx context.Context, bridge, container string) (*vswitchd.Interface, *vswitchd.Bridge, error) {
	br, ifs, _, err := h.containerPorts(ctx, bridge, container, "")
	if err != nil {
		return nil, nil, err
	}
	if len(ifs) == 0 {
		// A runtime's endpoint, by its container's name.
		if ifs, err = h.DB.FindInterfaces(ctx, intent.NamedOn(bridge, container)); err != nil {
			return nil, nil, err
		}
	}
	for i := range ifs {
		if _, ok := natplan.IfaceIPv4(ifs[i]); ok {
			return &ifs[i], br, nil
		}
	}
	return nil, nil, fmt.Errorf("container %s has no IPv4 interface on %s to publish", container, bridge)
}

// Publish adds port mappings for CONTAINER on BRIDGE. A host port already
// published (same protocol and port on the same or every address) or bound
// by a host process is refused; no HOST_PORT picks a free one.
func (h *Host) Publish(ctx context.Context, bridge, container string, specs []string) ([]PortMapping, error) {
	tr := steptime.New()
	defer tr.Done("publish")
	var req []nat.Mapping
	for _, s := range specs {
		m, err := nat.ParseMapping(s)
		if err != nil {
			return nil, err
		}
		req = append(req, m)
	}
	n, err := h.Network(ctx, bridge)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	ifc, _, err := h.publishTarget(ctx, n.Bridge(), container)
	if err != nil {
		return nil, err
	}
	tr.Step("find container")
	nb, ok, err := n.NATBridge(ctx) // an OVN network: this chassis' gateway
	if err != nil {
		return nil, err
	}
	if !ok || !nb.NAT {
		return nil, fmt.Errorf("bridge %s is not in NAT mode (--nat=true with an IPv4 subnet): its containers are reachable directly, nothing to publish", bridge)
	}
	ms, err := h.publish(ctx, nb, *ifc, req)
	tr.Step("reserve and add rules")
	return ms, err
}

func (h *Host) publish(ctx context.Context, nb nat.Bridge, ifc vswitchd.Interface, req []nat.Mapping) ([]PortMapping, error) {
	tr := steptime.New()
	defer tr.Done("publish detail")
	var added []nat.Mapping
	retry := false
	err := ovsdb.OnConflict(func() error {
		// Host-wide serialization on a small map; the reservations
		// themselves are probed, so nothing here grows with them.
		root, err := h.DB.RootOtherConfig(ctx)
		if err != nil {
			return err
		}
		added = added[:0]
		for _, m := range req {
			if m.HostPort == 0 {
				if m.HostPort, err = h.freePort(ctx, m, added); err != nil {
					return err
				}
			}
			for _, o := range added {
				if m.Overlaps(o) {
					return fmt.Errorf("host port %s %s:%d is given twice", m.Proto, m.HostIP, m.HostPort)
				}
			}
			if err := h.checkHostPort(ctx, m); err != nil {
				return err
			}
			added = append(added, m)
		}
		tr.Step("probe")
		// On a retry, the interface as it is now: another publish changed it.
		if retry {
			ref := intent.RefOf(ifc.ExternalIDs)
			fresh, err := h.DB.FindInterfaces(ctx, intent.OfContainer(ref.Container, ref.Iface))
			if err == nil && len(fresh) > 0 {
				ifc = fresh[0]
			}
		}
		retry = true
		cur, err := intent.Published(IfaceRow(ifc), ifc.ExternalIDs)
		if err != nil {
			return err
		}
		set := intent.Publish(append(cur, added...))
		_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) {
			tx.GuardRootOtherConfig(root)
			tx.SetInterfaceExternalIDs(ifc.UUID, set)
		})
		tr.Step("commit")
		return err
	})
	if err != nil {
		return nil, err
	}
	fw := h.firewall()
	t, err := fw.Chains(false)
	if err != nil {
		return nil, err
	}
	rules, udp := natplan.IfaceRules(ifc, added)
	if err := t.Add(rules...); err != nil {
		return nil, err
	}
	tr.Step("append rule")
	if err := fw.Forward(false); err != nil {
		return nil, err
	}
	for _, p := range udp {
		fw.FlushUDP(p)
	}
	return portMappings(ifc, added), nil
}

// checkHostPort refuses a host port already published (probed in OVSDB, one
// small select per key) or bound by a host process.
func (h *Host) checkHostPort(ctx context.Context, m nat.Mapping) error {
	var qs []ovsdb.Query
	for _, k := range intent.Conflicts(m) {
		qs = append(qs, ovsdb.Query{Table: vswitchd.InterfaceTable, Columns: []string{"external_ids"},
			Where: []ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{k: "1"})}})
	}
	rs, err := h.DB.Read(ctx, qs...)
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

func portMappings(ifc vswitchd.Interface, ms []nat.Mapping) []PortMapping {
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
func (h *Host) freePort(ctx context.Context, m nat.Mapping, added []nat.Mapping) (uint16, error) {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo, &hi)
	}
	n := hi - lo + 1
	start := rand.IntN(n)
	for i := 0; i < n && i < 1000; i++ {
		c := m
		c.HostPort = uint16(lo + (start+i)%n)
		free := true
		for _, o := range added {
			free = free && !c.Overlaps(o)
		}
		if free && h.checkHostPort(ctx, c) == nil {
			return c.HostPort, nil
		}
	}
	return 0, fmt.Errorf("no free host port in %d-%d for %s", lo, hi, m.Proto)
}

// publishedBy is CONTAINER's interface on BRIDGE that publishes, and what
// it publishes.
func (h *Host) publishedBy(ctx context.Context, bridge, container string) (*vswitchd.Interface, []nat.Mapping, error) {
	ifc, _, err := h.publishTarget(ctx, bridge, container)
	if err != nil {
		return nil, nil, err
	}
	ms, err := intent.Published(IfaceRow(*ifc), ifc.ExternalIDs)
	return ifc, ms, err
}

// Unpublish removes port mappings of CONTAINER on BRIDGE (matched by
// container port and protocol, and host port when given).
func (h *Host) Unpublish(ctx context.Context, bridge, container string, specs []string) ([]PortMapping, error) {
	ifc, cur, err := h.publishedBy(ctx, bridge, container)
	if err != nil {
		return nil, err
	}
	var gone, keep []nat.Mapping
	for _, m := range cur {
		hit := false
		for _, s := range specs {
			r, err := nat.ParseMapping(s)
			if err != nil {
				return nil, err
			}
			hit = hit || (r.ContainerPort == m.ContainerPort && r.Proto == m.Proto && (r.HostPort == 0 || r.HostPort == m.HostPort) &&
				(r.HostIP.IsUnspecified() || r.HostIP == m.HostIP))
		}
		if hit {
			gone = append(gone, m)
		} else {
			keep = append(keep, m)
		}
	}
	if len(gone) == 0 {
		return nil, fmt.Errorf("container %s publishes none of %s on %s (see ovsnet port %s %s)", container, strings.Join(specs, " "), bridge, bridge, container)
	}
	if err := h.release(ctx, *ifc, gone, keep); err != nil {
		return nil, err
	}
	return portMappings(*ifc, gone), nil
}

// releaseAll drops the published ports of interfaces that are going away
// (their rows take the reservations with them).
func (h *Host) releaseAll(ifs []vswitchd.Interface) error {
	var rules []nat.Rule
	var udp []uint16
	for _, ifc := range ifs {
		rs, us := natplan.IfaceRules(ifc, natplan.Published(ifc))
		rules, udp = append(rules, rs...), append(udp, us...)
	}
	return h.deleteRules(rules, udp)
}

// release stops publishing mappings ms of an interface that stays, and
// records what it keeps publishing (keep).
func (h *Host) release(ctx context.Context, ifc vswitchd.Interface, ms []nat.Mapping, keep []nat.Mapping) error {
	if err := h.deleteRules(natplan.IfaceRules(ifc, ms)); err != nil || len(ms) == 0 {
		return err
	}
	var del []string
	for _, m := range ms {
		del = append(del, intent.Reservations(m)...)
	}
	// "Any address" keys other kept mappings still need stay.
	set := intent.Publish(keep)
	_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifc.UUID, set, del...) })
	return err
}

// deleteRules deletes rules in one iptables-restore transaction, then the
// conntrack entries of the UDP host ports udp (which would keep sending
// to the old destination).
func (h *Host) deleteRules(rules []nat.Rule, udp []uint16) error {
	if len(rules) == 0 {
		return nil
	}
	fw := h.firewall()
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

// Ports lists CONTAINER's published ports on BRIDGE (only those of one
// container port when filter is PORT[/proto]).
func (h *Host) Ports(ctx context.Context, bridge, container, filter string) ([]PortMapping, error) {
	ifc, ms, err := h.publishedBy(ctx, bridge, container)
	if err != nil {
		return nil, err
	}
	if filter != "" {
		f, err := nat.ParseMapping(filter)
		if err != nil {
			return nil, err
		}
		var keep []nat.Mapping
		for _, m := range ms {
			if m.ContainerPort == f.ContainerPort && (m.Proto == f.Proto) {
				keep = append(keep, m)
			}
		}
		if len(keep) == 0 {
			return nil, fmt.Errorf("no public port '%s' published for %s", filter, container)
		}
		ms = keep
	}
	return portMappings(*ifc, ms), nil
}
