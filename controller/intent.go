package controller

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Intent that does not decode fails closed: it is reported by name and gets
// the strictest treatment, never the loosest. A port whose MAC or addresses
// do not parse sends nothing (no flows: the classifier drops its packets); a
// bridge whose icc does not parse stays isolated; a bridge whose subnets do
// not parse keeps its NAT rules as last applied; no address is freed, and no
// allocation hint lowered, from a value that does not parse.

// ErrBadIntent is wrapped by every IntentError.
var ErrBadIntent = errors.New("bad intent")

// IntentError is one external_ids value that does not decode.
type IntentError struct {
	Row   string // "bridge br1", "interface onXXX (web/eth1)"
	Key   string
	Value string
	Want  string // what it should be
	Then  string // how ovsnet treats the row meanwhile
}

func (e *IntentError) Error() string {
	return fmt.Sprintf("%s: %s %s=%q is not %s: %s; fix or remove the key (ovs-vsctl), or detach and attach again",
		ErrBadIntent, e.Row, e.Key, e.Value, e.Want, e.Then)
}

func (e *IntentError) Unwrap() error { return ErrBadIntent }

func ifaceRow(i vswitchd.Interface) string {
	return fmt.Sprintf("interface %s (%s)", i.Name, ownerOf(i))
}

const portSendsNothing = "the port sends nothing until then"

// decodePort is the flow model of an ovsnet container interface. ok is
// false for rows that have no flows of their own (not ovsnet's, no port
// number yet) and for rows whose intent does not decode (err says why).
// The port number is the one ovs-vswitchd assigned, or, before it has, the
// one requested.
func decodePort(i vswitchd.Interface, vlan int) (p flows.Port, ok bool, err error) {
	if i.ExternalIDs[ovsdb.KeyOwner] != ovsdb.OwnerOvsnet {
		return p, false, nil
	}
	pi, err := decodePortIntent(ifaceRow(i), i.ExternalIDs)
	if err != nil {
		return p, false, err
	}
	switch {
	case i.Ofport != nil && *i.Ofport > 0:
		return pi.FlowPort(i.Name, *i.Ofport, vlan), true, nil
	case i.OfportRequest != nil:
		return pi.FlowPort(i.Name, *i.OfportRequest, vlan), true, nil
	}
	return p, false, nil
}

// decodeICC reads a bridge's icc setting: unset or "true" is on, "false"
// off, anything else off (isolated) and reported.
func decodeICC(name string, ext map[string]string) (bool, error) {
	switch v, set := ext[ovsdb.KeyICC]; {
	case !set || v == "true":
		return true, nil
	case v == "false":
		return false, nil
	default:
		return false, &IntentError{Row: "bridge " + name, Key: ovsdb.KeyICC, Value: v, Want: `"true" or "false"`, Then: "its containers stay isolated (icc=false) until then"}
	}
}

// bridgeIntentErrors reports what of a bridge's own intent does not decode.
func bridgeIntentErrors(b *vswitchd.Bridge) []error {
	var errs []error
	if _, err := decodeICC(b.Name, b.ExternalIDs); err != nil {
		errs = append(errs, err)
	}
	if _, err := bridgeSubnets(b.ExternalIDs); err != nil {
		errs = append(errs, &IntentError{Row: "bridge " + b.Name, Key: ovsdb.KeySubnet, Value: b.ExternalIDs[ovsdb.KeySubnet],
			Want: "a list of CIDRs (" + err.Error() + ")", Then: "its gateway and NAT rules stay as last applied until then"})
	}
	if v, set := b.ExternalIDs[ovsdb.KeyNAT]; set && v != "true" && v != "false" {
		errs = append(errs, &IntentError{Row: "bridge " + b.Name, Key: ovsdb.KeyNAT, Value: v, Want: `"true" or "false"`,
			Then: "its NAT rules stay as last applied until then"})
	}
	return errs
}

// decodedPorts is one decoding of a bridge's container interfaces, shared
// by a convergence run's flows and its report of bad intent: the flow
// model of each interface that has flows (by OVS port name) and what does
// not decode (ports sharing a MAC included, and given no flows).
type decodedPorts struct {
	flow map[string]flows.Port
	bad  []error
}

// decodePorts decodes ifs, whose ports (for their VLANs) are ports.
func decodePorts(ifs []vswitchd.Interface, ports []vswitchd.Port) decodedPorts {
	d := decodedPorts{flow: map[string]flows.Port{}}
	shared := map[string]bool{}
	for _, e := range sharedMACs(ifs) {
		shared[e.Row] = true
		d.bad = append(d.bad, e)
	}
	for j, i := range ifs {
		vlan := 0
		if ports[j].Tag != nil {
			vlan = *ports[j].Tag
		}
		p, ok, err := decodePort(i, vlan)
		if err != nil {
			d.bad = append(d.bad, err)
		}
		if ok && !shared[ifaceRow(i)] {
			d.flow[i.Name] = p
		}
	}
	return d
}

// badIntent is every decoding error of an ovsnet bridge and its container
// interfaces, ports sharing a MAC included, in a stable order.
func badIntent(topo *ovsdb.Topology, b *vswitchd.Bridge) []error {
	return badIntentOf(b, decodePorts(topo.BridgeInterfaces(b)))
}

// badIntentOf is badIntent with the bridge's interfaces already decoded.
func badIntentOf(b *vswitchd.Bridge, d decodedPorts) []error {
	errs := append(bridgeIntentErrors(b), d.bad...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

// sharedMACs reports container interfaces whose MAC another interface of
// the bridge holds (set behind ovsnet's back: attaches refuse it). Both get
// no flows: either could be the impostor.
func sharedMACs(ifs []vswitchd.Interface) []*IntentError {
	by := map[string][]vswitchd.Interface{}
	for _, i := range ifs {
		if i.ExternalIDs[ovsdb.KeyOwner] != ovsdb.OwnerOvsnet {
			continue
		}
		if m, err := net.ParseMAC(i.ExternalIDs[ovsdb.KeyMAC]); err == nil {
			by[m.String()] = append(by[m.String()], i)
		}
	}
	var out []*IntentError
	for m, is := range by {
		if len(is) < 2 {
			continue
		}
		for _, i := range is {
			out = append(out, &IntentError{Row: ifaceRow(i), Key: ovsdb.KeyMAC, Value: m, Want: "a MAC no other port of the bridge has", Then: portSendsNothing})
		}
	}
	return out
}

// PortIntent is an ovsnet container interface's intent, typed: what its
// Interface row's external_ids hold (published ports aside: nat owns
// those). Encode writes it and decodePortIntent reads it back strictly;
// the attach builds a port's external_ids, flows and the view users get
// from it and nothing else.
type PortIntent struct {
	Container, Iface, Bridge string
	Netns, Type, State       string
	MAC                      net.HardwareAddr
	Addrs                    []netip.Prefix // at most one per family
	Gateways                 []netip.Addr   // default route(s) in the container
	MTU                      int            // 0: the kernel's default
	NoTxOffload              bool
}

// Encode is the intent as external_ids.
func (p PortIntent) Encode() map[string]string {
	ext := map[string]string{
		ovsdb.KeyContainerID: p.Container, ovsdb.KeyContainerIface: p.Iface,
		ovsdb.KeyOwner: ovsdb.OwnerOvsnet, ovsdb.KeyBridge: p.Bridge,
		ovsdb.KeyMAC: p.MAC.String(), ovsdb.KeyNetns: p.Netns, ovsdb.KeyType: p.Type,
		ovsdb.KeyState: p.State,
	}
	for _, a := range p.Addrs {
		ext[addrKey(a.Addr())] = a.String()
	}
	if p.MTU > 0 {
		ext[ovsdb.KeyMTU] = strconv.Itoa(p.MTU)
	}
	if p.NoTxOffload {
		ext[ovsdb.KeyTxOffload] = "off"
	}
	var gws []string
	for _, g := range p.Gateways {
		gws = append(gws, g.String())
	}
	if len(gws) > 0 {
		ext[ovsdb.KeyPortGW] = strings.Join(gws, ",")
	}
	return ext
}

// decodePortIntent reads an ovsnet interface's external_ids (row names it
// in errors). Anything that does not parse is an IntentError: the port
// then gets no flows, and nothing is configured from it.
func decodePortIntent(row string, ext map[string]string) (PortIntent, error) {
	bad := func(k, want string) (PortIntent, error) {
		return PortIntent{}, &IntentError{Row: row, Key: k, Value: ext[k], Want: want, Then: portSendsNothing}
	}
	p := PortIntent{Container: ext[ovsdb.KeyContainerID], Iface: ext[ovsdb.KeyContainerIface], Bridge: ext[ovsdb.KeyBridge],
		Netns: ext[ovsdb.KeyNetns], Type: ext[ovsdb.KeyType], State: ext[ovsdb.KeyState], NoTxOffload: ext[ovsdb.KeyTxOffload] == "off"}
	mac, err := net.ParseMAC(ext[ovsdb.KeyMAC])
	if err != nil || len(mac) != 6 || mac[0]&1 == 1 {
		return bad(ovsdb.KeyMAC, "a unicast MAC")
	}
	p.MAC = mac
	for _, k := range []string{ovsdb.KeyIPv4, ovsdb.KeyIPv6} {
		v, set := ext[k]
		if !set {
			continue
		}
		a, err := netip.ParsePrefix(v)
		if err != nil || a.Addr().Is4() != (k == ovsdb.KeyIPv4) || a.Addr().Zone() != "" {
			return bad(k, "ADDR/PLEN of its family")
		}
		p.Addrs = append(p.Addrs, a)
	}
	for _, g := range splitList(ext[ovsdb.KeyPortGW]) {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return bad(ovsdb.KeyPortGW, "a list of addresses")
		}
		p.Gateways = append(p.Gateways, a)
	}
	if v, set := ext[ovsdb.KeyMTU]; set {
		if p.MTU, err = strconv.Atoi(v); err != nil || CheckMTU(p.MTU) != nil {
			return bad(ovsdb.KeyMTU, "an MTU in 68..65535")
		}
	}
	return p, nil
}

// FlowPort is the port's flow model, on OVS port name numbered ofport, in
// access VLAN vlan (0: untagged).
func (p PortIntent) FlowPort(name string, ofport, vlan int) flows.Port {
	fp := flows.Port{Name: name, Ofport: ofport, MAC: p.MAC, VLAN: vlan}
	for _, a := range p.Addrs {
		fp.Addrs = append(fp.Addrs, a.Addr())
	}
	return fp
}

// Config is what the container's interface gets.
func (p PortIntent) Config(routes attach.RoutePolicy) attach.Config {
	return attach.Config{Name: p.Iface, MAC: p.MAC, MTU: p.MTU, Addrs: p.Addrs, Gateways: p.Gateways, Routes: routes, NoTxOffload: p.NoTxOffload}
}

// View is the port as add-port, add-ports and show report it.
func (p PortIntent) View(ovsPort string, ofport, vlan int) Port {
	v := Port{Bridge: p.Bridge, Container: p.Container, Iface: p.Iface, MAC: p.MAC.String(), MTU: p.MTU,
		VLAN: vlan, Type: p.Type, OVSPort: ovsPort, Ofport: ofport, Netns: p.Netns}
	for _, a := range p.Addrs {
		v.Addresses = append(v.Addresses, a.String())
	}
	for _, g := range p.Gateways {
		v.Gateways = append(v.Gateways, g.String())
	}
	return v
}
