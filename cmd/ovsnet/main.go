// Command ovsnet is the CLI of ovsnet, an Open vSwitch network controller for
// containers and a drop-in replacement for ovs-docker. It only parses
// arguments and prints results; the work is in package controller.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovsnet/ovsnet/controller/cni"
	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

type globals struct {
	db       string
	output   string
	lockMode lock.Mode // how the run holds the host's convergence lock (shared, or alone for reconcile)
	bars     *bars     // progress drawn on a terminal, if any
}

func main() {
	if os.Getenv("CNI_COMMAND") != "" {
		// Run by a CNI runtime (the same program, installed as
		// /opt/cni/bin/ovsnet): the request is in the environment.
		cni.Main("ovsnet CNI plugin " + Version)
		return
	}
	g := &globals{}
	root := newRoot(g)
	root.SetArgs(normalizeArgs(os.Args[1:]))
	// OVSNET_CPUPROFILE=FILE: a Go CPU profile of this run, for `go tool
	// pprof` (how the benchmarks' slow paths were found).
	if path := os.Getenv("OVSNET_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	shortLivedGC()
	err := execute(root)
	g.bars.Finish()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ovsnet: "+oneLine(err.Error()))
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func execute(root *cobra.Command) error { return root.Execute() }

// gcOff says whether shortLivedGC turned the collector off.
var gcOff bool

// shortLivedGC turns garbage collection off for a CLI run: a command lives
// tens of milliseconds, in which collecting only costs time (measured: about
// 0.4 ms of a 3.5 ms OVSDB connect). The memory limit still makes a bulk
// attach of thousands collect when it must. GOGC/GOMEMLIMIT win if set; the
// controller, which runs for days, goes back to Go's defaults (longLivedGC).
func shortLivedGC() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(512 << 20)
		gcOff = true
	}
}

func longLivedGC() {
	if gcOff {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// normalizeArgs turns "--ip ADDR" into "--ip=ADDR": --ip also works without a
// value, so the flag parser alone would take ADDR for a positional argument.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--ip" && i+1 < len(args) && looksLikeAddr(args[i+1]) {
			out = append(out, "--ip="+args[i+1])
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func looksLikeAddr(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "ovsnet",
		Short: "Open vSwitch networking for containers (replaces ovs-docker and docker0)",
		Long: `ovsnet puts containers on Open vSwitch bridges: it creates bridges and ports
over OVSDB, moves interfaces into container network namespaces, assigns
addresses, and keeps all its intent in OVSDB external_ids (inspect it with
ovs-vsctl). Its commands are those of ovs-docker, plus bridges with subnets.

BRIDGE is an ovsnet bridge, an OVN network on a host that joined OVN, or
the name of a Docker network made with ovsnet's plugin (docker network
create -d ovsnet NAME: its bridge is ovd<network id>).

CONTAINER is a Docker/Podman container name or ID, a CNI attachment's pod
(NAMESPACE/NAME), a named netns (/var/run/netns/NAME), pid:N or a PID, or
a path to a netns file.

ovsnet talks to $OVS_RUNDIR/db.sock (default /var/run/openvswitch/db.sock);
override with --db or OVSNET_DB. Run it in the network namespace of the
host's ovs-vswitchd (normally the host's own).

Run by a CNI runtime (CNI_COMMAND set; installed as /opt/cni/bin/ovsnet) it
is the CNI plugin of type "ovsnet": ADD, DEL, CHECK, STATUS, GC, VERSION.`,
		Example: `  ovsnet add-br ovs-br1 --subnet 172.16.1.0/24
  ovsnet add-port ovs-br1 eth1 container1 --ipaddress=172.16.1.2/24
  ovsnet add-port ovs-br1 eth1 container2 --ip
  ovsnet show -o json`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&g.db, "db", "", "OVSDB endpoint: unix:PATH or tcp:HOST:PORT (default $OVSNET_DB or $OVS_RUNDIR/db.sock)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%v (see `%s --help`)", err, c.CommandPath())
	})
	root.AddCommand(addBrCmd(g), delBrCmd(g), addPortCmd(g), addPortsCmd(g), delPortCmd(g), delPortsCmd(g),
		setVLANCmd(g), setFloodLimitCmd(g), captureCmd(g), impairCmd(g), qosCmd(g), mirrorCmd(g), linkCmd(g), unlinkCmd(g), traceCmd(g), publishCmd(g), unpublishCmd(g), portCmd(g), showCmd(g), reconcileCmd(g), controllerCmd(g), statusCmd(g), doctorCmd(g), tunnelCmd(g), ovnCmd(g), networkCmd(g), routerCmd(g), serviceCmd(g), versionCmd())
	return root
}

// exactArgs is cobra.ExactArgs with a message that names the arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("%s takes %d arguments (%s), got %d: %q (see `%s --help`)",
				c.Name(), len(names), strings.Join(names, " "), len(args), args, c.CommandPath())
		}
		return nil
	}
}

// open connects to OVSDB and checks the output format first, so a typo in
// -o fails before anything changes.
func (g *globals) open(ctx context.Context) (*network.Host, error) {
	if err := g.checkOutput(); err != nil {
		return nil, err
	}
	if err := lock.Converge(g.endpoint(), g.lockMode); err != nil {
		return nil, err
	}
	h, err := network.Open(ctx, g.endpoint(), ovn.Backend{})
	if err == nil {
		h.Progress = g.progress()
	}
	return h, err
}

func (g *globals) checkOutput() error {
	if g.output != "text" && g.output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", g.output)
	}
	return nil
}

func (g *globals) endpoint() string {
	if g.db != "" {
		return g.db
	}
	return ovsdb.DefaultEndpoint()
}

func (g *globals) print(c *cobra.Command, v any, text string) error {
	g.bars.Finish() // the last bar, above the result
	if g.output == "json" {
		enc := json.NewEncoder(c.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if text != "" {
		fmt.Fprintln(c.OutOrStdout(), text)
	}
	return nil
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ovsnet's version",
		Args:  exactArgs(),
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintln(c.OutOrStdout(), "ovsnet "+Version)
		},
	}
}
