package controller

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

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
	e := i.ExternalIDs
	if e[ovsdb.KeyOwner] != ovsdb.OwnerOvsnet {
		return p, false, nil
	}
	mac, merr := net.ParseMAC(e[ovsdb.KeyMAC])
	if merr != nil || len(mac) != 6 || mac[0]&1 == 1 {
		return p, false, &IntentError{Row: ifaceRow(i), Key: ovsdb.KeyMAC, Value: e[ovsdb.KeyMAC], Want: "a unicast MAC", Then: portSendsNothing}
	}
	p = flows.Port{Name: i.Name, MAC: mac, VLAN: vlan}
	for _, k := range []string{ovsdb.KeyIPv4, ovsdb.KeyIPv6} {
		v, set := e[k]
		if !set {
			continue
		}
		a, err := netip.ParsePrefix(v)
		if err != nil || a.Addr().Is4() != (k == ovsdb.KeyIPv4) || a.Addr().Zone() != "" {
			return flows.Port{}, false, &IntentError{Row: ifaceRow(i), Key: k, Value: v, Want: "ADDR/PLEN of its family", Then: portSendsNothing}
		}
		p.Addrs = append(p.Addrs, a.Addr())
	}
	switch {
	case i.Ofport != nil && *i.Ofport > 0:
		p.Ofport = *i.Ofport
	case i.OfportRequest != nil:
		p.Ofport = *i.OfportRequest
	default:
		return flows.Port{}, false, nil
	}
	return p, true, nil
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

// badIntent is every decoding error of an ovsnet bridge and its container
// interfaces, ports sharing a MAC included, in a stable order.
func badIntent(topo *ovsdb.Topology, b *vswitchd.Bridge) []error {
	errs := bridgeIntentErrors(b)
	ifs, _ := topo.BridgeInterfaces(b)
	for _, i := range ifs {
		if _, _, err := decodePort(i, 0); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range sharedMACs(ifs) {
		errs = append(errs, d)
	}
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
