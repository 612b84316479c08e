// Package service is `ovsnet controller`: one process per host that keeps
// it converged (package reconcile on every OVSDB change and every resync),
// follows the container runtime's events (restarted containers get their
// interfaces back, removed ones lose their ports), serves the attach API
// and the Docker network driver on unix sockets, and reports /healthz and
// /metrics.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/api"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/poolstate"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/controller/reconcile"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Options configure `ovsnet controller`.
type Options struct {
	Endpoint string        // OVSDB
	Listen   string        // /healthz and /metrics
	Resync   time.Duration // periodic full convergence
	Verify   time.Duration // between full flow-table comparisons (0: every run)
	Log      *slog.Logger
	// DockerPlugin, when set, serves the Docker network plugin of that
	// name; DockerNetns is the namespace dockerd runs in ("": this one).
	DockerPlugin, DockerNetns string
	// Pool ports of each of PoolTypes are kept ready on every bridge with
	// a subnet for attaches to take (0: none, and any left are removed).
	Pool      int
	PoolTypes []string
}

// Service keeps one host converged: it reconciles on every OVSDB change
// (coalesced) and every Resync, and removes the ports of containers that
// are gone. It uses the same code as the CLI.
type Service struct {
	o       Options
	h       *network.Host
	c       *reconcile.Converger
	kick    chan struct{}
	metrics *serviceMetrics

	convergeLock *os.File
	poolKick     chan struct{} // a run ended: the pool may need work
	requests     requests      // served under the host lock shared (sharedLock)

	lastVerify time.Time        // last full flow comparison (or the start)
	natSeen    string           // NAT intent last synced (reconcile.Options.NATSeen)
	flowsSeen  reconcile.Memory // flow intent last brought to (reconcile.Options.Seen)
	collected  bool             // garbage collected once since the start
	orphansNow atomic.Bool      // a container started or went: collect on the next run

	mu        sync.Mutex
	converged bool
	lastErr   error
	bad       []string // intent that does not decode, as last reported
	runs      []run    // the last runs, newest first, for the page
	chassis   string   // what is wrong with this host's OVN chassis ("": nothing, or not one)
	page      shown    // the last reading of the network, for the page
}

type serviceMetrics struct {
	reg       *prometheus.Registry
	runs      prometheus.Counter
	errors    prometheus.Counter
	duration  prometheus.Histogram
	repairs   prometheus.Counter
	gc        prometheus.Counter
	ports     *prometheus.GaugeVec
	flows     prometheus.Gauge
	bad       prometheus.Gauge
	connected prometheus.Gauge
	api       *prometheus.CounterVec
	checks    prometheus.Counter
	updates   prometheus.Counter
	poolReady prometheus.Gauge
	chassis   prometheus.Gauge
}

func newMetrics() *serviceMetrics {
	m := &serviceMetrics{
		reg:       prometheus.NewRegistry(),
		runs:      prometheus.NewCounter(prometheus.CounterOpts{Name: "ovsnet_reconcile_total", Help: "Convergence runs."}),
		errors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ovsnet_reconcile_errors_total", Help: "Convergence runs that failed."}),
		duration:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ovsnet_reconcile_duration_seconds", Help: "Time of one convergence run.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		repairs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "ovsnet_drift_repairs_total", Help: "Changes made to bring the host back to the intent (flows, NAT rules, addresses, links)."}),
		gc:        prometheus.NewCounter(prometheus.CounterOpts{Name: "ovsnet_gc_ports_total", Help: "Ports removed because their container's network namespace was gone."}),
		ports:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ovsnet_ports", Help: "Container ports per bridge."}, []string{"bridge"}),
		flows:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "ovsnet_flows_installed", Help: "Flows ovsnet computed for its bridges at the last run."}),
		bad:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "ovsnet_bad_intent", Help: "external_ids values that do not decode at the last run (each row treated strictly: see /healthz and the log)."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ovsnet_ovsdb_connected", Help: "1 while connected to OVSDB."}),
		checks:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ovsnet_flow_checks_total", Help: "Bridges asked for their flow counts by a run (a first run, a resync, after an OpenFlow connection ended), each a wait on ovs-vswitchd's main loop."}),
		updates:   prometheus.NewCounter(prometheus.CounterOpts{Name: "ovsnet_flow_updates_total", Help: "Bundles of objects whose intent changed in OVSDB other than by an attach or detach (a VLAN set with ovs-vsctl, a link), sent by runs set off by the change."}),
		chassis:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "ovsnet_ovn_chassis_ready", Help: "1 when the OVN chassis ovsnet ovn join made of this host has ovn-controller running and is in the southbound database with its encap address, 0 when not, -1 when the host did not join."}),
		poolReady: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ovsnet_pool_ready_ports", Help: "Warm pool's ports ready to be taken, over every bridge and type (after the last refill)."}),
		api:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ovsnet_api_requests_total", Help: "Attach API requests served (add-port, del-port from the CLI), by result."}, []string{"op", "result"}),
	}
	m.reg.MustRegister(m.runs, m.errors, m.duration, m.repairs, m.gc, m.ports, m.flows, m.bad, m.connected, m.api, m.checks, m.updates, m.poolReady, m.chassis)
	return m
}

// registerStartWaits reports how the holds for Docker containers' starts
// (events.go) ended.
func (s *Service) registerStartWaits() {
	for _, end := range []string{holdStarted, holdRemoved, timedOut} {
		s.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ovsnet_docker_start_waits_total",
			Help: "Docker endpoints joined whose container's start the controller waited for before its own work on the host, by how the wait ended " +
				"(started; removed: Docker deleted the endpoint first; timed_out: neither within 2 s).",
			ConstLabels: prometheus.Labels{"end": end}}, func() float64 { return float64(s.requests.holdsEnded(end)) }))
	}
}

// Run runs the controller until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Endpoint == "" {
		o.Endpoint = ovsdb.DefaultEndpoint()
	}
	held, err := lock.Controller(o.Endpoint)
	if err != nil {
		return err
	}
	defer held.Close()
	s := &Service{o: o, kick: make(chan struct{}, 1), metrics: newMetrics(), lastVerify: time.Now(), flowsSeen: reconcile.Memory{},
		poolKick: make(chan struct{}, 1)}
	s.registerStartWaits()
	cl, err := lock.Open(lock.ConvergePath(o.Endpoint))
	if err != nil {
		return err
	}
	s.convergeLock = cl
	defer cl.Close()
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (use --listen)", o.Listen, err)
	}
	srv, ln := newPageServer(ln, s.mux(), o.Log)
	go srv.Serve(ln)
	defer srv.Close()

	tr := steptime.New()
	sw := flows.NewSwitch()
	defer sw.Close()
	s.h = network.New(nil, sw, ovn.Backend{}) // connected below
	s.h.Pool = poolstate.New(o.Pool, o.PoolTypes)
	s.c = reconcile.New(s.h)
	// Dial the bridges' OpenFlow connections and count their flows while
	// the monitor's initial reply (10,000 interfaces: ~2 s) is decoded.
	if bs, err := ovsnetBridgeNames(ctx, o.Endpoint); err == nil {
		s.c.Prefetch(bs)
	}
	db, err := ovsdb.Connect(ctx, o.Endpoint, ovsdb.Watch{OnChange: s.trigger})
	if err != nil {
		return err
	}
	tr.Step("connect and monitor OVSDB")
	tr.Done("controller start")
	defer db.Close()
	s.h.DB = db
	if path := api.Socket(o.Endpoint); path != "" {
		api, err := s.serveAPI(path)
		if err != nil {
			return err
		}
		defer api.Close() // removes the socket file
	}
	if o.DockerPlugin != "" {
		plugin, err := s.serveDocker()
		if err != nil {
			return err
		}
		defer plugin.Close()
	}
	go s.followContainers(ctx)
	go s.keepPool(ctx)
	go s.watchChassis(ctx)
	o.Log.Info("controller started", "db", o.Endpoint, "listen", ln.Addr().String(), "api", api.Socket(o.Endpoint), "resync", o.Resync.String())
	return s.loop(ctx)
}

// loop converges on every change, resync, broken OpenFlow connection and
// retry until ctx ends.
func (s *Service) loop(ctx context.Context) error {
	o := s.o
	tick := time.NewTicker(o.Resync)
	defer tick.Stop()
	// The OpenFlow connections are looked at every second: one that
	// ovs-vswitchd closed (it exited, and a restarted one has no flows)
	// sets off a run at once, not at the next resync.
	watch := time.NewTicker(time.Second)
	defer watch.Stop()
	// A failed run is tried again soon (ovs-vswitchd restarting, say),
	// backing off to the resync period.
	var retry <-chan time.Time
	wait := time.Second
	s.trigger()
	ready := false
	resync := false // this run is the periodic one
	for {
		select {
		case <-ctx.Done():
			o.Log.Info("controller stopping")
			return nil
		case <-tick.C:
			resync = true
		case <-watch.C:
			if !s.flowsBroken() {
				continue
			}
		case <-retry:
		case <-s.kick:
			// Coalesce a burst of changes (an attach is several updates),
			// and let the requests under way finish (quiet.go), but not
			// before the first run: the initial monitor reply is already
			// whole, and the start is what waits for it.
			if ready {
				time.Sleep(50 * time.Millisecond)
				s.requests.waitQuiet(ctx, convergeQuiet, convergeMaxWait)
				select {
				case <-s.kick:
				default:
				}
			}
		}
		err := s.converge(ctx, resync)
		resync = false
		retry = nil
		if err != nil {
			retry = time.After(wait)
			wait = min(2*wait, o.Resync)
		} else {
			wait = time.Second
		}
		s.h.DB.Settled() // the initial load is behind us
		s.c.DropPrefetched()
		if err == nil {
			select {
			case s.poolKick <- struct{}{}:
			default:
			}
		}
		if err == nil && !ready {
			ready = true
			daemon.SdNotify(false, daemon.SdNotifyReady)
			// The first run decoded the whole database: give what it
			// freed back now rather than when the runtime gets to it.
			debug.FreeOSMemory()
		}
	}
}

// ovsnetBridgeNames reads the names of ovsnet's bridges over a short-lived
// connection of its own.
func ovsnetBridgeNames(ctx context.Context, endpoint string) ([]string, error) {
	db, err := ovsdb.Connect(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	bs, err := ovsdb.Select[vswitchd.Bridge](ctx, db, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.Ownership(""))}, "name")
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	return names, err
}

func (s *Service) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// converge runs one garbage collection and one reconcile: the same code as
// `ovsnet reconcile`, on the latest state in the monitor's cache (re-read
// from OVSDB after garbage collection changed it).
func (s *Service) converge(ctx context.Context, resync bool) error {
	// CLI changes hold it shared: the incremental flow sync relies on
	// never seeing one half made.
	if err := lock.Take(s.convergeLock, lock.Exclusive); err != nil {
		s.failed(err)
		return err
	}
	defer lock.Release(s.convergeLock)
	start := time.Now()
	m := s.metrics
	connected := s.h.DB.Connected()
	if connected {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
	m.runs.Inc()
	// The topology from the monitor's cache (no read, no decode) while
	// connected; else a read, which fails and says why.
	var topo *ovsdb.Topology
	if connected {
		if topo, _ = s.h.DB.ReadAllCaughtUp(ctx, 200*time.Millisecond); topo == nil {
			s.o.Log.Debug("the monitor's cache did not catch up with the database: reading it")
		}
	}
	if topo == nil {
		var err error
		if topo, err = s.h.DB.ReadAllFresh(ctx); err != nil {
			s.failed(err)
			return err
		}
	}
	// One listing of the host's links for both. A container going away
	// changes nothing in OVSDB: its port is looked for on resyncs and the
	// first run, not on every change (a stat per port, ~5 ms of every run
	// at 1,000 ports).
	topo, links, gcErr := s.collect(ctx, topo, resync)
	verify := time.Since(s.lastVerify) >= s.o.Verify
	var fst reconcile.Stats
	r, err := s.c.Run(ctx, reconcile.Options{Topo: topo, Links: links, Quick: !verify, NATSeen: &s.natSeen, NATCheck: resync,
		Seen: s.flowsSeen, Trust: !resync && !verify, Stats: &fst})
	m.checks.Add(float64(fst.Checks))
	m.updates.Add(float64(fst.Updates))
	if err == nil && verify {
		s.lastVerify = time.Now()
	}
	err = errors.Join(gcErr, err)
	m.duration.Observe(time.Since(start).Seconds())
	m.repairs.Add(float64(len(r.Did)))
	for _, d := range r.Did {
		s.o.Log.Info("repaired drift", "change", d)
	}
	for _, n := range r.Notes {
		s.o.Log.Debug("note", "note", n)
	}
	s.reportBadIntent(r.Bad)
	s.recordRun(start, r.Did, err)
	s.mu.Lock()
	s.converged, s.lastErr = err == nil && connected, err
	s.mu.Unlock()
	// After the state /healthz reports (a cold start need not wait).
	if r.Topo != nil {
		s.updateGauges(r.Topo)
	}
	if err != nil {
		s.failed(err)
	}
	return err
}

// collect lists the host's links and, when due (the first run, a resync, a
// container's start or removal), follows vanished namespaces. It returns
// the topology and links for the run: nil when collection changed them
// just now (the monitor's cache may not have heard yet).
func (s *Service) collect(ctx context.Context, topo *ovsdb.Topology, resync bool) (*ovsdb.Topology, *attach.HostLinks, error) {
	links, linkErr := attach.ListHostLinks(reconcile.ProbeLink(topo))
	var gc reconcile.Collected
	var err error
	if s.orphansNow.Swap(false) || resync || !s.collected {
		gc, err = s.c.CollectGarbage(ctx, topo, links)
		s.collected = err == nil
	}
	if linkErr != nil {
		err, links = linkErr, nil
	}
	s.metrics.gc.Add(float64(len(gc.Removed)))
	for _, g := range gc.Removed {
		s.o.Log.Info("removed port of a vanished container", "port", g)
	}
	for _, b := range gc.Back {
		s.o.Log.Info("container started again", "change", b)
	}
	if len(gc.Removed)+len(gc.Back) > 0 {
		return nil, nil, err
	}
	return topo, links, err
}

// flowsBroken says whether a bridge's flows may be gone since the last
// run brought them to the intent (reconcile.Memory.Broken).
func (s *Service) flowsBroken() bool { return s.flowsSeen.Broken(s.h.Flows) }

// reportBadIntent logs intent that does not decode when it changes and
// keeps it for /healthz and the ovsnet_bad_intent gauge. It does not fail
// the run: everything else converged, and the rows are treated strictly.
func (s *Service) reportBadIntent(bad []error) {
	var msgs []string
	for _, b := range bad {
		msgs = append(msgs, b.Error())
	}
	s.mu.Lock()
	changed := !slices.Equal(msgs, s.bad)
	s.bad = msgs
	s.mu.Unlock()
	s.metrics.bad.Set(float64(len(msgs)))
	if changed {
		for _, m := range msgs {
			s.o.Log.Error("intent does not decode", "err", m)
		}
	}
}

func (s *Service) failed(err error) {
	s.mu.Lock()
	s.converged, s.lastErr = false, err
	s.mu.Unlock()
	s.metrics.errors.Inc()
	s.o.Log.Error("reconcile failed", "err", err)
}

// updateGauges sets the gauges from the topology the run just read (no
// read of its own) and the flows it counted (flowsSeen).
func (s *Service) updateGauges(topo *ovsdb.Topology) {
	s.metrics.ports.Reset()
	total := 0
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if !intent.Owned(b.ExternalIDs) {
			continue
		}
		ifs, _ := topo.BridgeInterfaces(b)
		n := 0
		for _, ifc := range ifs {
			if intent.RefOf(ifc.ExternalIDs).Container != "" {
				n++
			}
		}
		s.metrics.ports.WithLabelValues(b.Name).Set(float64(n))
		total += s.flowsSeen.Total(b.Name) // as the run left them (none after an error)
	}
	s.metrics.flows.Set(float64(total))
}

func (s *Service) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		ok, err, bad, chassis := s.converged, s.lastErr, s.bad, s.chassis
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not converged: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ok")
		for _, b := range bad {
			fmt.Fprintln(w, b)
		}
		if chassis != "" {
			fmt.Fprintln(w, chassis)
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.pageHandlers(mux)
	return mux
}
