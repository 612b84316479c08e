package intent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ovsnet/ovsnet/attach"

	"github.com/ovsnet/ovsnet/nat"
)

// Ref is what names an ovsnet container interface row and where it is in
// its life: plain strings, which always decode. Everything a port carries
// beyond these is in Port, decoded strictly.
type Ref struct {
	Owned     bool   // the row is ovsnet's
	Container string // as the user gave it
	Iface     string // the interface's name inside the container
	Bridge    string
	Netns     string // the namespace path used at attach time
	Type      string // veth or internal
	State     string // StateAttaching, StateReady or StateDetaching
	// HasGateway: the container's default route goes through it.
	HasGateway  bool
	NoTxOffload bool   // its container end computes its own checksums
	Runtime     string // who moves and configures the container's end ("": ovsnet)
	RuntimeName string // the runtime's name of the container, once known
	// RuntimeIface is the runtime's name of the container's end, once
	// known (one that is no interface name is not used).
	RuntimeIface string
	CNINetwork   string // attached by the CNI plugin for this network
	Pooled       bool   // a warm pool's port, no container's yet (KeyPool)
}

// RefOf reads an interface row's Ref.
func RefOf(ext map[string]string) Ref {
	return Ref{Owned: Owned(ext), Container: ext[KeyContainerID], Iface: ext[KeyContainerIface], Bridge: ext[KeyBridge],
		Netns: ext[KeyNetns], Type: ext[KeyType], State: ext[KeyState], HasGateway: ext[KeyPortGW] != "",
		NoTxOffload: ext[KeyTxOffload] == "off", Runtime: ext[KeyRuntime], RuntimeName: ext[KeyRuntimeName],
		CNINetwork: ext[KeyCNINetwork], Pooled: ext[KeyPool] == "true", RuntimeIface: ifaceName(ext[KeyRuntimeIface])}
}

// ifaceName is s if it can be a Linux interface's name, else "".
func ifaceName(s string) string {
	if attach.CheckName("interface", s) != nil {
		return ""
	}
	return s
}

// RuntimeIface is the interface keys that record the runtime's name of
// the container's end.
func RuntimeIface(name string) map[string]string { return map[string]string{KeyRuntimeIface: name} }

// State is the interface keys that record state s.
func State(s string) map[string]string { return map[string]string{KeyState: s} }

// TxOffload is the interface keys to set and delete to record whether its
// container end computes its own checksums.
func TxOffload(off bool) (set map[string]string, del []string) {
	if off {
		return map[string]string{KeyTxOffload: "off"}, nil
	}
	return nil, []string{KeyTxOffload}
}

// LinkEnds are the names a container interface answers to as a link's
// end: its container as attached and, for a runtime's endpoint, the
// runtime's name of its container, by which links name it (a Docker
// endpoint's container_id is the endpoint's ID).
func (r Ref) LinkEnds() []string {
	if r.RuntimeName != "" && r.RuntimeName != r.Container {
		return []string{r.Container, r.RuntimeName}
	}
	return []string{r.Container}
}

// IsPool says whether the row is a warm pool's port (no container's: a
// row that says pooled and names a container is not one).
func (r Ref) IsPool() bool { return r.Pooled && r.Container == "" }

// String is "CONTAINER/IFACE" ("warm pool" for a pool's port).
func (r Ref) String() string {
	if r.IsPool() {
		return "warm pool"
	}
	return r.Container + "/" + r.Iface
}

// InterfaceRow names an interface row in errors: its name and owner.
func InterfaceRow(name string, ext map[string]string) string {
	return fmt.Sprintf("interface %s (%s)", name, RefOf(ext))
}

// IsContainer says whether the row is an ovsnet container interface (not a
// bridge's own port, a tunnel or a row of someone else's).
func (r Ref) IsContainer() bool { return r.Owned && r.Container != "" }

// Port is an ovsnet container interface's intent, typed: what its Interface
// row's external_ids hold (published ports aside: see Published). Encode
// writes it and DecodePort reads it back strictly; the attach builds a
// port's external_ids, flows and the view users get from it and nothing
// else.
type Port struct {
	Container, Iface, Bridge string
	Netns, Type, State       string
	MAC                      net.HardwareAddr
	Addrs                    []netip.Prefix // at most one per family
	Gateways                 []netip.Addr   // default route(s) in the container
	MTU                      int            // 0: the kernel's default
	NoTxOffload              bool
	FloodPPS                 int    // KeyFloodPPS; 0: no bound
	Runtime                  string // who moves and configures the container's end ("": ovsnet)
	RuntimeName              string // the runtime's name of the container ("": none known)
	CNINetwork               string // attached by the CNI plugin for this network
	// Pooled: a warm pool's port, with no container (Container, Iface and
	// Netns empty) until an attach takes it; PoolNetns is where its veth's
	// container end waits when not in the host (KeyPoolNetns).
	Pooled    bool
	PoolNetns string
	// Network is the OVN network of a port on OVN's integration bridge,
	// and IfaceID its logical switch port's name.
	Network, IfaceID string
}

// Encode is the intent as external_ids.
func (p Port) Encode() map[string]string {
	ext := map[string]string{
		KeyContainerID: p.Container, KeyContainerIface: p.Iface,
		KeyOwner: OwnerOvsnet, KeyBridge: p.Bridge,
		KeyMAC: p.MAC.String(), KeyNetns: p.Netns, KeyType: p.Type,
		KeyState: p.State,
	}
	for _, a := range p.Addrs {
		ext[AddrKey(a.Addr())] = a.String()
	}
	if p.MTU > 0 {
		ext[KeyMTU] = strconv.Itoa(p.MTU)
	}
	ext[KeyFloodPPS] = strconv.Itoa(p.FloodPPS)
	if p.NoTxOffload {
		ext[KeyTxOffload] = "off"
	}
	if p.Runtime != "" {
		ext[KeyRuntime] = p.Runtime
	}
	if p.RuntimeName != "" {
		ext[KeyRuntimeName] = p.RuntimeName
	}
	if p.CNINetwork != "" {
		ext[KeyCNINetwork] = p.CNINetwork
	}
	if p.Network != "" {
		ext[KeyOVNNetwork], ext[KeyIfaceID] = p.Network, p.IfaceID
	}
	if p.Pooled {
		ext[KeyPool] = "true"
		delete(ext, KeyContainerID)
		delete(ext, KeyContainerIface)
		delete(ext, KeyNetns)
		if p.PoolNetns != "" {
			ext[KeyPoolNetns] = p.PoolNetns
		}
	}
	var gws []string
	for _, g := range p.Gateways {
		gws = append(gws, g.String())
	}
	if len(gws) > 0 {
		ext[KeyPortGW] = strings.Join(gws, ",")
	}
	return ext
}

// DecodePort reads an ovsnet interface's external_ids (row names it in
// errors). Anything that does not parse is an *Error: the port then gets no
// flows, and nothing is configured from it.
func DecodePort(row string, ext map[string]string) (Port, error) {
	bad := func(k, want string) (Port, error) {
		return Port{}, &Error{Row: row, Key: k, Value: ext[k], Want: want, Then: PortSendsNothing}
	}
	r := RefOf(ext)
	p := Port{Container: r.Container, Iface: r.Iface, Bridge: r.Bridge, Netns: r.Netns, Type: r.Type, State: r.State,
		NoTxOffload: r.NoTxOffload, Runtime: r.Runtime, RuntimeName: r.RuntimeName, CNINetwork: r.CNINetwork, Pooled: r.Pooled,
		Network: ext[KeyOVNNetwork], IfaceID: ext[KeyIfaceID]}
	switch {
	case p.Pooled && (p.Container != "" || p.Iface != ""):
		return bad(KeyPool, "no container_id and container_iface on a pool's port (remove the row: ovsnet reconcile)")
	case p.Pooled:
		p.PoolNetns = ext[KeyPoolNetns]
	case p.Container == "":
		return bad(KeyContainerID, "the container it belongs to")
	case p.Iface == "":
		return bad(KeyContainerIface, "the interface's name in its container")
	}
	mac, err := net.ParseMAC(ext[KeyMAC])
	if err != nil || len(mac) != 6 || mac[0]&1 == 1 {
		return bad(KeyMAC, "a unicast MAC")
	}
	p.MAC = mac
	for _, k := range []string{KeyIPv4, KeyIPv6} {
		v, set := ext[k]
		if !set {
			continue
		}
		a, err := netip.ParsePrefix(v)
		if err != nil || a.Addr().Is4() != (k == KeyIPv4) || a.Addr().Zone() != "" {
			return bad(k, "ADDR/PLEN of its family")
		}
		p.Addrs = append(p.Addrs, a)
	}
	for _, g := range splitList(ext[KeyPortGW]) {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return bad(KeyPortGW, "a list of addresses")
		}
		p.Gateways = append(p.Gateways, a)
	}
	if v, set := ext[KeyMTU]; set {
		if p.MTU, err = strconv.Atoi(v); err != nil || p.MTU < 68 || p.MTU > 65535 {
			return bad(KeyMTU, "an MTU in 68..65535")
		}
	}
	p.FloodPPS = DefaultFloodPPS
	if v, set := ext[KeyFloodPPS]; set {
		if p.FloodPPS, err = ParseFloodPPS(v); err != nil {
			return bad(KeyFloodPPS, FloodPPSWant)
		}
	}
	return p, nil
}

// AddrKey is the interface key that holds an address of a's family.
func AddrKey(a netip.Addr) string {
	if a.Is4() {
		return KeyIPv4
	}
	return KeyIPv6
}

// HeldAddrs are the addresses an interface row holds, read leniently: every
// value that parses, whatever else of the row does not (an address is
// never freed from a value that does not parse, and one that parses stays
// held even when the rest of the row is bad).
func HeldAddrs(ext map[string]string) []netip.Prefix {
	var out []netip.Prefix
	for _, k := range []string{KeyIPv4, KeyIPv6} {
		if p, err := netip.ParsePrefix(ext[k]); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// LowestHeld is the lowest address an interface row holds (HeldAddrs),
// by which the warm pool orders its ports; the zero Addr, which sorts
// first, if none parses.
func LowestHeld(ext map[string]string) netip.Addr {
	held := HeldAddrs(ext)
	if len(held) == 0 {
		return netip.Addr{}
	}
	return slices.MinFunc(held, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) }).Addr()
}

// HeldMAC is the MAC an interface row holds, if it parses.
func HeldMAC(ext map[string]string) (net.HardwareAddr, bool) {
	m, err := net.ParseMAC(ext[KeyMAC])
	return m, err == nil
}

// Published is the port mappings an interface publishes. A value that does
// not decode publishes nothing (and is an *Error).
func Published(row string, ext map[string]string) ([]nat.Mapping, error) {
	v := ext[KeyPublish]
	if v == "" {
		return nil, nil
	}
	ms, err := nat.ParseList(v)
	if err != nil {
		return nil, &Error{Row: row, Key: KeyPublish, Value: v, Want: "a list of HOST_IP:HOST_PORT:PORT/PROTO (" + err.Error() + ")",
			Then: "none of its ports is published until then"}
	}
	return ms, nil
}

// Publish is the interface keys that publish ms, reservations included.
func Publish(ms []nat.Mapping) map[string]string {
	set := map[string]string{KeyPublish: nat.FormatList(ms)}
	for _, m := range ms {
		for _, k := range Reservations(m) {
			set[k] = "1"
		}
	}
	return set
}

// Reservations are the keys an interface publishing m holds, so that
// another publish of the same host port finds it by a probe.
func Reservations(m nat.Mapping) []string {
	return []string{
		fmt.Sprintf("%s%s/%s/%d", KeyHostPortPrefix, m.Proto, m.HostIP, m.HostPort),
		fmt.Sprintf("%s%s/*/%d", KeyHostPortPrefix, m.Proto, m.HostPort),
	}
}

// Conflicts are the reservation keys whose presence on any interface makes
// publishing m a conflict.
func Conflicts(m nat.Mapping) []string {
	if m.HostIP.IsUnspecified() {
		return []string{fmt.Sprintf("%s%s/*/%d", KeyHostPortPrefix, m.Proto, m.HostPort)}
	}
	return []string{
		fmt.Sprintf("%s%s/%s/%d", KeyHostPortPrefix, m.Proto, m.HostIP, m.HostPort),
		fmt.Sprintf("%s%s/0.0.0.0/%d", KeyHostPortPrefix, m.Proto, m.HostPort),
	}
}

// SharedMAC is the error of an interface row whose MAC another interface
// of its bridge holds (set behind ovsnet's back: attaches refuse it).
func SharedMAC(row, mac string) *Error {
	return &Error{Row: row, Key: KeyMAC, Value: mac, Want: "a MAC no other port of the bridge has", Then: PortSendsNothing}
}

// BadAddress says whether one of errs is an address of an interface that
// does not decode (which may still be in use: no allocation hint goes
// below it).
func BadAddress(errs []error) bool {
	for _, err := range errs {
		var e *Error
		if errors.As(err, &e) && (e.Key == KeyIPv4 || e.Key == KeyIPv6) {
			return true
		}
	}
	return false
}

// Queries: external_ids subsets that select interface rows.

// OfContainer selects the interface INTERFACE of CONTAINER ("": every
// interface of CONTAINER).
func OfContainer(container, iface string) map[string]string {
	m := map[string]string{KeyContainerID: container}
	if iface != "" {
		m[KeyContainerIface] = iface
	}
	return m
}

// runtimeNameRE is checked with the length apart: a counted repetition
// ({0,252}) compiles into 252 copies, 0.8 ms of every process start.
var runtimeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$`)

// CheckRuntimeName validates the name a runtime gives a container (a
// Docker or Podman container's name, a pod's NAMESPACE/NAME), which links,
// trace and port accept for it.
func CheckRuntimeName(name string) error {
	if len(name) > 253 || !runtimeNameRE.MatchString(name) {
		return fmt.Errorf("container name %q: want at most 253 letters, digits and _ . : / @ -, starting with a letter or digit", name)
	}
	return nil
}

// RuntimeName is the interface keys that name its container as the
// runtime does.
func RuntimeName(name string) map[string]string { return map[string]string{KeyRuntimeName: name} }

// NamedOn selects the interfaces on bridge of the container the runtime
// calls name.
func NamedOn(bridge, name string) map[string]string {
	return map[string]string{KeyBridge: bridge, KeyRuntimeName: name}
}

// OfCNINetwork selects the interfaces the CNI plugin attached for network.
func OfCNINetwork(network string) map[string]string { return map[string]string{KeyCNINetwork: network} }

// OfContainerOn selects CONTAINER's interfaces on bridge.
func OfContainerOn(bridge, container string) map[string]string {
	return map[string]string{KeyBridge: bridge, KeyContainerID: container}
}

// OfPool selects the ready pool's ports of type typ on bridge.
func OfPool(bridge, typ string) map[string]string {
	return map[string]string{KeyBridge: bridge, KeyPool: "true", KeyType: typ, KeyState: StateReady}
}

// OfBridgePool selects bridge's pool's ports.
func OfBridgePool(bridge string) map[string]string {
	return map[string]string{KeyBridge: bridge, KeyPool: "true"}
}

// OfAnyPool selects every pool's port.
func OfAnyPool() map[string]string { return map[string]string{KeyOwner: OwnerOvsnet, KeyPool: "true"} }

// OfBridge selects the ovsnet interfaces of a bridge.
func OfBridge(bridge string) map[string]string { return map[string]string{KeyBridge: bridge} }

// HoldingAddr selects the interface of bridge that holds address p.
func HoldingAddr(bridge string, p netip.Prefix) map[string]string {
	return map[string]string{KeyBridge: bridge, AddrKey(p.Addr()): p.String()}
}

// HoldingMAC selects the interface of bridge that holds MAC m.
func HoldingMAC(bridge string, m net.HardwareAddr) map[string]string {
	return map[string]string{KeyBridge: bridge, KeyMAC: m.String()}
}

// Stored is an interface row's intent as the strings it holds, for show to
// report a row that does not decode (or ovs-docker's) as it is.
type Stored struct {
	Container, Iface, MAC, Type, Netns string
	Addrs, Gateways                    []string
	MTU                                int
}

// StoredOf reads a row's strings, whatever they say.
func StoredOf(ext map[string]string) Stored {
	s := Stored{Container: ext[KeyContainerID], Iface: ext[KeyContainerIface], MAC: ext[KeyMAC], Type: ext[KeyType],
		Netns: ext[KeyNetns], Gateways: splitList(ext[KeyPortGW])}
	for _, k := range []string{KeyIPv4, KeyIPv6} {
		if ext[k] != "" {
			s.Addrs = append(s.Addrs, ext[k])
		}
	}
	s.MTU, _ = strconv.Atoi(ext[KeyMTU])
	return s
}

// DefaultFloodPPS is the flood bound of a port when neither it nor its
// bridge was given one: 100,000 packets a second of connection attempts,
// UDP, ICMP and the like, which no normal workload sends from one
// container (about 1.2 Gbit/s of full-size UDP datagrams, 100,000 new
// connections a second), while a flood tool sends several times that.
const DefaultFloodPPS = 100000

// MaxFloodPPS is the highest flood bound a port takes.
const MaxFloodPPS = 100000000

// FloodPPSWant says what a flood bound must be.
const FloodPPSWant = "packets a second in 1..100000000, or 0 for no bound"

// ParseFloodPPS reads a flood bound.
func ParseFloodPPS(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || CheckFloodPPS(n) != nil {
		return 0, fmt.Errorf("bad flood bound %q: want %s", v, FloodPPSWant)
	}
	return n, nil
}

// CheckFloodPPS refuses a flood bound outside 0..MaxFloodPPS.
func CheckFloodPPS(n int) error {
	if n < 0 || n > MaxFloodPPS {
		return fmt.Errorf("bad flood bound %q: want %s", strconv.Itoa(n), FloodPPSWant)
	}
	return nil
}
