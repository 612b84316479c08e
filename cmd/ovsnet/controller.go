package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ovsnet/ovsnet/controller/service"
	"github.com/spf13/cobra"
)

func controllerCmd(g *globals) *cobra.Command {
	var listen, logFormat string
	var resync, verify time.Duration
	c := &cobra.Command{
		Use:   "controller [--listen 127.0.0.1:9476] [--resync 10s] [--verify 10m] [--log-format text|json]",
		Short: "Run the service that keeps this host converged (flows, NAT rules, addresses)",
		Long: `Keeps everything ovsnet derives from OVSDB in place: on every OVSDB change
and every --resync it runs what "ovsnet reconcile" runs (flows drifted or
deleted, gateway addresses removed are repaired) and removes the ports of
containers whose network namespace is gone. It never flushes flows: a
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

/healthz answers 200 when connected and converged; /metrics serves ovsnet_*
series for Prometheus. One controller per host: a second one exits. Under
systemd it reports readiness (Type=notify), see deploy/systemd.`,
		Example: "  ovsnet controller\n  ovsnet controller --listen 0.0.0.0:9476 --resync 5s --log-format json",
		Args:    exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			longLivedGC()
			var h slog.Handler
			switch logFormat {
			case "text":
				h = slog.NewTextHandler(os.Stderr, nil)
			case "json":
				h = slog.NewJSONHandler(os.Stderr, nil)
			default:
				return fmt.Errorf("unknown log format %q: use text or json", logFormat)
			}
			if resync <= 0 {
				return fmt.Errorf("--resync must be positive")
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return service.Run(ctx, service.Options{Endpoint: g.db, Listen: listen, Resync: resync, Verify: verify, Log: slog.New(h)})
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9476", "address for /healthz and /metrics")
	f.DurationVar(&resync, "resync", 10*time.Second, "period of full convergence")
	f.DurationVar(&verify, "verify", 10*time.Minute, "period of full flow-by-flow comparison (0: every run)")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return c
}
