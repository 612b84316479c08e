package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ovsnet/ovsnet/controller/capture"
	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func captureCmd(g *globals) *cobra.Command {
	var (
		file   string
		count  int
		format string
	)
	c := &cobra.Command{
		Use:   "capture NETWORK CONTAINER[:INTERFACE] [-w FILE|-] [--count N] [--format pcapng|pcap] [FILTER...]",
		Short: "Capture a container's traffic as the switch sees it, as pcap (for tcpdump or Wireshark)",
		Long: `Copies everything CONTAINER's interface on NETWORK sends and everything
sent to it, as the switch sees it, and writes it as pcap: to standard output
for a pipe (| tcpdump -r - | wireshark -k -i -), or to FILE with -w.

The copy is taken at the switch's port, before ovsnet's pipeline: what
the container sends and the pipeline then drops (a spoofed address, a
connection --icc=false refuses, a flood over the port's bound) is there
too, though the container's own tools never see it dropped, and nothing
in the container changes. In pcapng (the default) each packet the
pipeline dropped carries a comment saying why ("dropped by ovsnet's
pipeline: no link allows this new connection"; Wireshark shows it as
pkt_comment, tshark -Y pkt_comment filters on it), given by the pipeline
itself while the capture runs: a packet is written once that word came,
or after a second without it. Drops by a flood bound's meter, and on OVN
networks (whose flows are OVN's), are captured unmarked. --format pcap
writes classic pcap, which has no room for marks. An OVS mirror copies the port's packets to a
port ovsnet makes for the capture (ovcapXXXXXXXXXX); both go when the
capture ends: at --count packets, Ctrl-C, SIGTERM, or when the reader of
the pipe goes away. If the capture is killed (kill -9), ovsnet reconcile
or the controller removes them once its process is gone.

CONTAINER is the container's ID or name (Docker, Podman, a CNI pod as
NAMESPACE/NAME); :INTERFACE picks one interface when it has several on
NETWORK. NETWORK is a bridge, a Docker network made with ovsnet's driver,
or an OVN network (the container must run on this host).

FILTER is a tcpdump expression (icmp, "tcp port 80", "not arp"), compiled
by tcpdump -ddd: tcpdump must be installed for it. The summary (packets
captured, of them dropped) goes to standard error, or to standard output
with -w FILE; -o json prints it as JSON.`,
		Example: `  ovsnet capture br0 web | tcpdump -nr -
  ovsnet capture br0 web:eth1 --count 10 icmp | tcpdump -nr -
  ovsnet capture mynet my-container -w /tmp/web.pcap "tcp port 80"
  ovsnet capture br0 web | wireshark -k -i -
  ovsnet capture br0 web -w /tmp/web.pcapng && tshark -r /tmp/web.pcapng -Y pkt_comment`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("capture takes NETWORK CONTAINER[:INTERFACE] [FILTER...], got %q (see `%s --help`)", args, c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			o := capture.Options{Network: args[0], Filter: strings.Join(args[2:], " "), Format: capture.Format(format)}
			o.Container, o.Iface = splitContainerIface(args[1])
			if count < 0 {
				return fmt.Errorf("--count %d: want 0 (no bound) or more", count)
			}
			return runCapture(c, g, o, file, count)
		},
	}
	c.Flags().StringVarP(&file, "write", "w", "-", "write the pcap to FILE; - is standard output")
	c.Flags().IntVarP(&count, "count", "c", 0, "stop after N packets (0: until Ctrl-C)")
	c.Flags().StringVar(&format, "format", "pcapng", "pcapng (drops marked with why) or pcap (classic, unmarked)")
	return c
}

// splitContainerIface splits CONTAINER[:INTERFACE]. A pod's name holds a
// slash, never a colon; an interface name holds neither.
func splitContainerIface(s string) (container, iface string) {
	if i := strings.LastIndexByte(s, ':'); i > 0 && !strings.ContainsRune(s[i+1:], '/') {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// runCapture opens the capture, copies packets until it ends, removes the
// capture's port and prints the summary.
func runCapture(c *cobra.Command, g *globals, o capture.Options, file string, count int) error {
	if err := g.checkOutput(); err != nil {
		return err
	}
	if file == "-" && isTerminal(os.Stdout) {
		return fmt.Errorf("capture writes pcap, which a terminal cannot show: pipe it (| tcpdump -nr -) or write a file (-w FILE)")
	}
	// Ctrl-C, SIGTERM and a hang-up end the capture; a reader that goes
	// away makes the next write fail (SIGPIPE ignored) and ends it too.
	ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	signal.Ignore(syscall.SIGPIPE)
	g.lockMode = lock.Unlocked
	h, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer h.Close()
	s, err := capture.Open(ctx, h, o)
	if err != nil {
		return err
	}
	var out io.WriteCloser = nopCloser{os.Stdout}
	summary := c.ErrOrStderr()
	if file != "-" {
		if out, err = os.Create(file); err != nil {
			return errors.Join(err, s.Close())
		}
		summary = c.OutOrStdout()
	}
	n, err := s.Copy(ctx, out, count)
	if errors.Is(err, syscall.EPIPE) {
		err = nil // the pipe's reader went away: the capture's end
	}
	err = errors.Join(err, out.Close(), s.Close())
	if err != nil {
		return err
	}
	c.SetOut(summary)
	return g.print(c, captureSummary(s, o, n), captureText(s, n))
}

// captureSummary is what a capture did, as -o json prints it.
func captureSummary(s *capture.Session, o capture.Options, n capture.Counts) map[string]any {
	m := map[string]any{"network": s.Bridge, "interface": s.Of, "container": o.Container, "packets": n.Packets, "dropped": n.Dropped, "drops_unmarked": n.Late}
	if s.NoMarks != nil {
		m["marks"] = s.NoMarks.Error()
	}
	return m
}

// captureText is what a capture did, in words.
func captureText(s *capture.Session, n capture.Counts) string {
	t := fmt.Sprintf("%d packets captured from %s on %s", n.Packets, s.Of, s.Bridge)
	switch {
	case s.NoMarks != nil:
		t += " (drops not marked: " + s.NoMarks.Error() + ")"
	case n.Dropped > 0:
		t += fmt.Sprintf(", %d of them marked as dropped by the pipeline", n.Dropped)
	}
	if n.Late > 0 {
		t += fmt.Sprintf("; %d drops were told too late to mark (ovs-vswitchd busy)", n.Late)
	}
	return t
}

// isTerminal says whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
