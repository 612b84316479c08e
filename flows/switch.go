package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/ovsnet/ovsnet/appctl"
	"github.com/ovsnet/ovsnet/flows/openflow"
)

// Switch sends flows to bridges: changes in atomic OpenFlow
// 1.4 bundles over one persistent connection per bridge (package openflow),
// full-table replacement and comparison through ovs-ofctl.
type Switch struct {
	mu     sync.Mutex
	conns  map[string]*openflow.Conn
	epochs map[string]uint64 // of each bridge's connection (Epoch)
	dials  uint64

	// Group commit of concurrent Applies to one bridge (the controller's
	// attach API serves many CLIs at once): while one bundle is in flight,
	// the changes that arrive wait and then go together in the next.
	bmu     sync.Mutex
	pending map[string]*batch
	busy    map[string]bool
	bundle  func(bridge string, changes []Change) error // one round trip; tests replace it
}

// batch is the Applies that go to a bridge in one bundle.
type batch struct {
	changes [][]Change // one entry per caller
	errs    []error
	done    chan struct{}
}

// NewSwitch returns a Switch with no connections yet: each bridge's is made
// on its first change and kept.
func NewSwitch() *Switch {
	s := &Switch{conns: map[string]*openflow.Conn{}, epochs: map[string]uint64{}, pending: map[string]*batch{}, busy: map[string]bool{}}
	s.bundle = s.send
	return s
}

// Change replaces every flow whose cookie matches Cookie under Mask with Flows.
type Change = openflow.Change

func (s *Switch) conn(bridge string) (*openflow.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[bridge]; c != nil {
		return c, nil
	}
	c, err := openflow.Dial(bridge)
	if err != nil {
		return nil, err
	}
	s.conns[bridge] = c
	s.dials++
	s.epochs[bridge] = s.dials
	return c, nil
}

// Epoch identifies bridge's current OpenFlow connection: it changes with
// every new connection. open says that its ovs-vswitchd has not closed it,
// as it does when it exits (a restart takes the bridge's flows with it).
// So an epoch that is open and the same as at an earlier exchange means
// the same ovs-vswitchd, with no round trip to it. No connection: 0, false.
func (s *Switch) Epoch(bridge string) (epoch uint64, open bool) {
	s.mu.Lock()
	c, epoch := s.conns[bridge], s.epochs[bridge]
	s.mu.Unlock()
	if c == nil {
		return 0, false
	}
	return epoch, c.Open()
}

// Prepare connects to bridge ahead of its first change, so that the
// connection's set-up (one iteration of ovs-vswitchd's main loop, which
// slows with the port count) overlaps the caller's other work. Errors are
// left for Apply to report.
func (s *Switch) Prepare(bridge string) {
	go s.conn(bridge)
}

// Forget closes bridge's connection (after the bridge is deleted, or to
// make the next change reconnect).
func (s *Switch) Forget(bridge string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[bridge]; c != nil {
		c.Close()
		delete(s.conns, bridge)
	}
}

// Close closes every connection.
func (s *Switch) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for b, c := range s.conns {
		c.Close()
		delete(s.conns, b)
	}
}

// Apply makes the changes in one atomic bundle: each object's old flows go
// and its new ones come in the same commit, so no packet sees a half state.
// A connection that broke (ovs-vswitchd restarted, or dropped an idle
// connection) is redialled once; bundles replace by cookie, so resending is
// safe.
//
// Concurrent Applies to one bridge share round trips: those that arrive
// while a bundle is in flight go together in the next one (atomic as a
// whole; if it is refused, each goes again alone, so one caller's bad flow
// fails only that caller).
func (s *Switch) Apply(bridge string, changes ...Change) error {
	if len(changes) == 0 {
		return nil
	}
	s.bmu.Lock()
	b := s.pending[bridge]
	if b == nil {
		b = &batch{done: make(chan struct{})}
		s.pending[bridge] = b
	}
	i := len(b.changes)
	b.changes = append(b.changes, changes)
	lead := !s.busy[bridge]
	s.busy[bridge] = true
	s.bmu.Unlock()
	if lead {
		s.lead(bridge)
	}
	<-b.done
	return b.errs[i]
}

// lead sends the pending batch of bridge, then hands the bridge to a new
// leader if more arrived meanwhile, so that no caller waits for others'
// bundles after its own.
func (s *Switch) lead(bridge string) {
	s.bmu.Lock()
	b := s.pending[bridge]
	delete(s.pending, bridge)
	s.bmu.Unlock()

	b.errs = make([]error, len(b.changes))
	var all []Change
	for _, ch := range b.changes {
		all = append(all, ch...)
	}
	if err := s.bundle(bridge, all); err != nil {
		if len(b.changes) == 1 {
			b.errs[0] = err
		} else {
			// The bundle was discarded whole: find whose change it was.
			for j, ch := range b.changes {
				b.errs[j] = s.bundle(bridge, ch)
			}
		}
	}
	close(b.done)

	s.bmu.Lock()
	defer s.bmu.Unlock()
	if s.pending[bridge] != nil {
		go s.lead(bridge)
		return
	}
	s.busy[bridge] = false
}

// send makes changes in one bundle over bridge's kept connection.
func (s *Switch) send(bridge string, changes []Change) error {
	return s.withConn(bridge, func(c *openflow.Conn) error { return c.Bundle(changes...) })
}

// Spreading: ovs-vswitchd reads at most 50 OpenFlow messages from one
// connection per iteration of its main loop (ofconn_run in
// ofproto/connmgr.c), and on the userspace datapath an iteration takes about
// 1 s at 10,000 ports, so a bulk attach's 6,000 flow messages sent down one
// connection waited some 120 iterations. ApplySpread sends large changes
// down parallel connections instead, at most spreadMsgs messages each.
const (
	spreadMsgs = 300
	maxSpread  = 16
)

// ApplySpread makes the changes as Apply does when they are few; many go
// as several bundles over parallel connections. Each change stays whole in
// one atomic bundle (an object's old flows go and its new ones come
// together), but changes in different bundles land apart: after an error
// some may have landed, so the caller undoes them (bulk attach deletes the
// new ports' flows).
func (s *Switch) ApplySpread(bridge string, changes ...Change) error {
	msgs := 0
	for _, ch := range changes {
		msgs += 1 + len(ch.Flows) // the delete by cookie, the adds
	}
	k := min(maxSpread, (msgs+spreadMsgs-1)/spreadMsgs)
	if k <= 1 {
		return s.Apply(bridge, changes...)
	}
	groups := spread(changes, k, (msgs+k-1)/k)
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				errs[i] = s.Apply(bridge, g...) // the bridge's kept connection
				return
			}
			// A connection of its own, closed after (redialled once, as
			// Apply's is, if it breaks).
			own := NewSwitch()
			defer own.Close()
			errs[i] = own.Apply(bridge, g...)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// spread cuts changes, in order, into at most k groups of about per
// messages each.
func spread(changes []Change, k, per int) [][]Change {
	var groups [][]Change
	n := 0
	for _, ch := range changes {
		if len(groups) == 0 || (n >= per && len(groups) < k) {
			groups = append(groups, nil)
			n = 0
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], ch)
		n += 1 + len(ch.Flows)
	}
	return groups
}

// withConn runs do on bridge's connection, redialling once if the
// connection broke (ovs-vswitchd restarted, or dropped an idle connection).
// Unserved says err is a bridge's management socket that no ovs-vswitchd
// answers on (stopped, or restarting): that bridge has no flows then, and
// the ovs-vswitchd that comes back starts with none.
func Unserved(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

func (s *Switch) withConn(bridge string, do func(*openflow.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.conn(bridge)
		if err != nil {
			return err
		}
		err = do(c)
		var ce *openflow.ConnError
		if errors.As(err, &ce) && attempt == 0 {
			s.Forget(bridge)
			continue
		}
		return err
	}
}

// WaitRevalidated returns once ovs-vswitchd's revalidators have checked
// the datapath's cached flows against the flow tables as they are now
// (ovs-appctl revalidator/wait): a change that takes access away is in
// force for every packet only then.
func (s *Switch) WaitRevalidated(ctx context.Context) error { return appctl.WaitRevalidated(ctx) }

// CookieCount is how many flows of bridge carry cookie under mask.
func (s *Switch) CookieCount(bridge string, cookie, mask uint64) (n int, err error) {
	err = s.withConn(bridge, func(c *openflow.Conn) (err error) {
		n, err = c.CookieCount(cookie, mask)
		return err
	})
	return n, err
}

// FlowCounts returns how many flows each of tables holds on bridge, in one
// exchange.
func (s *Switch) FlowCounts(bridge string, tables []uint8) (counts map[uint8]int, err error) {
	err = s.withConn(bridge, func(c *openflow.Conn) (err error) {
		counts, err = c.FlowCounts(tables)
		return err
	})
	return counts, err
}

// ReplaceAll makes the bridge's flow table exactly fs in one bundle
// (ovs-ofctl replace-flows), and its meters exactly ms: flows that did not
// change stay in place, so a full resync drops no packet, and flows and
// meters ovsnet did not make (drift) are removed. The meters are set
// first (a flow needs its meter) and pruned last (a meter's deletion takes
// the flows using it along).
func (s *Switch) ReplaceAll(bridge string, fs []*openflow.Flow, ms []openflow.Meter) error {
	if err := s.withConn(bridge, func(c *openflow.Conn) error { return c.SetMeters(ms) }); err != nil {
		return err
	}
	if _, err := ofctl(fs, "--bundle", "replace-flows", bridge, "-"); err != nil {
		return err
	}
	return s.withConn(bridge, func(c *openflow.Conn) error {
		have, err := c.Meters()
		if err != nil {
			return err
		}
		_, extra := meterDiff(have, ms)
		return c.DeleteMeters(extra)
	})
}

// DeleteMeters deletes bridge's meters ids (those of ports that went).
func (s *Switch) DeleteMeters(bridge string, ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	return s.withConn(bridge, func(c *openflow.Conn) error { return c.DeleteMeters(ids) })
}

// MeterDrift counts bridge's meters that are not as ms says: missing or
// at another rate (wrong), and those ms does not have (extra).
func (s *Switch) MeterDrift(bridge string, ms []openflow.Meter) (wrong, extra int, err error) {
	err = s.withConn(bridge, func(c *openflow.Conn) error {
		have, err := c.Meters()
		w, x := meterDiff(have, ms)
		wrong, extra = w, len(x)
		return err
	})
	return wrong, extra, err
}

// meterDiff compares the meters a bridge has with those it should: how
// many of want are missing or differ, and the IDs it should not have.
func meterDiff(have map[uint32]openflow.Meter, want []openflow.Meter) (wrong int, extra []uint32) {
	keep := map[uint32]bool{}
	for _, m := range want {
		keep[m.ID] = true
		if have[m.ID] != m {
			wrong++
		}
	}
	for id := range have {
		if !keep[id] {
			extra = append(extra, id)
		}
	}
	return wrong, extra
}

// Diff counts the flows on the bridge that are not in fs (removed by a
// ReplaceAll) and those in fs not on the bridge (added): drift, as
// ovs-ofctl diff-flows sees it.
func (s *Switch) Diff(bridge string, fs []*openflow.Flow) (added, removed int, err error) {
	// diff-flows reads a file, not stdin.
	f, err := os.CreateTemp("", "ovsnet-flows-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	for _, fl := range fs {
		f.WriteString(fl.String() + "\n")
	}
	if err := f.Close(); err != nil {
		return 0, 0, err
	}
	out, err := ofctl(nil, "diff-flows", bridge, f.Name())
	if err != nil {
		return 0, 0, err
	}
	if os.Getenv("OVSNET_TRACE") != "" && out != "" {
		fmt.Fprintf(os.Stderr, "trace flow drift on %s:\n%s", bridge, out)
	}
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "+"):
			added++
		case strings.HasPrefix(l, "-"):
			removed++
		}
	}
	return added, removed, nil
}

// ofctlArgs puts "--" before the command: a bridge's name is never read
// as an option (one made by hand, or by an older ovsnet, may start with a
// dash).
func ofctlArgs(args []string) []string {
	argv := []string{"-O", "OpenFlow14"}
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			return append(append(append(argv, args[:i]...), "--"), args[i:]...)
		}
	}
	return append(argv, args...)
}

// ofctl runs ovs-ofctl (OpenFlow 1.4) with fs as its stdin, one flow a line.
func ofctl(fs []*openflow.Flow, args ...string) (string, error) {
	var in, out, errb bytes.Buffer
	for _, f := range fs {
		in.WriteString(f.String() + "\n")
	}
	cmd := exec.Command("ovs-ofctl", ofctlArgs(args)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &errb
	// diff-flows exits 2 when the flow tables differ.
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); !(ok && ee.ExitCode() == 2 && args[0] == "diff-flows") {
			return "", fmt.Errorf("ovs-ofctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
	}
	return out.String(), nil
}
