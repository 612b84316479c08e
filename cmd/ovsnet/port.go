package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ovsnet/ovsnet/controller/api"
	"github.com/ovsnet/ovsnet/controller/flood"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
)

// portArgs are add-port's flags; add-ports takes them too, as defaults
// for every line and on each line.
type portArgs struct {
	network.PortOptions
	ip, ipaddress string
	ipSet         bool
	rates         rateFlags
}

// register binds the flags to a, with a's current values as defaults.
func (a *portArgs) register(f *pflag.FlagSet, publish bool) {
	f.StringVar(&a.ip, "ip", a.ip, "address ADDR/PLEN, or no value for the lowest free one of each subnet")
	f.Lookup("ip").NoOptDefVal = "auto"
	f.StringVar(&a.ipaddress, "ipaddress", a.ipaddress, "address ADDR/PLEN (ovs-docker's flag)")
	f.StringVar(&a.Gateway, "gateway", a.Gateway, "default gateway (default: the bridge's gateway)")
	f.StringVar(&a.MAC, "macaddress", a.MAC, "MAC address of INTERFACE (default: derived from its IPv4 address, else random)")
	f.IntVar(&a.MTU, "mtu", a.MTU, "MTU of INTERFACE, 68..65535 (default: the bridge's)")
	f.IntVar(&a.VLAN, "vlan", a.VLAN, "access VLAN tag 1..4094")
	f.StringVar(&a.Type, "type", a.Type, "veth or internal (default: by datapath, see --help)")
	f.Var(floodFlag{&a.FloodPPS}, "flood-limit", "packets a second INTERFACE may send outside TCP connections under way, 0: no limit (default: the bridge's)")
	a.rates.register(f, "INTERFACE")
	f.BoolVar(&a.DefaultRoute, "default-route", a.DefaultRoute, "take the container's default route even if another interface has it (default: only if it has none)")
	if publish {
		f.StringArrayVarP(&a.Publish, "publish", "p", nil, "publish a port: [HOST_IP:][HOST_PORT:]PORT[/tcp|udp] (repeatable; NAT bridges)")
	}
}

// options are the PortOptions the parsed flags give.
func (a *portArgs) options(f *pflag.FlagSet) (network.PortOptions, error) {
	o := a.PortOptions
	o.Addresses = nil
	if a.ipSet || f.Changed("ip") {
		o.Addresses = append(o.Addresses, a.ip)
	}
	if a.ipaddress != "" {
		o.Addresses = append(o.Addresses, a.ipaddress)
	}
	var err error
	o.Rate, err = a.rates.limit()
	return o, err
}

func addPortCmd(g *globals) *cobra.Command {
	var a portArgs
	c := &cobra.Command{
		Use:   "add-port BRIDGE INTERFACE CONTAINER [--ip[=ADDR/PLEN]] [--ipaddress=ADDR/PLEN] [--gateway=IP] [--macaddress=MAC] [--mtu=N] [--vlan=N] [--type veth|internal] [--flood-limit PPS] [--rate R]",
		Short: "Attach a container to a bridge as INTERFACE (ovs-docker add-port)",
		Long: `Attach CONTAINER to BRIDGE: create a link whose container end is INTERFACE,
give it a MAC, MTU and addresses, and make the default route point at the
gateway if the container has none yet (--default-route: in any case; a
second attachment does not take the first's, and when the interface holding
it is detached another ovsnet interface of the container takes it over).
Without --ip or --ipaddress the interface gets no address, as with
ovs-docker. --ip alone allocates the lowest free address of each of the
bridge's subnets. Any failure undoes everything.

--type internal moves an OVS internal port into the container (fastest on
the userspace datapath, the default there); --type veth uses a veth pair
(the default on the kernel datapath).

--flood-limit bounds, in packets a second, what INTERFACE sends outside TCP
connections under way (0: no bound; default: the bridge's, see add-br
--help).

--rate caps what INTERFACE receives and sends (--ingress-rate and
--egress-rate one way; each with a --burst), as ovsnet qos does later
(see its --help); without any, the bridge's default (add-br --rate), if
it has one. A cap on what it receives needs a veth: without --type the
interface is one.

When "ovsnet controller" runs on this host, add-port hands the request to it
over $OVS_RUNDIR/ovsnet.sock (next to db.sock): it holds the OVSDB and
OpenFlow connections open, and concurrent attaches share its round trips to
ovs-vswitchd. The result and the errors are the same; if the controller dies
during the request, add-port finishes or undoes what it left and attaches
itself. OVSNET_DIRECT=1 always does the work in this process.`,
		Example: `  ovsnet add-port ovs-br1 eth1 container1 --ipaddress=172.16.1.2/24
  ovsnet add-port ovs-br1 eth1 web1 --ip -p 8080:80 -p 127.0.0.1:9090:90 -p 53/udp
  ovsnet add-port ovs-br1 eth2 pid:4242 --ip=172.16.1.9/24 --macaddress=02:42:ac:10:01:09 --mtu=1400 --vlan=10`,
		Args: exactArgs("BRIDGE", "INTERFACE", "CONTAINER"),
		RunE: func(c *cobra.Command, args []string) error {
			o, err := a.options(c.Flags())
			if err != nil {
				return err
			}
			o.Bridge, o.Iface, o.Container = args[0], args[1], args[2]
			if err := g.checkOutput(); err != nil {
				return err
			}
			p, err := api.AddPortVia(g.endpoint(), o)
			err = orHere("add-port", err, func(resume bool) (err error) {
				p, err = addPortDirect(c, g, o, resume)
				return err
			})
			if err != nil {
				return err
			}
			return g.print(c, p, p.Describe())
		},
	}
	a.register(c.Flags(), true)
	return c
}

// orHere takes the answer of a request to the controller: with no controller
// the work is done here (do(false)); with one that went away mid-request,
// here too, finishing or undoing what it left (do(true)).
func orHere(op string, err error, do func(resume bool) error) error {
	switch {
	case errors.Is(err, api.ErrNoService):
		return do(false)
	case errors.Is(err, api.ErrServiceLost):
		fmt.Fprintf(os.Stderr, "ovsnet: warning: %v: finishing %s here\n", err, op)
		return do(true)
	}
	return err
}

// addPortDirect attaches in this process: no controller runs, or it went
// away during the request (resume: finish or undo what it left first).
func addPortDirect(c *cobra.Command, g *globals, o network.PortOptions, resume bool) (*network.PortView, error) {
	h, err := g.open(c.Context())
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if resume {
		return h.ResumeAddPort(c.Context(), o)
	}
	return h.AddPort(c.Context(), o)
}

// delPortDirect detaches in this process; after a controller that went away
// (resume), a port already gone is what was asked for.
func delPortDirect(c *cobra.Command, g *globals, bridge, iface, container string, resume bool) error {
	h, err := g.open(c.Context())
	if err != nil {
		return err
	}
	defer h.Close()
	if resume {
		return h.DelPortIfAttached(c.Context(), network.PortOptions{Bridge: bridge, Iface: iface, Container: container})
	}
	return h.DelPort(c.Context(), bridge, iface, container)
}

func addPortsCmd(g *globals) *cobra.Command {
	var a portArgs
	c := &cobra.Command{
		Use:   "add-ports BRIDGE [FILE|-] [add-port flags as defaults]",
		Short: "Attach many containers to a bridge in one go, from a list",
		Long: `Attach every container listed in FILE (or standard input) to BRIDGE, one
per line: INTERFACE CONTAINER [add-port flags]. Flags given on the command
line apply to every line; a line's own flags override them. Blank lines and
lines starting with # are skipped.

All lines are checked and allocated together, the OVS ports are added in one
OVSDB transaction, ovsnet waits on ovs-vswitchd once, and the flows of every
port go in one bundle: far cheaper than one add-port per container. All or
nothing: if any container fails, none stays attached. -p is not taken here:
publish afterwards.

Internal ports cost the kernel ~19 ms each to move into their containers
(measured here, serialized by the kernel); veths are created straight in
their containers, so --type veth attaches much faster in bulk.`,
		Example: `  printf 'eth1 web1\neth1 web2 --ip=10.0.0.50/24\n' | ovsnet add-ports br0 --ip
  ovsnet add-ports br0 containers.txt --ip --type veth -o json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("want BRIDGE [FILE|-], got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			a.ipSet = c.Flags().Changed("ip")
			in := c.InOrStdin()
			if len(args) == 2 && args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			specs, err := readPortList(in, a)
			if err != nil {
				return err
			}
			if len(specs) == 0 {
				return fmt.Errorf("no containers listed: give lines of INTERFACE CONTAINER [flags] in FILE or on standard input")
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			ps, err := h.AddPorts(c.Context(), args[0], specs)
			if err != nil {
				return err
			}
			var lines []string
			for _, p := range ps {
				lines = append(lines, p.Describe())
			}
			return g.print(c, ps, strings.Join(lines, "\n"))
		},
	}
	a.register(c.Flags(), false)
	return c
}

// readPortList parses add-ports' lines: INTERFACE CONTAINER [flags], with
// defaults' flags unless a line overrides them.
// A list's lines are short: a longer one is not a list (a binary file, say).
const maxListLine = 4096

// readPortList parses add-ports' lines: INTERFACE CONTAINER [flags], with
// defaults' flags unless a line overrides them. Errors quote no more of a
// line than a short, sanitised excerpt: the file may not be a list at all
// (and may hold secrets).
func readPortList(r io.Reader, defaults portArgs) ([]network.PortOptions, error) {
	var out []network.PortOptions
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxListLine), maxListLine)
	n := 1
	for ; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		a := defaults
		f := pflag.NewFlagSet("line", pflag.ContinueOnError)
		f.SetOutput(io.Discard)
		a.register(f, false)
		if err := f.Parse(normalizeArgs(fields)); err != nil {
			return nil, fmt.Errorf("line %d: %s", n, excerpt(err.Error()))
		}
		if f.NArg() != 2 {
			return nil, fmt.Errorf("line %d: want INTERFACE CONTAINER [flags], got %d words: is this a list of containers?", n, f.NArg())
		}
		o, err := a.options(f)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		o.Iface, o.Container = f.Arg(0), f.Arg(1)
		out = append(out, o)
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return nil, fmt.Errorf("line %d is longer than %d bytes: want lines of INTERFACE CONTAINER [flags]", n, maxListLine)
	}
	return out, sc.Err()
}

// excerpt is at most 60 printable characters of s.
func excerpt(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 60 {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func delPortCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "del-port BRIDGE INTERFACE CONTAINER",
		Short:   "Detach CONTAINER's INTERFACE from BRIDGE (fails if it is not attached)",
		Example: "  ovsnet del-port ovs-br1 eth1 container1",
		Args:    exactArgs("BRIDGE", "INTERFACE", "CONTAINER"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			err := api.DelPortVia(g.endpoint(), args[0], args[1], args[2])
			err = orHere("del-port", err, func(resume bool) error {
				return delPortDirect(c, g, args[0], args[1], args[2], resume)
			})
			if err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "interface": args[1], "container": args[2], "deleted": 1},
				fmt.Sprintf("detached %s:%s from %s", args[2], args[1], args[0]))
		},
	}
}

func delPortsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "del-ports BRIDGE CONTAINER...",
		Short: "Detach all of CONTAINER's interfaces from BRIDGE (none attached is fine)",
		Long: `Detach every interface of each CONTAINER from BRIDGE; a container with none
attached is fine. Several containers are detached together: one OVSDB
transaction, one flow bundle, and their veths deleted in one request to the
kernel (which waits for an RCU grace period per request, 16-19 ms here).`,
		Example: "  ovsnet del-ports ovs-br1 container1\n  ovsnet del-ports ovs-br1 web1 web2 web3",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("del-ports takes BRIDGE and at least one CONTAINER, got %d: %q (see `%s --help`)", len(args), args, c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			n, err := h.DelPorts(c.Context(), args[0], args[1:]...)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				return g.print(c, map[string]any{"bridge": args[0], "container": args[1], "deleted": n},
					fmt.Sprintf("detached %d interface(s) of %s from %s", n, args[1], args[0]))
			}
			return g.print(c, map[string]any{"bridge": args[0], "containers": args[1:], "deleted": n},
				fmt.Sprintf("detached %d interface(s) of %d containers from %s", n, len(args)-1, args[0]))
		},
	}
}

func setVLANCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "set-vlan BRIDGE INTERFACE CONTAINER VLAN",
		Short:   "Set the access VLAN (1..4094) of CONTAINER's INTERFACE",
		Example: "  ovsnet set-vlan ovs-br1 eth1 container1 10",
		Args:    exactArgs("BRIDGE", "INTERFACE", "CONTAINER", "VLAN"),
		RunE: func(c *cobra.Command, args []string) error {
			vlan, err := strconv.Atoi(args[3])
			if err != nil {
				return fmt.Errorf("VLAN %q is not a number in 1..4094", args[3])
			}
			if vlan < 1 || vlan > 4094 {
				return fmt.Errorf("VLAN %d is outside 1..4094", vlan)
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := h.SetVLAN(c.Context(), args[0], args[1], args[2], vlan); err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "interface": args[1], "container": args[2], "vlan": vlan},
				fmt.Sprintf("%s:%s on %s is now in VLAN %d", args[2], args[1], args[0], vlan))
		},
	}
}

func setFloodLimitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set-flood-limit BRIDGE [INTERFACE CONTAINER] PPS",
		Short: "Change the flood bound of a bridge and all its ports, or of one port",
		Long: `Change the flood bound: the packets a second a container port may send
outside TCP connections under way (connection attempts, UDP, ICMP, ARP,
broadcasts), beyond which its meter drops them; 0 removes the bound.

With BRIDGE alone, the bridge's bound changes (what its new ports get)
and every port it has takes it; with INTERFACE and CONTAINER, that port
alone. Running it again changes nothing. A port given its own bound
(add-port --flood-limit, or this command) keeps it until the bridge's is
set again.`,
		Example: `  ovsnet set-flood-limit br-lab 20000
  ovsnet set-flood-limit br-lab eth1 loadgen 0`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 && len(args) != 4 {
				return fmt.Errorf("want BRIDGE PPS or BRIDGE INTERFACE CONTAINER PPS, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			pps, err := intent.ParseFloodPPS(args[len(args)-1])
			if err != nil {
				return err
			}
			o := flood.Limit{Bridge: args[0], PPS: pps}
			what := "bridge " + o.Bridge + " and its ports"
			if len(args) == 4 {
				o.Iface, o.Container = args[1], args[2]
				what = o.Container + ":" + o.Iface + " on " + o.Bridge
			}
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			ports, err := flood.Set(c.Context(), h, o)
			if err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": o.Bridge, "interface": o.Iface, "container": o.Container, "flood_pps": pps, "ports": len(ports)},
				fmt.Sprintf("%s: flood bound %d packets a second (%d ports)", what, pps, len(ports)))
		},
	}
}

// floodFlag is --flood-limit N: a flood bound given, or nil when not.
type floodFlag struct{ p **int }

func (f floodFlag) Set(v string) error {
	n, err := intent.ParseFloodPPS(v)
	if err == nil {
		*f.p = &n
	}
	return err
}

func (f floodFlag) String() string {
	if f.p == nil || *f.p == nil {
		return ""
	}
	return strconv.Itoa(**f.p)
}

func (floodFlag) Type() string { return "pps" }
