package nat

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Tables applies rules of one family with go-iptables, through whichever
// iptables backend the host uses (legacy or nft).
type Tables struct {
	ipt *iptables.IPTables
	v6  bool
}

// Open finds the host's iptables (IPv4: NAT, publishing, forwarding).
func Open() (*Tables, error) {
	ipt, err := iptables.New()
	if err != nil {
		return nil, fmt.Errorf("iptables: %w (apt-get install iptables)", err)
	}
	return &Tables{ipt: ipt}, nil
}

// Open6 finds the host's ip6tables. IPv6 subnets are routed, not
// translated: only forwarding rules (OVSNET-FORWARD, OVSNET-ISOLATE).
func Open6() (*Tables, error) {
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv6)
	if err != nil {
		return nil, fmt.Errorf("ip6tables: %w (apt-get install iptables)", err)
	}
	return &Tables{ipt: ipt, v6: true}, nil
}

// chains are the chains ovsnet owns in this family; all but OVSNET-USER
// (the last, IPv4 only) are synced and removed with the last bridge.
func (t *Tables) chains() []Rule {
	if t.v6 {
		return []Rule{{"filter", ChainForward, nil}, {"filter", ChainIsolate, nil}}
	}
	return []Rule{{"nat", ChainDNAT, nil}, {"nat", ChainPostrouting, nil}, {"filter", ChainForward, nil}, {"filter", ChainIsolate, nil}, {"filter", ChainTunnel, nil}, {"filter", ChainUser, nil}}
}

func (t *Tables) synced() []Rule {
	if t.v6 {
		return t.chains()
	}
	return t.chains()[:5]
}

// jumps are this family's rules in built-in chains.
func (t *Tables) jumps() []Rule {
	if t.v6 {
		return []Rule{{"filter", "FORWARD", append(comment("container traffic"), "-j", ChainForward)}}
	}
	return append(Jumps(), LoopbackGuard())
}

// base is what ensureBase puts first in its chain: the jumps, and in IPv4
// OVSNET-FORWARD's head.
func (t *Tables) base() []Rule {
	if t.v6 {
		return t.jumps()
	}
	return append(t.jumps(), ForwardHead())
}

// ensureBase creates ovsnet's chains and the jumps into them, and puts the
// administrator's chain first in OVSNET-FORWARD. Existing ones are left as
// they are; OVSNET-USER is never flushed.
func (t *Tables) ensureBase() (did []string, err error) {
	for _, c := range t.chains() {
		ok, err := t.ipt.ChainExists(c.Table, c.Chain)
		if err != nil {
			return did, err
		}
		if !ok {
			if err := t.ipt.NewChain(c.Table, c.Chain); err != nil {
				return did, err
			}
			did = append(did, "created chain "+c.Table+"/"+c.Chain)
		}
	}
	for _, j := range t.base() {
		n, err := t.count(j)
		if err != nil {
			return did, err
		}
		if n == 0 {
			// First in the chain: before other software's rules (and in
			// OVSNET-FORWARD, before ovsnet's accepts).
			if err := t.ipt.Insert(j.Table, j.Chain, 1, j.Spec...); err != nil {
				return did, fmt.Errorf("add %s: %w", j, err)
			}
			did = append(did, "added "+j.String())
		}
		for ; n > 1; n-- {
			if err := t.ipt.Delete(j.Table, j.Chain, j.Spec...); err != nil {
				return did, fmt.Errorf("remove a duplicate of %s: %w", j, err)
			}
			did = append(did, "removed a duplicate of "+j.String())
		}
	}
	return did, nil
}

// count is how many times r is in its chain.
func (t *Tables) count(r Rule) (int, error) {
	lines, err := t.ipt.List(r.Table, r.Chain)
	if err != nil {
		return 0, err
	}
	key, n := canon(r.Spec, false), 0
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "-A "+r.Chain+" "); ok && canon(strings.Fields(rest), true) == key {
			n++
		}
	}
	return n, nil
}

// Add appends rules: one iptables run each, which costs the same whatever
// the chains hold (a check first would not: iptables -C compares every
// rule, 6 ms at none, 19 ms at 1,000 here). Callers add a rule only when
// its OVSDB reservation was just made, so it is not there yet; reconcile
// removes any duplicate a crash could leave.
//
// Several rules go in one iptables-restore transaction instead (one ruleset
// load for the lot: publishing 1,000 ports in one call took 2.5 s as
// appends); if that fails (chains gone), rule by rule as below.
func (t *Tables) Add(rs ...Rule) error {
	if len(rs) > 1 && t.restore("-A", rs) == nil {
		return nil
	}
	based := false
	for _, r := range rs {
		err := t.ipt.Append(r.Table, r.Chain, r.Spec...)
		if err != nil && !based {
			// Most likely the chains are gone (a flush, -X): make them and
			// their jumps, then try once more. Checking them up front would
			// cost nine iptables runs on every publish.
			based = true
			if _, berr := t.ensureBase(); berr != nil {
				return berr
			}
			err = t.ipt.Append(r.Table, r.Chain, r.Spec...)
		}
		if err != nil {
			return fmt.Errorf("add %s: %w", r, err)
		}
	}
	return nil
}

// Delete removes rules; missing ones are fine. Several go in one
// iptables-restore transaction (unpublishing 1,000 ports one -D at a time
// took 41 s: on nft every run loads the whole ruleset); if one is missing
// that fails as a whole, and they go one by one.
func (t *Tables) Delete(rs ...Rule) error {
	if len(rs) > 1 && t.restore("-D", rs) == nil {
		return nil
	}
	var errs []error
	chains := map[string]bool{}
	for _, r := range rs {
		key := r.Table + "/" + r.Chain
		ok, seen := chains[key]
		if !seen {
			ok, _ = t.ipt.ChainExists(r.Table, r.Chain)
			chains[key] = ok
		}
		if !ok {
			continue
		}
		// One run: -D finds the rule itself; a missing rule is fine.
		if err := t.ipt.Delete(r.Table, r.Chain, r.Spec...); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

// Sync makes ovsnet's chains hold exactly want (in order), after flushes,
// chain deletions or hand edits, and returns what it changed. Running it
// twice changes nothing; OVSNET-USER's rules are never touched. Rules of
// the bridges named in keep (whose intent does not decode) stay as they
// are, after want's.
func (t *Tables) Sync(want []Rule, keep ...string) ([]string, error) {
	did, err := t.ensureBase()
	if err != nil {
		return did, err
	}
	byChain := map[string][]Rule{}
	for _, r := range want {
		byChain[r.Table+"/"+r.Chain] = append(byChain[r.Table+"/"+r.Chain], r)
	}
	if !t.v6 {
		byChain["filter/"+ChainForward] = append([]Rule{ForwardHead()}, byChain["filter/"+ChainForward]...)
	}
	for _, c := range t.synced() {
		key := c.Table + "/" + c.Chain
		d, err := t.syncChain(c.Table, c.Chain, byChain[key], keep)
		if err != nil {
			return did, err
		}
		did = append(did, d...)
	}
	return did, nil
}

func (t *Tables) syncChain(table, chain string, want []Rule, keep []string) ([]string, error) {
	lines, err := t.ipt.List(table, chain)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		spec := unquote(strings.Fields(strings.TrimPrefix(l, "-A "+chain)))
		have = append(have, canon(spec, false))
		for _, b := range keep {
			if slices.Contains(spec, "ovsnet: bridge "+b) {
				want = append(want, Rule{table, chain, spec})
			}
		}
	}
	var wantKeys []string
	for _, r := range want {
		wantKeys = append(wantKeys, canon(r.Spec, false))
	}
	if strings.Join(have, "\n") == strings.Join(wantKeys, "\n") {
		return nil, nil
	}
	// Rebuild in order. It happens only after drift (a flush, a hand edit),
	// when the chain is already wrong.
	if err := t.ipt.ClearChain(table, chain); err != nil {
		return nil, err
	}
	for _, r := range want {
		if err := t.ipt.Append(table, chain, r.Spec...); err != nil {
			return nil, fmt.Errorf("add %s: %w", r, err)
		}
	}
	return []string{fmt.Sprintf("rebuilt %s/%s (%d rules, had %d)", table, chain, len(want), len(have))}, nil
}

// canon turns a rule into a key that does not depend on the order in which
// iptables -S prints its options but keeps each option with its values and
// its negation: "! -i br1 -o br1" and "-i br1 ! -o br1" differ.
func canon(tokens []string, listed bool) string {
	if listed {
		tokens = unquote(tokens)
	}
	var clauses []string
	neg := false
	for i := 0; i < len(tokens); i++ {
		tok := tokens[i]
		if tok == "!" {
			neg = true
			continue
		}
		c := tok
		for i+1 < len(tokens) && !strings.HasPrefix(tokens[i+1], "-") && tokens[i+1] != "!" {
			i++
			c += " " + tokens[i]
		}
		if neg {
			c, neg = "! "+c, false
		}
		clauses = append(clauses, c)
	}
	sort.Strings(clauses)
	return strings.Join(clauses, " ; ")
}

// unquote rejoins the quoted comment iptables -S prints, split on spaces.
func unquote(tokens []string) []string {
	var out []string
	for i := 0; i < len(tokens); i++ {
		tok := tokens[i]
		if strings.HasPrefix(tok, `"`) {
			j := i
			for j < len(tokens)-1 && (!strings.HasSuffix(tokens[j], `"`) || (j == i && len(tok) == 1)) {
				j++
			}
			tok = strings.ReplaceAll(strings.Trim(strings.Join(tokens[i:j+1], " "), `"`), `\'`, `'`)
			i = j
		}
		out = append(out, tok)
	}
	return out
}

// RemoveAll deletes ovsnet's jumps and chains: nothing of ovsnet stays.
// OVSNET-USER goes only if the administrator left nothing in it.
func (t *Tables) RemoveAll() error {
	var errs []error
	for _, j := range t.jumps() {
		// A jump into a chain that is gone is gone too (iptables -C of it
		// fails on the missing chain): nothing to remove.
		if target := j.Spec[len(j.Spec)-1]; strings.HasPrefix(target, "OVSNET-") {
			if ok, err := t.ipt.ChainExists(j.Table, target); err == nil && !ok {
				continue
			}
		}
		if err := t.ipt.DeleteIfExists(j.Table, j.Chain, j.Spec...); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	for _, c := range t.synced() {
		if ok, _ := t.ipt.ChainExists(c.Table, c.Chain); ok {
			if err := t.ipt.ClearAndDeleteChain(c.Table, c.Chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if rs, err := t.ipt.List("filter", ChainUser); !t.v6 && err == nil && len(rs) <= 1 {
		if err := t.ipt.DeleteChain("filter", ChainUser); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// EnableForwarding turns on IPv4 forwarding (in this netns); the FORWARD
// policy is left as it is.
func EnableForwarding() error {
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
}

// EnableIPv6Forwarding turns on IPv6 forwarding (in this netns).
func EnableIPv6Forwarding() error {
	return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644)
}

// AllowLocalnet lets 127.0.0.1-published ports be DNATed out of dev.
func AllowLocalnet(dev string) error {
	return os.WriteFile("/proc/sys/net/ipv4/conf/"+dev+"/route_localnet", []byte("1"), 0o644)
}

// FlushUDP drops conntrack entries for a UDP host port, so that a mapping
// added or removed takes effect for flows already seen.
func FlushUDP(port uint16) error {
	f := &netlink.ConntrackFilter{}
	if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
		return err
	}
	if err := f.AddPort(netlink.ConntrackOrigDstPort, port); err != nil {
		return err
	}
	_, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	return err
}

// Backend is the iptables backend this host uses ("nf_tables" or
// "legacy"), "" without iptables.
func Backend() string {
	v, err := exec.Command("iptables", "-V").Output()
	if err != nil {
		return ""
	}
	if strings.Contains(string(v), "legacy") {
		return "legacy"
	}
	return "nf_tables"
}

// OtherBackend reports whether the iptables backend this host does not use
// holds ovsnet rules too (both legacy and nft): a sign of two ovsnets, or
// of a backend switch that left rules behind.
func OtherBackend() string {
	var other string
	switch Backend() {
	case "":
		return ""
	case "legacy":
		other = "iptables-nft-save"
	default:
		other = "iptables-legacy-save"
	}
	out, err := exec.Command(other).Output()
	if err == nil && strings.Contains(string(out), "OVSNET-") {
		return other
	}
	return ""
}

// restore applies op (-A or -D) to rs in one iptables-restore --noflush
// transaction: all or nothing. go-iptables has no batch interface.
func (t *Tables) restore(op string, rs []Rule) error {
	bin := "iptables-restore"
	if t.ipt.Proto() == iptables.ProtocolIPv6 {
		bin = "ip6tables-restore"
	}
	var tables []string
	byTable := map[string][]Rule{}
	for _, r := range rs {
		if _, ok := byTable[r.Table]; !ok {
			tables = append(tables, r.Table)
		}
		byTable[r.Table] = append(byTable[r.Table], r)
	}
	var b strings.Builder
	for _, tb := range tables {
		fmt.Fprintf(&b, "*%s\n", tb)
		for _, r := range byTable[tb] {
			b.WriteString(op + " " + r.Chain)
			for _, a := range r.Spec {
				b.WriteString(" " + restoreQuote(a))
			}
			b.WriteString("\n")
		}
		b.WriteString("COMMIT\n")
	}
	c := exec.Command(bin, "--noflush", "--wait")
	c.Stdin = strings.NewReader(b.String())
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", bin, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// restoreQuote quotes an argument for iptables-restore's line parser.
func restoreQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"'\\") {
		return a
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
}

func isNotExist(err error) bool {
	var e *iptables.Error
	return errors.As(err, &e) && e.IsNotExist()
}
