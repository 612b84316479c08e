package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/ovsnet/ovsnet/flows"
)

// snaplen is the most of a packet kept: a whole segment of the userspace
// datapath's TSO (64 KiB) with room to spare.
const snaplen = 262144

// filterInsn is one classic BPF instruction, as tcpdump -ddd prints it.
type filterInsn = unix.SockFilter

// compileFilter compiles a tcpdump filter expression for Ethernet frames
// with tcpdump -ddd (libpcap's compiler; ovsnet is built without cgo, so
// it cannot link libpcap). An empty expression needs no program.
func compileFilter(expr string) ([]filterInsn, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return nil, fmt.Errorf("a capture filter is compiled by tcpdump, which is not installed: apt-get install tcpdump (or capture everything and filter after: ovsnet capture ... | tcpdump -r - %q)", expr)
	}
	out, err := exec.Command("tcpdump", "-ddd", "-y", "EN10MB", "-s", strconv.Itoa(snaplen), expr).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("capture filter %q: %s", expr, strings.TrimSpace(string(out)))
	}
	return parseFilter(string(out))
}

// parseFilter reads tcpdump -ddd's output: a count, then one "code jt jf
// k" line per instruction.
func parseFilter(out string) ([]filterInsn, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n != len(lines)-1 {
		return nil, fmt.Errorf("tcpdump -ddd printed %d lines for %q instructions", len(lines)-1, lines[0])
	}
	prog := make([]filterInsn, n)
	for i, l := range lines[1:] {
		var code, jt, jf, k uint64
		if _, err := fmt.Sscan(l, &code, &jt, &jf, &k); err != nil {
			return nil, fmt.Errorf("tcpdump -ddd line %q: %w", l, err)
		}
		prog[i] = filterInsn{Code: uint16(code), Jt: uint8(jt), Jf: uint8(jf), K: uint32(k)}
	}
	return prog, nil
}

// socket is a packet socket on the capture port's device.
type socket struct{ fd int }

// openSocket brings device name up (with IPv6 off, so that the host sends
// nothing through it) and opens a packet socket on it, filtered by prog.
func openSocket(name string, prog []filterInsn) (*socket, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("capture port %s has no device in this namespace (run ovsnet where ovs-vswitchd runs): %w", name, err)
	}
	// Missing when the host has IPv6 off: nothing to turn off then.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0o644)
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set capture port %s up: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("open a packet socket (needs CAP_NET_RAW): %w", err)
	}
	s := &socket{fd: fd}
	if err := s.setup(l.Attrs().Index, prog); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// setup filters the socket, binds it to the device and sets a read
// timeout (so that a read loop sees its context end).
func (s *socket) setup(ifindex int, prog []filterInsn) error {
	if len(prog) > 0 {
		fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if err := unix.SetsockoptSockFprog(s.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
			return fmt.Errorf("attach the capture filter: %w", err)
		}
	}
	if err := unix.Bind(s.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind the packet socket: %w", err)
	}
	_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	return unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
}

func (s *socket) close() error { return unix.Close(s.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Copy writes the packets the mirror copies to w, in s's format, each
// flushed as soon as it is known whether the pipeline dropped it (see
// marker), until ctx ends, count packets were written (0: no bound) or w
// fails (a pipe whose reader went away: syscall.EPIPE). It returns what
// it wrote.
func (s *Session) Copy(ctx context.Context, w io.Writer, count int) (Counts, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var out writer = pcapngWriter{bw}
	if s.format == Pcap {
		out = pcapWriter{bw}
	}
	var n Counts
	if err := out.header(s.Of); err != nil {
		return n, fmt.Errorf("write %s: %w", s.format, err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("write %s: %w", s.format, err)
	}
	copies, words := make(chan record, 256), make(chan word, 256)
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	readErr := make(chan error, 2)
	go func() { readErr <- s.readMirror(readCtx, copies) }()
	if s.drops != nil {
		go func() { readErr <- s.readDrops(readCtx, words) }()
	}
	m := &marker{}
	tick := time.NewTicker(markWait / 10)
	defer tick.Stop()
	write := func(all bool) error {
		for _, r := range m.due(time.Now(), all) {
			if count > 0 && n.Packets == count {
				break
			}
			if err := out.record(r); err != nil {
				return fmt.Errorf("write %s: %w", s.format, err)
			}
			n.Packets++
			if r.why != 0 {
				n.Dropped++
			}
		}
		return bw.Flush()
	}
	var err error
	for err == nil && ctx.Err() == nil && (count == 0 || n.Packets+len(m.held) < count) {
		select {
		case r := <-copies:
			m.copied(r)
		case wd := <-words:
			m.dropped(wd)
		case <-tick.C:
			err = write(false)
		case err = <-readErr:
		case <-ctx.Done():
		}
	}
	if err == nil {
		err = s.lastWords(m, words, readErr)
	}
	if werr := write(true); err == nil {
		err = werr
	}
	n.Late = m.late
	return n, err
}

// lastWords waits for the pipeline's word on the copies still held, as long
// as the youngest may wait, before they are written.
func (s *Session) lastWords(m *marker, words chan word, readErr chan error) error {
	if s.drops == nil || len(m.held) == 0 {
		return nil
	}
	end := time.NewTimer(time.Until(m.held[len(m.held)-1].at.Add(markWait)))
	defer end.Stop()
	for {
		select {
		case wd := <-words:
			m.dropped(wd)
		case err := <-readErr:
			return err
		case <-end.C:
			return nil
		}
	}
}

// Counts is what a capture wrote.
type Counts struct {
	Packets int // packets written
	Dropped int // of them, marked as dropped by the pipeline
	Late    int // drops whose word came after their packet was written (unmarked)
}

// readMirror sends the mirror's copies to copies until ctx ends.
func (s *Session) readMirror(ctx context.Context, copies chan<- record) error {
	buf := make([]byte, snaplen)
	for ctx.Err() == nil {
		got, from, err := unix.Recvfrom(s.sock.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read capture port %s: %w", s.Port, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // the host's own, not the mirror's
		}
		r := record{at: time.Now(), data: bytes.Clone(buf[:min(got, len(buf))]), orig: got}
		select {
		case copies <- r:
		case <-ctx.Done():
		}
	}
	return nil
}

// readDrops sends the pipeline's word of each of the port's drops that
// the capture's filter takes to words, until the listener is closed.
func (s *Session) readDrops(ctx context.Context, words chan<- word) error {
	for {
		p, err := s.drops.Next()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the pipeline's word of drops on %s: %w", s.Bridge, err)
		}
		if p.Cookie != s.cookie || !s.takes(p.Data) {
			continue
		}
		w := word{at: time.Now(), data: p.Data, why: flows.DropReason(p.Regs[int(flows.RegDrop)])}
		select {
		case words <- w:
		case <-ctx.Done():
			return nil
		}
	}
}

// filterVM runs the capture's filter on the pipeline's word of drops, so
// that the drops of packets the filter leaves out are not waited for: nil
// (take every word) when there is no filter or x/net/bpf cannot run it.
func filterVM(prog []filterInsn) *bpf.VM {
	if len(prog) == 0 {
		return nil
	}
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		return nil
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		return nil
	}
	return vm
}

// takes says whether the capture's filter takes packet data.
func (s *Session) takes(data []byte) bool {
	if s.filter == nil {
		return true
	}
	n, err := s.filter.Run(data)
	return err != nil || n > 0
}
