// Package nat is ovsnet's host NAT: masquerade for container egress, DNAT
// for published ports (with hairpin and host-only publishing), all in
// ovsnet's own iptables chains, computed from OVSDB intent and applied with
// go-iptables without listing or rewriting other rules.
package nat

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovsnet/ovsnet/attach"
)

// Chains ovsnet owns. OVSNET-USER is created but never flushed: it is the
// administrator's place to restrict published ports.
const (
	ChainDNAT        = "OVSNET-DNAT"        // nat: published ports
	ChainPostrouting = "OVSNET-POSTROUTING" // nat: masquerade, hairpin
	ChainForward     = "OVSNET-FORWARD"     // filter: what may cross the host
	ChainIsolate     = "OVSNET-ISOLATE"     // filter: no bridge reaches another
	ChainTunnel      = "OVSNET-TUNNEL"      // filter: tunnels take their remotes' packets only
	ChainUser        = "OVSNET-USER"        // filter: the administrator's
)

// Mapping is one published port.
type Mapping struct {
	HostIP        netip.Addr // 0.0.0.0: every host address
	HostPort      uint16     // 0: pick a free one
	ContainerPort uint16
	Proto         string // tcp or udp
}

// ParseMapping parses [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], as
// docker run -p does.
func ParseMapping(s string) (Mapping, error) {
	m := Mapping{HostIP: netip.IPv4Unspecified(), Proto: "tcp"}
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return m, fmt.Errorf("bad mapping %q: protocol must be tcp or udp", s)
		}
		m.Proto = proto
	}
	parts := strings.Split(spec, ":")
	port := func(p string, zeroOK bool) (uint16, error) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
			return 0, fmt.Errorf("bad mapping %q: %q is not a port in 1..65535", s, p)
		}
		return uint16(n), nil
	}
	var err error
	switch len(parts) {
	case 1:
		m.ContainerPort, err = port(parts[0], false)
	case 2:
		if m.HostPort, err = port(parts[0], false); err == nil {
			m.ContainerPort, err = port(parts[1], false)
		}
	case 3:
		if m.HostIP, err = netip.ParseAddr(parts[0]); err != nil || !m.HostIP.Is4() {
			return m, fmt.Errorf("bad mapping %q: %q is not an IPv4 host address", s, parts[0])
		}
		if parts[1] != "" {
			if m.HostPort, err = port(parts[1], false); err != nil {
				return m, err
			}
		}
		m.ContainerPort, err = port(parts[2], false)
	default:
		return m, fmt.Errorf("bad mapping %q: want [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]", s)
	}
	return m, err
}

// String is the stored form, HOST_IP:HOST_PORT:CONTAINER_PORT/PROTO.
func (m Mapping) String() string {
	return fmt.Sprintf("%s:%d:%d/%s", m.HostIP, m.HostPort, m.ContainerPort, m.Proto)
}

// Docker renders it as docker port does: 80/tcp -> 0.0.0.0:8080.
func (m Mapping) Docker() string {
	return fmt.Sprintf("%d/%s -> %s:%d", m.ContainerPort, m.Proto, m.HostIP, m.HostPort)
}

// Key names the host side, what two mappings may not share.
func (m Mapping) Key() string { return fmt.Sprintf("%s/%s/%d", m.Proto, m.HostIP, m.HostPort) }

// Overlaps reports whether m and o claim the same host port: same protocol
// and port, and the same address or either of them on every address.
func (m Mapping) Overlaps(o Mapping) bool {
	return m.Proto == o.Proto && m.HostPort == o.HostPort &&
		(m.HostIP == o.HostIP || m.HostIP.IsUnspecified() || o.HostIP.IsUnspecified())
}

// SatisfiedBy says whether o, a published mapping, publishes what m asks
// for: the same container port and protocol, on m's host port and address
// where m gives them.
func (m Mapping) SatisfiedBy(o Mapping) bool {
	return m.Proto == o.Proto && m.ContainerPort == o.ContainerPort &&
		(m.HostPort == 0 || m.HostPort == o.HostPort) && (m.HostIP.IsUnspecified() || m.HostIP == o.HostIP)
}

// ParseList parses a stored comma-separated list.
func ParseList(s string) ([]Mapping, error) {
	var ms []Mapping
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		m, err := ParseMapping(f)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// FormatList is the stored form of ms.
func FormatList(ms []Mapping) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.String())
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Rule is one iptables rule in one of ovsnet's chains (or a jump into one).
type Rule struct {
	Table, Chain string
	Spec         []string
}

func (r Rule) String() string { return r.Table + " " + r.Chain + " " + strings.Join(r.Spec, " ") }

func comment(c string) []string { return []string{"-m", "comment", "--comment", "ovsnet: " + c} }

// Jumps are the one rule per built-in chain that leads into ovsnet's.
func Jumps() []Rule {
	local := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
	return []Rule{
		{"nat", "PREROUTING", append(append([]string{}, local...), append(comment("published ports"), "-j", ChainDNAT)...)},
		{"nat", "OUTPUT", append(append([]string{}, local...), append(comment("published ports, from the host"), "-j", ChainDNAT)...)},
		{"nat", "POSTROUTING", append(comment("masquerade and hairpin"), "-j", ChainPostrouting)},
		{"filter", "FORWARD", append(comment("container traffic"), "-j", ChainForward)},
		{"filter", "INPUT", append([]string{"-p", "udp", "-m", "udp", "--dport", strconv.Itoa(attach.VXLANPort)}, append(comment("tunnels"), "-j", ChainTunnel)...)},
	}
}

// KernelTunnel is a kernel VXLAN device's network on this host: its VNI,
// and the remotes it takes packets from.
type KernelTunnel struct {
	Bridge  string
	VNI     uint32
	Remotes []netip.Addr
}

// TunnelRules let a kernel VXLAN device take packets of its VNI only from
// its configured remotes: a host that is not one could otherwise send
// frames into the network (past --icc=false, as a linked remote's
// address) and teach the device its MACs. Other VNIs (other software's)
// are left alone; OVS's own tunnel ports match their remote themselves.
func TunnelRules(ts []KernelTunnel) []Rule {
	var rs []Rule
	for _, t := range ts {
		// The VNI: 4 bytes at 12 past the IP header (UDP's 8, VXLAN's
		// flags and reserved 4), less the reserved byte; written as
		// iptables -S prints it.
		vni := []string{"-m", "u32", "--u32", fmt.Sprintf("0x0>>0x16&0x3c@0xc>>0x8=0x%x", t.VNI)}
		c := comment("bridge " + t.Bridge)
		for _, r := range t.Remotes {
			rs = append(rs, Rule{"filter", ChainTunnel, append(append([]string{"-s", r.String() + "/32"}, vni...), append(c, "-j", "RETURN")...)})
		}
		rs = append(rs, Rule{"filter", ChainTunnel, append(append([]string{}, vni...), append(c, "-j", "DROP")...)})
	}
	return rs
}

// LoopbackGuard drops packets to 127.0.0.0/8 that did not come in on lo,
// before conntrack sees them. 127.0.0.1 publishing needs route_localnet on
// each NAT bridge, which would otherwise let containers (through their
// gateway) and other machines (with a route to 127.0.0.1 via this host)
// reach the host's loopback services and every 127.0.0.1-published port.
// Docker and kube-proxy drop them likewise. Replies to 127.0.0.1
// publishing come back to the gateway's address, not to 127/8.
func LoopbackGuard() Rule {
	return Rule{"raw", "PREROUTING", append([]string{"-d", "127.0.0.0/8", "!", "-i", "lo"}, append(comment("loopback only from lo"), "-j", "DROP")...)}
}

// Bridge is a container network as NAT sees it.
type Bridge struct {
	Name   string
	Subnet netip.Prefix // IPv4
	NAT    bool
}

// ForwardHead is the first rule of OVSNET-FORWARD: traffic to published
// ports meets the administrator's chain before ovsnet accepts it.
func ForwardHead() Rule {
	return Rule{"filter", ChainForward, append([]string{"-m", "conntrack", "--ctstate", "DNAT"}, append(comment("to published ports: OVSNET-USER first"), "-j", ChainUser)...)}
}

// IsolationRules keep each of bridges from reaching any other (both
// families; in any order of creation): in OVSNET-FORWARD, ahead of every
// bridge's accepts, traffic in from one bridge and out of another goes to
// OVSNET-ISOLATE, which drops it there if it leaves through any of them.
// Published ports (DNAT) stay reachable from every bridge, as from
// outside. Two stages make it one rule per bridge in each chain, not one
// per pair.
func IsolationRules(bridges []string) (jumps, drops []Rule) {
	for _, b := range bridges {
		c := comment("bridge " + b)
		jumps = append(jumps, Rule{"filter", ChainForward, append([]string{"-i", b, "!", "-o", b, "-m", "conntrack", "!", "--ctstate", "DNAT"}, append(c, "-j", ChainIsolate)...)})
		drops = append(drops, Rule{"filter", ChainIsolate, append([]string{"-o", b}, append(c, "-j", "DROP")...)})
	}
	return jumps, drops
}

// BridgeRules are a bridge's forwarding and masquerade rules. others are the
// other container subnets: traffic to them is never masqueraded.
func BridgeRules(b Bridge, others []netip.Prefix) []Rule {
	c := comment("bridge " + b.Name)
	o := []string{"-o", b.Name}
	i := []string{"-i", b.Name}
	var rs []Rule
	fwd := func(spec ...string) { rs = append(rs, Rule{"filter", ChainForward, append(spec, c...)}) }
	if !b.NAT {
		// Routed: the subnet is reachable as it is.
		fwd(append(i, "-j", "ACCEPT")...)
		fwd(append(o, "-j", "ACCEPT")...)
		return rs
	}
	fwd(append(o, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")...)
	fwd(append(o, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")...)
	fwd(append(i, "!", "-o", b.Name, "-j", "ACCEPT")...)
	// NAT mode: nothing else reaches the containers, even with a route.
	fwd(append(o, "-j", "DROP")...)
	post := func(spec ...string) { rs = append(rs, Rule{"nat", ChainPostrouting, append(spec, c...)}) }
	src := b.Subnet.String()
	for _, p := range others {
		post("-s", src, "-d", p.String(), "-j", "RETURN")
	}
	post("-s", src, "!", "-o", b.Name, "-j", "MASQUERADE")
	// Hairpin: a container reaching a published port through a host address
	// must see the reply come back through the host.
	post("-s", src, "-o", b.Name, "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE")
	// Host-only (127.0.0.1) publishing: loopback sources leave through the bridge.
	post("-s", "127.0.0.0/8", "-o", b.Name, "-j", "MASQUERADE")
	return rs
}

// MappingRule is the DNAT rule of one published port of the container at
// addr; owner names it in the rule's comment.
func MappingRule(owner string, addr netip.Addr, m Mapping) Rule {
	spec := []string{}
	if !m.HostIP.IsUnspecified() {
		spec = append(spec, "-d", m.HostIP.String()+"/32")
	}
	spec = append(spec, "-p", m.Proto, "-m", m.Proto, "--dport", strconv.Itoa(int(m.HostPort)))
	spec = append(spec, comment(owner+" "+m.Docker())...)
	spec = append(spec, "-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", addr, m.ContainerPort))
	return Rule{"nat", ChainDNAT, spec}
}
