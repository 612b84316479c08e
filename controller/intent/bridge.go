package intent

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovsnet/ovsnet/ipam"
)

// Bridge is an ovsnet bridge's intent, decoded from its external_ids by
// DecodeBridge. A bridge ovsnet did not make (Owned false) is left alone
// by everything but show; an underlay bridge is not owned and has only
// Underlay.
type Bridge struct {
	Name     string
	Owned    bool
	Deleting bool // del-br is taking it away

	// Subnets with their gateways and this host's ranges. When they do not
	// decode, SubnetsErr says why and Subnets is nil: the gateway
	// addresses and NAT rules stay as last applied.
	Subnets    []ipam.Subnet
	SubnetsErr error
	MTU        int  // 0: the default; a value that does not decode is 0 and an error
	MTUAuto    bool // ovsnet chose MTU from the tunnels' underlay
	ICC        bool // false when the value does not decode (isolated)
	NAT        bool
	NATErr     error // the value does not decode: NAT rules stay as last applied
	// AnswerND: its datapath can write ND options, so flows answer
	// neighbour solicitations. False (relayed to their owners) when the
	// bridge was never probed (NDProbed false) or the value does not
	// decode: that works on every datapath.
	AnswerND bool
	NDProbed bool
	// FloodPPS is the flood bound its new ports get (KeyFloodPPS); one
	// that does not decode reads as DefaultFloodPPS, with an error.
	FloodPPS int
	// Rate is the rate limit its new container interfaces get unless
	// they ask for their own (KeyRate, as on an interface); RateErr: it
	// does not decode, and attaches to the bridge are refused until it
	// is set again.
	Rate    RateLimit
	RateErr error

	// The Docker network the bridge carries; its ID is empty when none.
	// A VLAN that does not decode is in Err.
	Docker DockerNet

	Links    []Link
	Mirrors  []Mirror  // standing mirrors; those whose Err is set copy nothing
	Tunnels  []Tunnel  // every stored tunnel; those whose Err is set carry nothing
	Underlay *Underlay // the device an underlay bridge took over, if it is one

	// Allocation state: starting points for probes, 0 or invalid when
	// missing or not decoded (costing probes, never duplicates).
	NextOfport int
	Hints      map[bool]netip.Addr // by "is IPv4"

	Errs []error // every *Error of the bridge's own keys, in key order
}

// Values of KeyND.
const (
	NDAnswer = "answer"
	NDRelay  = "relay"
)

// NDMode is KeyND's value for a datapath that can (nd_ext) or cannot
// write neighbour discovery options.
func NDMode(ndExt bool) map[string]string {
	if ndExt {
		return map[string]string{KeyND: NDAnswer}
	}
	return map[string]string{KeyND: NDRelay}
}

// DecodeBridge reads bridge name's external_ids. It never fails: what does
// not decode is in Errs and read in its strictest sense.
func DecodeBridge(name string, ext map[string]string) Bridge {
	b := Bridge{Name: name, Owned: Owned(ext), Deleting: ext[KeyState] == StateDeleting, MTUAuto: ext[KeyMTUAuto] == "true",
		Hints: map[bool]netip.Addr{}}
	row := "bridge " + name
	var err error
	if b.Subnets, err = decodeSubnets(ext); err != nil {
		b.Subnets, b.SubnetsErr = nil, &Error{Row: row, Key: KeySubnet, Value: ext[KeySubnet],
			Want: "a list of CIDRs with their gateways and ranges (" + err.Error() + ")", Then: KeepsLastApplied}
		b.Errs = append(b.Errs, b.SubnetsErr)
	}
	if b.ICC, err = decodeBool(row, ext, KeyICC, StaysIsolated); err != nil {
		b.ICC = false
		b.Errs = append(b.Errs, err)
	}
	if b.NAT, b.NATErr = decodeBool(row, ext, KeyNAT, NATAsApplied); b.NATErr != nil {
		b.Errs = append(b.Errs, b.NATErr)
	}
	switch v, set := ext[KeyND]; {
	case !set:
	case v == NDAnswer || v == NDRelay:
		b.AnswerND, b.NDProbed = v == NDAnswer, true
	default:
		b.Errs = append(b.Errs, &Error{Row: row, Key: KeyND, Value: v, Want: `"` + NDAnswer + `" or "` + NDRelay + `"`,
			Then: "neighbour solicitations are relayed to their targets until then (ovsnet reconcile probes the datapath again)"})
	}
	if v, set := ext[KeyMTU]; set {
		if b.MTU, err = strconv.Atoi(v); err != nil || b.MTU < 68 || b.MTU > 65535 {
			b.MTU = 0
			b.Errs = append(b.Errs, &Error{Row: row, Key: KeyMTU, Value: v, Want: "an MTU in 68..65535", Then: "new ports get the kernel's default MTU until then"})
		}
	}
	b.FloodPPS = DefaultFloodPPS
	if v, set := ext[KeyFloodPPS]; set {
		if b.FloodPPS, err = ParseFloodPPS(v); err != nil {
			b.FloodPPS = DefaultFloodPPS
			b.Errs = append(b.Errs, &Error{Row: row, Key: KeyFloodPPS, Value: v, Want: FloodPPSWant, Then: "new ports get the default bound until then"})
		}
	}
	if lim, ok, err := DecodeRateLimit(row, ext); ok && err != nil {
		if e, is := err.(*Error); is {
			e.Then = "attaches to it are refused until then (ovsnet qos " + name + " --default ...)"
		}
		b.RateErr, b.Errs = err, append(b.Errs, err)
	} else {
		b.Rate = lim
	}
	b.NextOfport, _ = strconv.Atoi(ext[KeyNextOfport])
	for _, k := range []string{KeyHintIPv4, KeyHintIPv6} {
		if a, err := netip.ParseAddr(ext[k]); err == nil && a.Is4() == (k == KeyHintIPv4) {
			b.Hints[a.Is4()] = a
		}
	}
	if b.Docker = decodeDocker(row, ext); b.Docker.Err != nil {
		b.Errs = append(b.Errs, b.Docker.Err)
	}
	if b.Docker.NameErr != nil {
		b.Errs = append(b.Errs, b.Docker.NameErr)
	}
	b.Links = decodeLinks(ext)
	b.Mirrors = decodeMirrors(name, ext)
	for _, m := range b.Mirrors {
		if m.Err != nil {
			b.Errs = append(b.Errs, m.Err)
		}
	}
	b.Tunnels = decodeTunnels(name, ext)
	b.Underlay = decodeUnderlay(name, ext)
	return b
}

// decodeBool reads a "true"|"false" key; unset is true.
func decodeBool(row string, ext map[string]string, k, then string) (bool, error) {
	switch v, set := ext[k]; {
	case !set || v == "true":
		return true, nil
	case v == "false":
		return false, nil
	default:
		return false, &Error{Row: row, Key: k, Value: v, Want: `"true" or "false"`, Then: then}
	}
}

func decodeSubnets(ext map[string]string) ([]ipam.Subnet, error) {
	subs := splitList(ext[KeySubnet])
	if len(subs) == 0 {
		return nil, nil
	}
	ss, err := ipam.ParseSubnets(subs, splitList(ext[KeyPortGW]))
	if err != nil {
		return nil, err
	}
	return ss, ipam.SetRanges(ss, splitList(ext[KeyIPRange]))
}

// Spans says whether the bridge is one host's part of a network spanning
// hosts (it has ranges).
func (b Bridge) Spans() bool {
	for _, s := range b.Subnets {
		if s.Range.IsValid() {
			return true
		}
	}
	return false
}

// OVSTunnels says whether any of the bridge's tunnels is OVS's own (not a
// kernel device), or does not decode (read strictly, as one).
func (b Bridge) OVSTunnels() bool {
	for _, t := range b.Tunnels {
		if t.Err != nil || !t.Kernel {
			return true
		}
	}
	return false
}

// GoodTunnels are the tunnels whose intent decodes.
func (b Bridge) GoodTunnels() []Tunnel {
	var out []Tunnel
	for _, t := range b.Tunnels {
		if t.Err == nil {
			out = append(out, t)
		}
	}
	return out
}

// NewBridge is the external_ids of a bridge ovsnet creates, before its
// settings: owned, generation 0, first port number 1, icc and NAT on.
func NewBridge() map[string]string {
	return map[string]string{KeyOwner: OwnerOvsnet, KeyGen: "0", KeyNextOfport: "1", KeyICC: "true", KeyNAT: "true"}
}

// DockerNet is the Docker network a bridge carries.
type DockerNet struct {
	ID   string // Docker's network ID
	Made bool   // the plugin made the bridge for it (else adopted it)
	// Name is the network's name in Docker, once recorded (after Docker
	// made the network); one that does not decode is not used.
	Name string
	VLAN int // its endpoints' access VLAN; 0: untagged
	// Internal: made with --internal; its containers get no default route
	// and publish nothing (its bridge has NAT off).
	Internal bool
	Err      error // the VLAN does not decode: no endpoint is attached
	NameErr  error // the name does not decode: Name is empty
}

// Encode is the bridge keys that say it carries the network.
func (d DockerNet) Encode() map[string]string {
	ext := map[string]string{KeyDockerNetwork: d.ID, KeyDockerMade: strconv.FormatBool(d.Made)}
	if d.VLAN != 0 {
		ext[KeyDockerVLAN] = strconv.Itoa(d.VLAN)
	}
	if d.Internal {
		ext[KeyDockerInternal] = "true"
	}
	if d.Name != "" {
		ext[KeyDockerName] = d.Name
	}
	return ext
}

func decodeDocker(row string, ext map[string]string) DockerNet {
	// Internal fails closed by itself: any value but "false" is internal.
	d := DockerNet{ID: ext[KeyDockerNetwork], Made: ext[KeyDockerMade] == "true", Internal: ext[KeyDockerInternal] != "" && ext[KeyDockerInternal] != "false"}
	if v, set := ext[KeyDockerVLAN]; set {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 4094 {
			d.Err = &Error{Row: row, Key: KeyDockerVLAN, Value: v, Want: "a VLAN in 1..4094", Then: "Docker endpoints on it are refused"}
		} else {
			d.VLAN = n
		}
	}
	if v, set := ext[KeyDockerName]; set {
		if CheckDockerName(v) != nil {
			d.NameErr = &Error{Row: row, Key: KeyDockerName, Value: v, Want: "a Docker network name", Then: "the bridge is known by its own name only"}
		} else {
			d.Name = v
		}
	}
	return d
}

// CheckDockerName checks a Docker network's name as Docker makes them
// ([a-zA-Z0-9][a-zA-Z0-9_.-]*, here at most 128 characters).
func CheckDockerName(s string) error {
	if len(s) == 0 || len(s) > 128 {
		return fmt.Errorf("a Docker network name is 1..128 characters")
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')
		if !ok {
			return fmt.Errorf("%q is not a Docker network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", s)
		}
	}
	return nil
}

// DockerKeys are the keys Docker writes, to remove them.
var DockerKeys = []string{KeyDockerNetwork, KeyDockerMade, KeyDockerVLAN, KeyDockerInternal, KeyDockerName}

// OfDockerNetwork selects the bridge carrying Docker network id.
func OfDockerNetwork(id string) map[string]string { return map[string]string{KeyDockerNetwork: id} }

// Deleting is the bridge keys that mark it as del-br's.
func Deleting() map[string]string { return map[string]string{KeyState: StateDeleting} }

// Settings are what add-br asks of a bridge.
type Settings struct {
	Subnets       []ipam.Subnet
	GatewaysGiven bool // the gateways were given, not derived
	MTU           int  // given; 0: not given
	AutoMTU       int  // chosen by ovsnet (not a given setting: it changes)
	ICC, NAT      *bool
	FloodPPS      *int      // the flood bound of new ports; nil: not given
	Rate          RateLimit // new ports' rate limit (bursts set); zero: not given
}

// Encode is the settings as bridge external_ids.
func (s Settings) Encode() map[string]string {
	want := map[string]string{}
	if len(s.Subnets) > 0 {
		var ss, gs, rs []string
		for _, sn := range s.Subnets {
			ss, gs = append(ss, sn.Prefix.String()), append(gs, sn.Gateway.String())
			if sn.Range.IsValid() {
				rs = append(rs, sn.Range.String())
			}
		}
		want[KeySubnet], want[KeyPortGW] = strings.Join(ss, ","), strings.Join(gs, ",")
		if len(rs) > 0 {
			want[KeyIPRange] = strings.Join(rs, ",")
		}
	}
	if s.MTU > 0 {
		want[KeyMTU] = strconv.Itoa(s.MTU)
	} else if s.AutoMTU > 0 {
		want[KeyMTU], want[KeyMTUAuto] = strconv.Itoa(s.AutoMTU), "true"
	}
	if s.ICC != nil {
		want[KeyICC] = strconv.FormatBool(*s.ICC)
	}
	if s.NAT != nil {
		want[KeyNAT] = strconv.FormatBool(*s.NAT)
	}
	if s.FloodPPS != nil {
		want[KeyFloodPPS] = strconv.Itoa(*s.FloodPPS)
	}
	if !s.Rate.IsZero() {
		want[KeyRate] = s.Rate.Encode()
	}
	return want
}

// given is the part of Encode the user gave, which an existing bridge must
// have: a gateway derived from a subnet differs only when the subnet does;
// an MTU ovsnet chose is not one the user gave.
func (s Settings) given() map[string]string {
	given := map[string]string{}
	for k, v := range s.Encode() {
		if (k != KeyPortGW || s.GatewaysGiven) && k != KeyMTUAuto && (k != KeyMTU || s.MTU > 0) {
			given[k] = v
		}
	}
	return given
}

// Differences lists the given settings an existing bridge's external_ids
// hold otherwise ("icc is "true", asked "false""), in key order.
func (s Settings) Differences(ext map[string]string) []string {
	given := s.given()
	keys := make([]string, 0, len(given))
	for k := range given {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var diffs []string
	for _, k := range keys {
		have := ext[k]
		unset := have == "" && (k == KeyICC || k == KeyNAT) && given[k] == "true" ||
			have == "" && k == KeyFloodPPS && given[k] == strconv.Itoa(DefaultFloodPPS)
		if have == given[k] || unset {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s is %q, asked %q", strings.TrimPrefix(k, "ovsnet-"), have, given[k]))
	}
	return diffs
}

// MTUSetting is the bridge keys for an MTU ovsnet chose (auto) or the
// user's (kept as it is: nil).
func MTUSetting(mtu int) map[string]string {
	return map[string]string{KeyMTU: strconv.Itoa(mtu), KeyMTUAuto: "true"}
}

// RestoreMTU is the bridge keys to set and delete to put the MTU settings
// of ext back (undoing MTUSetting).
func RestoreMTU(ext map[string]string) (set map[string]string, del []string) {
	set = map[string]string{}
	for _, k := range []string{KeyMTU, KeyMTUAuto} {
		if v, ok := ext[k]; ok {
			set[k] = v
		} else {
			del = append(del, k)
		}
	}
	return set, del
}

// Alloc is the allocation state an attach leaves on the bridge: the next
// port number and, per family, the address below which every host
// address is in use.
type Alloc struct {
	NextOfport int
	Hints      []netip.Addr // at most one per family; the next address to probe
}

// Encode is the state as bridge external_ids.
func (a Alloc) Encode() map[string]string {
	set := map[string]string{}
	if a.NextOfport > 0 {
		set[KeyNextOfport] = strconv.Itoa(a.NextOfport)
	}
	for _, h := range a.Hints {
		set[HintKey(h)] = h.String()
	}
	return set
}

// HintKey is the bridge key of the allocation hint of a's family.
func HintKey(a netip.Addr) string {
	if a.Is4() {
		return KeyHintIPv4
	}
	return KeyHintIPv6
}

// StoredSubnets is a bridge's subnets, gateways and ranges as the strings
// it holds, for show to report them when they do not decode.
func StoredSubnets(ext map[string]string) (subnets, gateways, ranges []string) {
	return splitList(ext[KeySubnet]), splitList(ext[KeyPortGW]), splitList(ext[KeyIPRange])
}

// Strings is the subnets, gateways and ranges as show reports them.
func (b Bridge) Strings() (subnets, gateways, ranges []string) {
	for _, s := range b.Subnets {
		subnets, gateways = append(subnets, s.Prefix.String()), append(gateways, s.Gateway.String())
		if s.Range.IsValid() {
			ranges = append(ranges, s.Range.String())
		}
	}
	return subnets, gateways, ranges
}
