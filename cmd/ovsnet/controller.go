package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/service"
	"github.com/spf13/cobra"
)

// controllerLong is `ovsnet controller --help`'s text.
const controllerLong = `Keeps everything ovsnet derives from OVSDB in place: on every OVSDB change
and every --resync it runs what "ovsnet reconcile" runs (flows drifted or
deleted, gateway addresses removed are repaired). It follows the container
runtime's events: a Docker or Podman container that starts again (restart,
stop and start, --restart always) gets the interfaces ovsnet gave it back,
with the same addresses and MAC; a stopped one keeps its ports; a removed
one loses them. It never flushes flows: a
resync replaces only what drifted, in one atomic bundle. iptables is checked
on every --resync and whenever the NAT intent changes (drift there does not
show in OVSDB; checking it after every attach cost ~20 ms of iptables runs).

It also serves add-port and del-port for the CLI on ovsnet.sock next to the
OVSDB socket (root only), so that an attach pays no connection set-up.

Flows are checked cheaply on each run (the number of flows in each table,
one OpenFlow exchange: catches deleted and added flows and an ovs-vswitchd
restart) and compared flow by flow every --verify (also catches a flow
changed in place). A full comparison dumps every flow: about 1 s per 15,000
flows on the userspace datapath with thousands of ports, so a short --verify
(every run) suits small hosts only.

With --docker-plugin NAME it is also a Docker network driver (see
/run/docker/plugins/NAME.sock): docker network create -d NAME --subnet CIDR
[--internal] [-o ovsnet.bridge=BR] [-o ovsnet.icc=false]
[-o ovsnet.nat=false] [-o ovsnet.vlan=N] [-o com.docker.network.driver.mtu=N]
NET makes an ovsnet bridge for the network, and docker run --network NET attaches containers to it (veths,
addresses from Docker's IPAM, names through Docker's embedded DNS).

A warm pool makes attaches fast on big bridges: every ovsnet bridge with a
subnet in use (holding a container, or attached to within 10 minutes)
keeps --pool ports of its default type (internal on the userspace
datapath; veth where it carries a Docker network, whose endpoints are
veths; or of each of --pool-types) ready (in OVSDB and ovs-vswitchd, with
the lowest free addresses, a MAC and their flows; the container end
waits down in the host, so nothing reaches it). An attach with an automatic
address and nothing else chosen (add-port --ip, the Docker plugin's and
CNI's default) takes one: no wait on ovs-vswitchd, whose main loop slows
with every port; the pool refills behind it. An explicit address, MAC,
gateway, MTU or VLAN, or a container with links on the bridge, attaches as
usual. "ovsnet show" counts the pool apart from the containers. --pool 0
turns it off and removes what is left; "ovsnet controller --drain" removes
every pool's port and exits (for a controller stopped for good).

/healthz answers 200 when connected and converged; /metrics serves ovsnet_*
series for Prometheus. One controller per host: a second one exits. Under
systemd it reports readiness (Type=notify), see deploy/systemd.`

// checkPool checks --pool and --pool-types.
func checkPool(pool int, types []string) error {
	if pool < 0 {
		return fmt.Errorf("--pool must be 0 (no pool) or more")
	}
	for _, t := range types {
		if t != attach.TypeVeth && t != attach.TypeInternal {
			return fmt.Errorf("unknown --pool-types type %q: use veth, internal or both", t)
		}
	}
	return nil
}

func controllerCmd(g *globals) *cobra.Command {
	var listen, logFormat, logLevel, plugin, pluginNetns string
	var resync, verify time.Duration
	var pool int
	var poolTypes []string
	var drain bool
	c := &cobra.Command{
		Use:   "controller [--listen 127.0.0.1:9476] [--resync 10s] [--verify 10m] [--log-format text|json] [--log-level info|debug] [--docker-plugin NAME] [--pool 8] [--drain]",
		Short: "Run the service that keeps this host converged (flows, NAT rules, addresses)",
		Long:  controllerLong,
		Example: "  ovsnet controller\n  ovsnet controller --listen 0.0.0.0:9476 --resync 5s --log-format json\n" +
			"  ovsnet controller --docker-plugin ovsnet   # then: docker network create -d ovsnet --subnet 10.50.0.0/24 net1\n" +
			"  ovsnet controller --pool 0                 # no warm pool\n" +
			"  ovsnet controller --drain                  # remove the warm pool's ports, then exit",
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			longLivedGC()
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("unknown log level %q: use debug, info, warn or error", logLevel)
			}
			opts := &slog.HandlerOptions{Level: level}
			var h slog.Handler
			switch logFormat {
			case "text":
				h = slog.NewTextHandler(os.Stderr, opts)
			case "json":
				h = slog.NewJSONHandler(os.Stderr, opts)
			default:
				return fmt.Errorf("unknown log format %q: use text or json", logFormat)
			}
			if resync <= 0 {
				return fmt.Errorf("--resync must be positive")
			}
			if err := checkPool(pool, poolTypes); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if drain {
				did, err := service.Drain(ctx, g.db)
				for _, d := range did {
					fmt.Println(d)
				}
				return err
			}
			return service.Run(ctx, service.Options{Endpoint: g.db, Listen: listen, Resync: resync, Verify: verify, Log: slog.New(h),
				DockerPlugin: plugin, DockerNetns: pluginNetns, Pool: pool, PoolTypes: poolTypes})
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9476", "address for /healthz and /metrics")
	f.DurationVar(&resync, "resync", 10*time.Second, "period of full convergence")
	f.DurationVar(&verify, "verify", 10*time.Minute, "period of full flow-by-flow comparison (0: every run)")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	f.StringVar(&logLevel, "log-level", "info", "info, or debug for every attach API request and details of convergence runs (also warn, error)")
	f.StringVar(&plugin, "docker-plugin", "", "serve a Docker network driver of this name (docker network create -d NAME)")
	f.StringVar(&pluginNetns, "docker-netns", "", "network namespace dockerd runs in, if not the controller's (a path such as /proc/1/ns/net)")
	f.IntVar(&pool, "pool", 8, "warm pool: ports kept ready per bridge and type for attaches to take (0: none)")
	f.StringSliceVar(&poolTypes, "pool-types", nil, "port types the warm pool keeps: veth, internal (default: each bridge's default type, internal on the userspace datapath; veth on a Docker network's bridge)")
	f.BoolVar(&drain, "drain", false, "remove every warm pool's port and exit (no controller may run)")
	return c
}
