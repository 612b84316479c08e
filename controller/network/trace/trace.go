// Package trace is ofproto/trace in ovsnet's words: the packet a trace
// sends (the first of a connection, PacketSpec), what ovs-vswitchd's
// answer says happened to it in ovsnet's pipeline (Parse: the tables it
// passed, whether it reached its destination, and why not), and the
// trace between two endpoints on one of ovsnet's bridges (Bridge).
package trace

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ovsnet/ovsnet/flows"
)

// Options describe the packet to trace.
type Options struct {
	Bridge, From, To string
	Proto            string // icmp (default), tcp, udp
	DPort            int
}

// Step is one table the packet passed.
type Step struct {
	Table    int    `json:"table"`
	Stage    string `json:"stage"`
	Match    string `json:"match"`
	Priority int    `json:"priority"`
	Actions  string `json:"actions"`
}

// Result is what ofproto/trace said, in ovsnet's words.
type Result struct {
	Packet  string `json:"packet"`
	Steps   []Step `json:"steps"`
	Allowed bool   `json:"allowed"`
	Verdict string `json:"verdict"`
	// Local, on an OVN network whose source is on this chassis: what its
	// integration bridge does with the packet (ofproto/trace).
	Local string `json:"local,omitempty"`
	// Remotes: the packet leaves through the tunnels for these hosts,
	// whose pipelines decide (a container on another host of the mesh).
	Remotes []string `json:"leaves_for,omitempty"`
	Raw     string   `json:"raw,omitempty"`
}

// PacketSpec is the ofproto/trace flow for the first packet of a connection.
func PacketSpec(inPort int, srcMAC, dstMAC string, src, dst netip.Addr, proto string, dport int) (string, error) {
	l3 := fmt.Sprintf("nw_src=%s,nw_dst=%s", src, dst)
	v6 := ""
	if src.Is6() {
		l3, v6 = fmt.Sprintf("ipv6_src=%s,ipv6_dst=%s", src, dst), "6"
	}
	var l4 string
	switch proto {
	case "", "icmp":
		if dport != 0 {
			return "", fmt.Errorf("--dport needs --proto tcp or udp")
		}
		l4 = "icmp,icmp_type=8,icmp_code=0"
		if v6 != "" {
			l4 = "icmp6,icmp_type=128,icmp_code=0"
		}
	case "tcp", "udp":
		if dport < 1 || dport > 65535 {
			return "", fmt.Errorf("--proto %s needs --dport in 1..65535", proto)
		}
		l4 = fmt.Sprintf("%s%s,%s_src=40000,%s_dst=%d", proto, v6, proto, proto, dport)
		if proto == "tcp" {
			l4 += ",tcp_flags=0x002" // SYN: the first packet
		}
	default:
		return "", fmt.Errorf("unknown protocol %q: use icmp, tcp or udp", proto)
	}
	// Protocol first, then every field after the ones it depends on.
	proto4, l4fields, _ := strings.Cut(l4, ",")
	return fmt.Sprintf("%s,in_port=%d,dl_src=%s,dl_dst=%s,%s,%s", proto4, inPort, srcMAC, dstMAC, l3, l4fields), nil
}

var (
	stepRE = regexp.MustCompile(`^\s*(\d+)\. (.*?)(?:, )?priority (\d+)`)
	missRE = regexp.MustCompile(`^\s*(\d+)\. No match`)
	dpRE   = regexp.MustCompile(`^Datapath actions: (.*)$`)
	outRE  = regexp.MustCompile(`-> output port is (\S+)`)
	// why the pipeline drops it (flows.RegDrop), as OVS writes the load
	whyRE = regexp.MustCompile(`^(?:load:(0x[0-9a-f]+)->NXM_NX_REG7\[\]|set_field:(0x[0-9a-f]+)->reg7)$`)
)

// Parse reads ofproto/trace output of ovsnet's pipeline: the tables
// passed and the final datapath actions (after any conntrack
// recirculation); want is the OpenFlow ports any of which delivers it.
func Parse(out string, want ...string) *Result {
	r := &Result{Raw: out}
	var last *Step
	final := ""
	delivered := false
	var why flows.DropReason
	for _, l := range strings.Split(out, "\n") {
		if m := stepRE.FindStringSubmatch(l); m != nil {
			t, _ := strconv.Atoi(m[1])
			p, _ := strconv.Atoi(m[3])
			if flows.Table(t) == flows.TableDrop {
				if last != nil { // the verdict's end: the step before says where
					last.Actions = strings.TrimPrefix(last.Actions+", drop", ", ")
				}
				last = nil
				continue
			}
			r.Steps = append(r.Steps, Step{Table: t, Stage: flows.Table(t).Describe(), Match: strings.TrimSuffix(m[2], ","), Priority: p})
			last = &r.Steps[len(r.Steps)-1]
			continue
		}
		if m := missRE.FindStringSubmatch(l); m != nil {
			t, _ := strconv.Atoi(m[1])
			r.Steps = append(r.Steps, Step{Table: t, Stage: flows.Table(t).Describe(), Match: "no flow", Priority: -1, Actions: "drop"})
			last = &r.Steps[len(r.Steps)-1]
			continue
		}
		if m := dpRE.FindStringSubmatch(l); m != nil {
			final = strings.TrimSpace(m[1])
			continue
		}
		if m := outRE.FindStringSubmatch(l); m != nil && last != nil && slices.Contains(want, m[1]) {
			delivered = true
		}
		if last != nil && strings.HasPrefix(l, "    ") && !strings.HasPrefix(strings.TrimSpace(l), "->") {
			a := strings.TrimSpace(l)
			if m := whyRE.FindStringSubmatch(a); m != nil {
				v, _ := strconv.ParseUint(m[1]+m[2], 0, 32)
				why = flows.DropReason(v)
				continue
			}
			if a == "resubmit(,"+strconv.Itoa(int(flows.TableDrop))+")" {
				continue
			}
			// Conntrack's bookkeeping: the pre-recirculation pipeline "drops"
			// and the packet thaws in the ct() table.
			if a == "thaw" || strings.HasPrefix(a, "Resuming from table") || (a == "drop" && strings.HasPrefix(last.Actions, "ct(")) {
				continue
			}
			// A port written in the action (a tunnel's), not taken from a
			// register ("-> output port is N" above).
			if port, ok := strings.CutPrefix(a, "output:"); ok && slices.Contains(want, port) {
				delivered = true
			}
			if last.Actions != "" {
				last.Actions += ", "
			}
			last.Actions += a
		}
	}
	// Allowed means the pipeline output the packet to the destination's port
	// and the datapath really sends it ("drop", or only conntrack and
	// recirculation, is no delivery).
	r.Allowed = delivered && containsOutput(final)
	if r.Allowed {
		r.Verdict = "allowed"
		return r
	}
	r.Verdict = "dropped (" + dropReason(r.Steps, why) + ")"
	return r
}

func containsOutput(dp string) bool {
	for _, a := range strings.Split(dp, ",") {
		if _, err := strconv.Atoi(strings.TrimSpace(a)); err == nil {
			return true
		}
	}
	return false
}

// dropReason explains why a dropped packet was: the reason the pipeline
// gave (why), else what the last table it passed is there to drop (a
// bridge whose flows predate the reasons).
func dropReason(steps []Step, why flows.DropReason) string {
	if len(steps) == 0 {
		return "no flow took the packet"
	}
	s := steps[len(steps)-1]
	t := flows.Table(s.Table)
	where := fmt.Sprintf("table %d, %s", s.Table, t.Describe())
	switch {
	case why != 0:
		return where + ": " + why.String()
	case t == flows.TableClassifier:
		return where + ": the packet came in on a port ovsnet does not know"
	case t == flows.TableSpoofGuard && s.Priority == flows.PrioGuard:
		return where + ": containers may not send router advertisements or DHCP server replies"
	case t == flows.TableSpoofGuard:
		return where + ": the source MAC or address is not the port's own"
	case t == flows.TableARPND:
		return where + ": nobody on this bridge owns the target address"
	case t == flows.TableL2:
		return where + ": the destination MAC is not on this bridge in this VLAN"
	case t == flows.TableIsolation:
		return where + ": non-IP traffic between containers is not allowed with icc=false"
	case t == flows.TableLinks:
		return where + ": no link allows this new connection"
	}
	return where
}

// DatapathActions is what ofproto/trace's output out says the datapath
// does with the packet ("none": nothing).
func DatapathActions(out string) string {
	final := "none"
	for _, l := range strings.Split(out, "\n") {
		if m := dpRE.FindStringSubmatch(l); m != nil {
			final = strings.TrimSpace(m[1])
		}
	}
	return final
}
