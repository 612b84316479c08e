package reconcile

import (
	"sort"
	"testing"

	"github.com/ovsnet/ovsnet/flows/openflow"

	"github.com/ovsnet/ovsnet/flows"
)

// flowIntentOf builds a flowIntent of one flow per cookie with the given prints.
func flowIntentOf(prints map[uint64]string, attached ...uint64) *flowIntent {
	fi := &flowIntent{prints: prints, attached: map[uint64]bool{}}
	for c := range prints {
		fi.fixed = append(fi.fixed, &openflow.Flow{Cookie: c, Table: 1}, &openflow.Flow{Cookie: c, Table: 2})
	}
	for _, c := range attached {
		fi.attached[c] = true
	}
	return fi
}

func changedCookies(t *testing.T, chs []flows.Change) []uint64 {
	t.Helper()
	var cs []uint64
	for _, ch := range chs {
		if ch.Mask != flows.ObjectMask {
			t.Errorf("change of %#x has mask %#x, want one object's", ch.Cookie, ch.Mask)
		}
		for _, f := range ch.Flows {
			if f.Cookie != ch.Cookie {
				t.Errorf("change of %#x carries a flow of %#x", ch.Cookie, f.Cookie)
			}
		}
		cs = append(cs, ch.Cookie)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	return cs
}

func TestUnexplained(t *testing.T) {
	br, p1, p2, l1 := flows.BridgeCookie(), flows.PortCookie("on1"), flows.PortCookie("on2"), flows.LinkCookie("a", "b")
	was := map[uint64]string{br: "b", p1: "1", l1: "l"}
	for _, tc := range []struct {
		name  string
		now   *flowIntent
		want  []uint64
		flows int // in the first change
	}{
		{"nothing changed", flowIntentOf(map[uint64]string{br: "b", p1: "1", l1: "l"}), nil, 0},
		{"port attached and ready", flowIntentOf(map[uint64]string{br: "b", p1: "1", l1: "l", p2: "2"}, p2), nil, 0},
		{"port not finished attaching", flowIntentOf(map[uint64]string{br: "b", p1: "1", l1: "l", p2: "2"}), []uint64{p2}, 2},
		{"port detached", flowIntentOf(map[uint64]string{br: "b", l1: "l"}), nil, 0},
		{"port changed in place (VLAN set)", flowIntentOf(map[uint64]string{br: "b", p1: "1 vlan 10", l1: "l"}, p1), []uint64{p1}, 2},
		{"bridge flows changed", flowIntentOf(map[uint64]string{br: "b icc off", p1: "1", l1: "l"}), []uint64{br}, 2},
		{"link removed", flowIntentOf(map[uint64]string{br: "b", p1: "1"}), []uint64{l1}, 0},
	} {
		got := unexplained(was, tc.now)
		cs := changedCookies(t, got)
		if len(cs) != len(tc.want) {
			t.Errorf("%s: changes of %x, want %x", tc.name, cs, tc.want)
			continue
		}
		for i := range cs {
			if cs[i] != tc.want[i] {
				t.Errorf("%s: changes of %x, want %x", tc.name, cs, tc.want)
			}
		}
		if len(got) > 0 && len(got[0].Flows) != tc.flows {
			t.Errorf("%s: %d flows in the change, want %d", tc.name, len(got[0].Flows), tc.flows)
		}
	}
}
