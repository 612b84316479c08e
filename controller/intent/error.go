package intent

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBad is wrapped by every *Error.
var ErrBad = errors.New("bad intent")

// Error is one external_ids value that does not decode.
type Error struct {
	Row   string // "bridge br1", "interface onXXX (web/eth1)"
	Key   string
	Value string
	Want  string // what it should be
	Then  string // how ovsnet treats the row meanwhile
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s %s=%q is not %s: %s; fix or remove the key (ovs-vsctl), or detach and attach again",
		ErrBad, e.Row, e.Key, e.Value, e.Want, e.Then)
}

func (e *Error) Unwrap() error { return ErrBad }

// What each kind of row does while its intent does not decode.
const (
	PortSendsNothing = "the port sends nothing until then"
	StaysIsolated    = "its containers stay isolated (icc=false) until then"
	KeepsLastApplied = "its gateway and NAT rules stay as last applied until then"
	NATAsApplied     = "its NAT rules stay as last applied until then"
	NoTunnel         = "the tunnel carries nothing until then"
	UnderlayKept     = "its underlay device is left as it is until then"
)

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
