package intent

import (
	"sort"
	"strings"
)

// Mirror is a bridge's standing mirror (`ovsnet mirror add`): copies of
// what the From containers (or, All, every port) send and receive go to
// container To's interface on the bridge, which OVS then reserves for the
// copies (the mirror's output port: what the analyzer sends there is
// dropped). Stored as the bridge key
// "ovsnet-mirror:TO" = "all" or "C1,C2".
type Mirror struct {
	To   string   `json:"to"`
	From []string `json:"from,omitempty"`
	All  bool     `json:"all,omitempty"`
	Err  error    `json:"-"` // the value does not decode: the mirror copies nothing
}

// KeyMirrorPrefix starts a bridge's mirror key; the rest names the
// analyzer container.
const KeyMirrorPrefix = "ovsnet-mirror:"

// KeyMirrorTo marks a Mirror row as a standing mirror's: the analyzer
// container, on the bridge KeyMirrorBridge names.
const (
	KeyMirrorTo     = "ovsnet-mirror-to"
	KeyMirrorBridge = "ovsnet-mirror-bridge"
)

// MirrorKey is the bridge key of the mirror to container to.
func MirrorKey(to string) string { return KeyMirrorPrefix + to }

// Encode is the mirror as a bridge key and value.
func (m Mirror) Encode() map[string]string {
	v := "all"
	if !m.All {
		v = strings.Join(m.From, ",")
	}
	return map[string]string{MirrorKey(m.To): v}
}

// Says is the mirror in words, for show and list.
func (m Mirror) Says() string {
	if m.All {
		return "every port -> " + m.To
	}
	return strings.Join(m.From, ", ") + " -> " + m.To
}

func decodeMirrors(bridge string, ext map[string]string) []Mirror {
	var ms []Mirror
	for k, v := range ext {
		to, ok := strings.CutPrefix(k, KeyMirrorPrefix)
		if !ok {
			continue
		}
		m := Mirror{To: to, All: v == "all"}
		if !m.All {
			m.From = splitList(v)
		}
		if to == "" || (!m.All && len(m.From) == 0) || CheckRuntimeName(to) != nil {
			m = Mirror{To: to, Err: &Error{Row: "bridge " + bridge, Key: k, Value: v, Want: `"all" or containers' names, comma-separated`,
				Then: "the mirror copies nothing until then"}}
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].To < ms[j].To })
	return ms
}
