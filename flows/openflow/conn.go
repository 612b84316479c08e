package openflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovsnet/ovsnet/ovsdb"
)

// Timeout bounds a stall of an exchange with ovs-vswitchd: a time in which
// it neither reads what was sent nor answers nor works (its CPU time).
// It does not bound the whole exchange: ovs-vswitchd reads at most 50
// messages per iteration of its main loop, an iteration takes seconds at
// 10,000 ports on the userspace datapath, and adding 1,000 ports beside
// 9,000 is one iteration of minutes, so a bundle then takes minutes while
// ovs-vswitchd steadily progresses.
var Timeout = 2 * time.Minute

// writeChunk is the most written in one write: the socket frees the
// memory of a write once its reader has read all of it, so smaller writes
// let watchReading see ovs-vswitchd's reading at a finer grain.
const writeChunk = 4 << 10

// Socket is the management socket ovs-vswitchd opens for bridge, where
// ovs-ofctl finds it: $OVS_RUNDIR/BRIDGE.mgmt.
func Socket(bridge string) string {
	dir := os.Getenv("OVS_RUNDIR")
	if dir == "" {
		dir = "/var/run/openvswitch"
	}
	return filepath.Join(dir, bridge+".mgmt")
}

// Conn is an OpenFlow 1.4 connection to one bridge. Its methods may be
// called from several goroutines; exchanges are serialized.
type Conn struct {
	bridge string
	mu     sync.Mutex
	c      net.Conn
	xid    uint32
	// helloDue: the bridge's hello has not been read yet (Dial does not
	// wait for it); the first exchange reads it before anything else.
	helloDue bool
}

// Dial connects to bridge's management socket and sends its hello. The
// bridge's hello is read with the answers to the first exchange, which goes
// out right behind ours: ovs-vswitchd then reads both in the same iteration
// of its main loop, where waiting for its hello first would cost one more
// (an iteration takes ~1 s at 10,000 ports on the userspace datapath).
func Dial(bridge string) (*Conn, error) {
	sock := Socket(bridge)
	c, err := net.DialTimeout("unix", sock, Timeout)
	if err != nil {
		return nil, fmt.Errorf("openflow connection to bridge %s (%s): %w: is ovs-vswitchd running and the bridge there?", bridge, sock, err)
	}
	oc := &Conn{bridge: bridge, c: c, helloDue: true}
	c.SetDeadline(time.Now().Add(Timeout))
	// Hello with a version bitmap offering 1.4 only.
	hello := header(nil, typeHello, 0)
	hello = append(hello, 0, 1, 0, 8) // OFPHET_VERSIONBITMAP, length 8
	hello = be32(hello, 1<<version)
	if _, err := c.Write(finish(hello)); err != nil {
		c.Close()
		return nil, oc.wrap(err)
	}
	return oc, nil
}

// errNoOF14 says that the bridge's protocols column leaves OpenFlow 1.4 out.
func (c *Conn) errNoOF14(why string) error {
	return fmt.Errorf("bridge %s refused OpenFlow 1.4 (%s): add OpenFlow14 to its protocols (ovsnet add-br sets it)", c.bridge, why)
}

// offers14 says whether a hello offers OpenFlow 1.4: in its version bitmap
// if it has one, else by its header's (highest) version.
func offers14(m message) bool {
	b := m.body
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if n < 4 || n > len(b) {
			break
		}
		if typ == 1 && n >= 8 { // OFPHET_VERSIONBITMAP
			return binary.BigEndian.Uint32(b[4:])&(1<<version) != 0
		}
		adv := (n + 7) / 8 * 8 // elements are padded to 8 bytes
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return m.version >= version
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Open reports, without blocking or reading, whether the connection is
// still open at the other end: a connection whose ovs-vswitchd exited (or
// whose bridge went) has an end of file waiting. A message waiting (an
// echo request) is not an end.
func (c *Conn) Open() bool {
	sc, ok := c.c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	if err := rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		open = n > 0 || err == unix.EAGAIN
	}); err != nil {
		return false
	}
	return open
}

type message struct {
	version, typ uint8
	xid          uint32
	body         []byte
}

func (m message) errorText() string {
	if len(m.body) < 4 {
		return "malformed error"
	}
	t, code := binary.BigEndian.Uint16(m.body), binary.BigEndian.Uint16(m.body[2:])
	if name, ok := errorNames[[2]uint16{t, code}]; ok {
		return name
	}
	return fmt.Sprintf("error type %d code %d", t, code)
}

// errorNames are the errors a flow mod or bundle can meet, as OVS names them.
var errorNames = map[[2]uint16]string{
	{0, 0}:   "OFPHFC_INCOMPATIBLE",
	{1, 1}:   "OFPBRC_BAD_TYPE",
	{1, 5}:   "OFPBRC_EPERM",
	{2, 0}:   "OFPBAC_BAD_TYPE",
	{2, 4}:   "OFPBAC_BAD_OUT_PORT",
	{2, 13}:  "OFPBAC_BAD_SET_TYPE",
	{2, 15}:  "OFPBAC_BAD_SET_ARGUMENT",
	{3, 0}:   "OFPBIC_UNKNOWN_INST",
	{4, 3}:   "OFPBMC_BAD_FIELD",
	{4, 9}:   "OFPBMC_BAD_PREREQ",
	{4, 11}:  "OFPBMC_BAD_VALUE",
	{5, 1}:   "OFPFMFC_TABLE_FULL",
	{5, 2}:   "OFPFMFC_BAD_TABLE_ID",
	{5, 6}:   "OFPFMFC_BAD_COMMAND",
	{12, 1}:  "OFPMMFC_METER_EXISTS",
	{12, 2}:  "OFPMMFC_INVALID_METER",
	{12, 3}:  "OFPMMFC_UNKNOWN_METER",
	{12, 6}:  "OFPMMFC_BAD_RATE",
	{12, 7}:  "OFPMMFC_BAD_BURST",
	{12, 10}: "OFPMMFC_OUT_OF_METERS (the datapath has no meter left, or has none: turn flood bounds off with ovsnet set-flood-limit BRIDGE 0)",
	{17, 1}:  "OFPBFC_BAD_ID",
	{17, 5}:  "OFPBFC_BAD_FLAGS",
	{17, 12}: "OFPBFC_MSG_FAILED",
	{17, 13}: "OFPBFC_TIMEOUT",
	{17, 14}: "OFPBFC_BUNDLE_IN_PROGRESS",
}

// watchReading moves the connection's deadline on while ovs-vswitchd
// reads what was sent to it (the bytes it has not read yet, the socket's
// SIOCOUTQ, change: it read, or the writer could write more) or works
// (its CPU time grows by a quarter of the time watched), until the
// returned stop is called: the deadline catches an ovs-vswitchd that
// stopped, not one that is slow.
func (c *Conn) watchReading() (stop func()) {
	sc, ok := c.c.(syscall.Conn)
	if !ok {
		return func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	unread := func() int {
		n := -1
		raw.Control(func(fd uintptr) {
			if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
				n = v
			}
		})
		return n
	}
	done := make(chan struct{})
	go func() {
		every := Timeout / 8
		tick := time.NewTicker(every)
		defer tick.Stop()
		last, cpu := unread(), ovsdb.VswitchdCPU()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			n, now := unread(), ovsdb.VswitchdCPU()
			if n != last || (cpu >= 0 && now-cpu >= every/4) {
				c.c.SetDeadline(time.Now().Add(Timeout))
			}
			last, cpu = n, now
		}
	}()
	return func() { close(done) }
}

// write writes out in chunks of writeChunk.
func (c *Conn) write(out []byte) error {
	for len(out) > 0 {
		n := min(len(out), writeChunk)
		if _, err := c.c.Write(out[:n]); err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

func (c *Conn) read() (message, error) {
	var h [8]byte
	if _, err := io.ReadFull(c.c, h[:]); err != nil {
		return message{}, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 8 {
		return message{}, fmt.Errorf("malformed OpenFlow message (length %d)", n)
	}
	m := message{version: h[0], typ: h[1], xid: binary.BigEndian.Uint32(h[4:]), body: make([]byte, n-8)}
	_, err := io.ReadFull(c.c, m.body)
	return m, err
}

func (c *Conn) wrap(err error) error {
	return fmt.Errorf("openflow connection to bridge %s: %w", c.bridge, err)
}

// ConnError is a failure of the connection itself (not of a flow): the
// connection is closed and the bundle may or may not have been committed.
// Bundles replace flows by cookie, so sending it again on a new connection
// is safe.
type ConnError struct{ Err error }

func (e *ConnError) Error() string { return e.Err.Error() }
func (e *ConnError) Unwrap() error { return e.Err }

// Change replaces every flow whose cookie matches Cookie under Mask with
// Flows, after making the Meters they use exist with their rates (a meter
// of a change that is dropped stays; reconcile removes it).
type Change struct {
	Cookie, Mask uint64
	Flows        []*Flow
	Meters       []Meter
}

// Bundle makes the changes in one atomic, ordered bundle: each object's old
// flows go and its new ones come in the same commit, so no packet sees a
// half state, and a flow ovs-vswitchd refuses leaves the table untouched.
// It returns once ovs-vswitchd has committed the bundle.
func (c *Conn) Bundle(changes ...Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.xid++
	id := c.xid
	const flags = 1 | 2 // OFPBF_ATOMIC | OFPBF_ORDERED
	ctl := func(typ uint16) []byte {
		c.xid++
		b := header(nil, typeBundleCtl, c.xid)
		b = be32(b, id)
		b = be16(b, typ)
		return finish(be16(b, flags))
	}
	texts := map[uint32]string{} // what each xid carried, for errors
	// Meter mods cannot be bundled: the meters go ahead of the bundle (in
	// the same write), those found there are modified before the commit.
	adds := map[uint32]Meter{}
	var out []byte
	for _, ch := range changes {
		out = c.addMeters(out, ch.Meters, texts, adds)
	}
	out = append(out, ctl(0)...) // OPEN_REQUEST
	texts[c.xid] = "open bundle"
	addMsg := func(msg []byte, xid uint32) {
		b := header(nil, typeBundleAdd, xid)
		b = be32(b, id)
		b = be16(b, 0)
		b = be16(b, flags)
		out = append(out, finish(append(b, msg...))...)
	}
	for _, ch := range changes {
		c.xid++
		addMsg(DeleteByCookie(ch.Cookie, ch.Mask, c.xid), c.xid)
		texts[c.xid] = fmt.Sprintf("delete cookie=0x%x/0x%x", ch.Cookie, ch.Mask)
		for _, f := range ch.Flows {
			c.xid++
			addMsg(FlowMod(f, c.xid), c.xid)
			texts[c.xid] = f.String()
		}
	}
	// ovs-vswitchd drops an add it refuses and would still commit the
	// rest, so the adds end in a barrier and the bundle is committed only if
	// none was refused, and discarded otherwise: atomic, at the price of a
	// second (cheap: 0.15 ms idle, ~4 ms at 1,000 ports) exchange.
	c.xid++
	barrier := c.xid
	out = append(out, finish(header(nil, typeBarrierReq, barrier))...)
	errs, err := c.exchange(out, barrier, texts, nil)
	if err != nil {
		return err
	}
	modify, errs := existing(errs, adds)
	if len(modify) > 0 && len(errs) == 0 {
		errs = c.modifyMeters(modify)
	}
	last := uint16(4) // COMMIT_REQUEST
	if len(errs) > 0 {
		last = 6 // DISCARD_REQUEST
	}
	end := ctl(last)
	more, err := c.exchange(end, c.xid, map[uint32]string{c.xid: "commit bundle"}, nil)
	if err != nil {
		return err
	}
	errs = append(errs, more...)
	if len(errs) > 0 {
		return fmt.Errorf("install flows on %s: %w", c.bridge, errors.Join(errs...))
	}
	return nil
}

// FlowCounts returns the number of flows in each of tables, asked in one
// round trip (one aggregate request per table, sent together): a check of
// a table against its intent that costs one exchange, where a dump of
// 50,000 flows takes many iterations of ovs-vswitchd's main loop.
func (c *Conn) FlowCounts(tables []uint8) (map[uint8]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []byte
	asked := map[uint32]uint8{}
	texts := map[uint32]string{}
	for _, t := range tables {
		c.xid++
		out = append(out, AggregateRequest(t, c.xid)...)
		asked[c.xid] = t
		texts[c.xid] = fmt.Sprintf("count flows in table %d", t)
	}
	counts := map[uint8]int{}
	errs, err := c.exchange(out, c.xid, texts, func(m message) {
		if t, ok := asked[m.xid]; ok && m.typ == typeMultiRep {
			if n, ok := aggregateFlowCount(m.body); ok {
				counts[t] = n
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("bridge %s: %w", c.bridge, errors.Join(errs...))
	}
	if len(counts) != len(asked) {
		return nil, fmt.Errorf("bridge %s: %d of %d flow counts answered", c.bridge, len(counts), len(asked))
	}
	return counts, nil
}

// CookieCount is the number of flows, in every table, whose cookie matches
// cookie under mask: one object's flows in one round trip.
func (c *Conn) CookieCount(cookie, mask uint64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.xid++
	n, answered := 0, false
	errs, err := c.exchange(AggregateCookieRequest(TableAll, cookie, mask, c.xid), c.xid,
		map[uint32]string{c.xid: fmt.Sprintf("count flows of cookie %#x", cookie)}, func(m message) {
			if m.typ == typeMultiRep {
				n, answered = aggregateFlowCount(m.body)
			}
		})
	switch {
	case err != nil:
		return 0, err
	case len(errs) > 0:
		return 0, fmt.Errorf("bridge %s: %w", c.bridge, errors.Join(errs...))
	case !answered:
		return 0, fmt.Errorf("bridge %s: the flow count was not answered", c.bridge)
	}
	return n, nil
}

// exchange writes out and reads every message up to the answer to xid
// `until` (a reply or an error), returning the errors ovs-vswitchd sent,
// described by texts, and passing every other message to got (if not nil).
// Reading while writing keeps a large bundle from deadlocking with
// ovs-vswitchd's error replies; reading up to the answer keeps the stream
// in step for the next exchange whatever failed.
func (c *Conn) exchange(out []byte, until uint32, texts map[uint32]string, got func(message)) ([]error, error) {
	c.c.SetDeadline(time.Now().Add(Timeout))
	defer c.watchReading()()
	werr := make(chan error, 1)
	go func() { werr <- c.write(out) }()
	var errs []error
	for done := false; !done; {
		m, err := c.read()
		c.c.SetDeadline(time.Now().Add(Timeout))
		if err != nil {
			c.c.Close() // the stream is out of step now: callers redial
			if we := <-werr; we != nil {
				err = we
			}
			return nil, &ConnError{c.wrap(err)}
		}
		if c.helloDue {
			// The bridge's hello comes first, or its refusal of 1.4.
			c.helloDue = false
			var err error
			switch {
			case m.typ == typeError:
				err = c.errNoOF14(m.errorText())
			case m.typ != typeHello:
				err = fmt.Errorf("bridge %s: expected a hello, got OpenFlow message type %d", c.bridge, m.typ)
			case !offers14(m):
				err = c.errNoOF14(fmt.Sprintf("its hello offers OpenFlow versions up to wire version %d", m.version))
			}
			if err != nil {
				c.c.Close()
				<-werr
				return nil, err
			}
			continue
		}
		switch {
		case m.typ == typeEchoReq:
			// ovs-vswitchd probes idle connections; the exchange under way
			// answers it (any message does), and writing a reply here
			// could interleave with what is being written.
		case m.typ == typeError:
			what := texts[m.xid]
			if what == "" {
				what = fmt.Sprintf("message %d", m.xid)
			}
			r := &refusal{xid: m.xid, what: what, name: m.errorText()}
			if len(m.body) >= 4 {
				r.typ, r.code = binary.BigEndian.Uint16(m.body), binary.BigEndian.Uint16(m.body[2:])
			}
			errs = append(errs, r)
			done = m.xid == until
		default:
			if got != nil {
				got(m)
			}
			done = m.xid == until
		}
	}
	if err := <-werr; err != nil {
		c.c.Close()
		return nil, &ConnError{c.wrap(err)}
	}
	return errs, nil
}
