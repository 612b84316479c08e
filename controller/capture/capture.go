// Package capture shows one container interface's traffic as the switch
// sees it. An OVS mirror copies what the interface's port receives and
// what is sent to it (so also what the pipeline then drops, which the
// container's own tools never see) to a port capture makes: an internal
// port in the host, which it reads with a packet socket and writes as
// pcap. The mirror and the port go when the capture ends; a capture
// killed before that leaves them marked with its process (intent.Capture),
// and reconcile's Sweep removes them once that process is gone.
package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"golang.org/x/net/bpf"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/openflow"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Options is what to capture.
type Options struct {
	Network   string // a bridge, an OVN network or a Docker network
	Container string // its ID or the runtime's name for it
	Iface     string // the container's interface; "": its only one on the network
	Filter    string // a tcpdump filter expression; "": every packet
	Format    Format // "": PcapNG
}

// Session is one capture under way: its mirror and port exist until Close.
type Session struct {
	db     *ovsdb.Client
	Bridge string // the OVS bridge holding the captured port
	Of     string // the captured interface's OVS name
	Port   string // the capture port's name (and its mirror's)
	// NoMarks says why the packets the pipeline drops are not marked (nil:
	// they are).
	NoMarks error
	sock    *socket
	format  Format
	flows   network.OpenFlow
	drops   *openflow.Listener // the pipeline's word of drops; nil: none
	cookie  uint64             // the capture's flows'
	filter  *bpf.VM            // the filter, for the pipeline's word; nil: all
}

// Open resolves the interface o names, makes the capture port and the
// mirror to it in one transaction, opens the port for reading, and (on
// ovsnet's own pipeline, when writing pcapng) has the pipeline's drops of
// the interface's packets handed to the capture. On any failure nothing
// it made is left.
func Open(ctx context.Context, h *network.Host, o Options) (*Session, error) {
	if o.Format == "" {
		o.Format = PcapNG
	}
	if o.Format != PcapNG && o.Format != Pcap {
		return nil, fmt.Errorf("capture format %q: want pcapng or pcap", o.Format)
	}
	prog, err := compileFilter(o.Filter)
	if err != nil {
		return nil, err
	}
	ci, err := h.FindContainerIface(ctx, o.Network, o.Container, o.Iface)
	if err != nil {
		return nil, err
	}
	target, port := ci.Iface, ci.Port
	c, err := self(target.Name, ci.Bridge)
	if err != nil {
		return nil, err
	}
	s := &Session{db: h.DB, flows: h.Flows, Bridge: ci.Bridge, Of: target.Name, Port: "ovcap" + c.suffix, format: o.Format, NoMarks: ci.NoDropMarks}
	s.cookie = flows.CaptureCookie(s.Port)
	if s.NoMarks == nil && o.Format == Pcap {
		s.NoMarks = errors.New("pcap has no room for marks (write pcapng)")
	}
	if s.NoMarks == nil {
		if s.drops, err = openflow.Listen(s.Bridge); err != nil {
			return nil, err
		}
		s.filter = filterVM(prog)
	}
	keys := c.Encode()
	_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		np := tx.AddPorts(s.Bridge, ovsdb.PortSpec{Name: s.Port, Type: "internal", ExternalIDs: keys, PortIDs: keys})
		tx.AddMirror(s.Bridge, ovsdb.MirrorSpec{Name: s.Port, Select: []string{port.UUID}, Output: np[0].Port, ExternalIDs: keys})
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("add the capture port of %s on %s: %w", target.Name, s.Bridge, err), s.closeDrops())
	}
	if s.sock, err = s.open(ctx, prog); err != nil {
		return nil, errors.Join(err, s.remove())
	}
	if err := s.markDrops(target); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// markDrops puts the capture's flow in the drop table: the pipeline's
// drops of what target sends come to the listener. Reconcile makes the
// same flow from the capture port's keys (flowmodel), and removes it with
// the port.
func (s *Session) markDrops(target *vswitchd.Interface) error {
	if s.drops == nil {
		return nil
	}
	if target.Ofport == nil || *target.Ofport <= 0 {
		return fmt.Errorf("interface %s has no OpenFlow port number: is ovs-vswitchd running? (ovsnet doctor)", target.Name)
	}
	fs := flows.CaptureFlows(s.Port, *target.Ofport)
	return s.flows.Apply(s.Bridge, flows.Change{Cookie: s.cookie, Mask: flows.ObjectMask, Flows: fs})
}

// open waits for ovs-vswitchd to make the port's device and opens it.
func (s *Session) open(ctx context.Context, prog []filterInsn) (*socket, error) {
	if _, err := s.db.WaitOfport(ctx, s.Port, 30*time.Second); err != nil {
		return nil, fmt.Errorf("ovs-vswitchd did not take capture port %s: %w", s.Port, err)
	}
	return openSocket(s.Port, prog)
}

// Close ends the capture: its socket, drop flow, mirror and port go.
func (s *Session) Close() error {
	var err error
	if s.sock != nil {
		err = s.sock.close()
	}
	return errors.Join(err, s.remove())
}

// remove deletes the capture's flow, mirror and port.
func (s *Session) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var ferr error
	if s.drops != nil {
		ferr = s.flows.Apply(s.Bridge, flows.Change{Cookie: s.cookie, Mask: flows.ObjectMask})
	}
	return errors.Join(ferr, s.closeDrops(), removePort(ctx, s.db, s.Bridge, s.Port))
}

// closeDrops closes the listener for the pipeline's word of drops.
func (s *Session) closeDrops() error {
	if s.drops == nil {
		return nil
	}
	err := s.drops.Close()
	s.drops = nil
	return err
}

// owner is this process as a capture port records it.
type owner struct {
	intent.Capture
	suffix string // the port's name after "ovcap"
}

// self is this process as a capture of iface on bridge.
func self(iface, bridge string) (owner, error) {
	start, err := startTime(os.Getpid())
	if err != nil {
		return owner{}, fmt.Errorf("read this process' start time: %w", err)
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return owner{}, err
	}
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return owner{}, err
	}
	return owner{Capture: intent.Capture{PID: os.Getpid(), Start: start, PIDNS: ns, Of: iface, Bridge: bridge},
		suffix: hex.EncodeToString(b)}, nil
}

// startTime is process pid's start time in clock ticks since boot (the
// 22nd field of /proc/PID/stat, after the command in parentheses).
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// removePort deletes capture port name on bridge and its mirror.
func removePort(ctx context.Context, db *ovsdb.Client, bridge, name string) error {
	ms, err := ovsdb.Select[vswitchd.Mirror](ctx, db, []ovsdbops.Condition{ovsdb.NameIs(name)}, "_uuid")
	if err != nil {
		return err
	}
	ps, err := ovsdb.Select[vswitchd.Port](ctx, db, []ovsdbops.Condition{ovsdb.NameIs(name)}, "_uuid")
	if err != nil {
		return err
	}
	var mirrors, ports []string
	for _, m := range ms {
		mirrors = append(mirrors, m.UUID)
	}
	for _, p := range ps {
		ports = append(ports, p.UUID)
	}
	if len(mirrors)+len(ports) == 0 {
		return nil
	}
	_, err = db.Do(ctx, func(tx *ovsdb.Tx) {
		tx.DeleteMirrors(bridge, mirrors...)
		tx.DeletePorts(bridge, ports...)
	})
	if err != nil {
		return fmt.Errorf("remove capture port %s from %s (ovs-vsctl -- --id=@m get mirror %s -- remove bridge %s mirrors @m -- del-port %s): %w",
			name, bridge, name, bridge, name, err)
	}
	return nil
}

// Sweep removes the capture ports among ifs whose process is gone, or
// whose owner does not decode; a capture made in another PID namespace
// is left alone (its process cannot be seen from here). It returns what
// it removed.
func Sweep(ctx context.Context, db *ovsdb.Client, ifs map[string]vswitchd.Interface) ([]string, error) {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, ifc := range ifs {
		c, ok, derr := intent.DecodeCapture("interface "+ifc.Name, ifc.ExternalIDs)
		if !ok || (derr == nil && (c.PIDNS != ns || alive(c))) {
			continue
		}
		if c.Bridge == "" {
			errs = append(errs, fmt.Errorf("capture port %s names no bridge: remove it with ovs-vsctl del-port %s", ifc.Name, ifc.Name))
			continue
		}
		if err := removePort(ctx, db, c.Bridge, ifc.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ifc.Name+" (capture of "+c.Of+", its process gone)")
	}
	return removed, errors.Join(errs...)
}

// alive says whether c's process still runs.
func alive(c intent.Capture) bool {
	start, err := startTime(c.PID)
	return err == nil && start == c.Start
}
