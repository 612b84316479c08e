package intent

import (
	"net/netip"
	"sort"
	"strings"
)

// Link is one link of a bridge with icc=false: SRC may open connections to
// DST on Ports ("all", or "80/tcp,53/udp"), stored as the bridge key
// "ovsnet-link:SRC>DST".
type Link struct {
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Ports string `json:"ports"`
}

// PortSpecs are the link's ports one by one ("80/tcp", "53/udp"; "all").
func (l Link) PortSpecs() []string { return splitList(l.Ports) }

// LinkKey is the bridge key of the link SRC -> DST.
func LinkKey(src, dst string) string { return KeyLinkPrefix + src + ">" + dst }

// Encode is the link as a bridge key and value.
func (l Link) Encode() map[string]string { return map[string]string{LinkKey(l.Src, l.Dst): l.Ports} }

// ParseLinkKey splits a bridge key into a link's ends.
func ParseLinkKey(k string) (src, dst string, ok bool) {
	rest, ok := strings.CutPrefix(k, KeyLinkPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ">")
}

func decodeLinks(ext map[string]string) []Link {
	var ls []Link
	for k, v := range ext {
		if src, dst, ok := ParseLinkKey(k); ok {
			ls = append(ls, Link{Src: src, Dst: dst, Ports: v})
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Src+">"+ls[i].Dst < ls[j].Src+">"+ls[j].Dst })
	return ls
}

// RemoteEnd says whether a link end names a container on another host,
// by its address (a, true), or a container here (false).
func RemoteEnd(end string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(end)
	return a, err == nil
}
