package capture

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// Copy writes the packets the mirror copies to w as pcap (Ethernet), each
// flushed as it comes, until ctx ends, count packets were written (0: no
// bound) or w fails (a pipe whose reader went away: syscall.EPIPE). It
// returns how many it wrote.
func (s *Session) Copy(ctx context.Context, w io.Writer, count int) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := writeHeader(bw); err != nil {
		return 0, fmt.Errorf("write pcap: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write pcap: %w", err)
	}
	buf := make([]byte, snaplen)
	n := 0
	for ctx.Err() == nil && (count == 0 || n < count) {
		got, from, err := unix.Recvfrom(s.sock.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("read capture port %s: %w", s.Port, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // the host's own, not the mirror's
		}
		if err := writeRecord(bw, time.Now(), buf[:min(got, len(buf))], got); err != nil {
			return n, fmt.Errorf("write pcap: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return n, fmt.Errorf("write pcap: %w", err)
		}
		n++
	}
	return n, nil
}

// writeHeader writes a pcap file header: microsecond timestamps, Ethernet.
// The format is two fixed headers; gopacket's pcapgo would link
// gopacket/layers, whose init runs at every start of the one binary
// (the CNI plugin's too).
func writeHeader(w io.Writer) error {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], 1) // LINKTYPE_ETHERNET
	_, err := w.Write(h[:])
	return err
}

// writeRecord writes one packet record: data as kept, of a packet of
// length orig.
func writeRecord(w io.Writer, t time.Time, data []byte, orig int) error {
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[12:], uint32(orig))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
