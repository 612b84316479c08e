package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// ServiceOptions configure `ovsnet controller`.
type ServiceOptions struct {
	Endpoint string        // OVSDB
	Listen   string        // /healthz and /metrics
	Resync   time.Duration // periodic full convergence
	Verify   time.Duration // between full flow-table comparisons (0: every run)
	Log      *slog.Logger
}

// Service keeps one host converged: it reconciles on every OVSDB change
// (coalesced) and every Resync, and removes the ports of containers that
// are gone. It uses the same code as the CLI.
type Service struct {
	o       ServiceOptions
	h       *Host
	kick    chan struct{}
	metrics *serviceMetrics

	convergeLock *os.File

	lastVerify time.Time  // last full flow comparison (or the start)
	natSeen    string     // NAT intent last synced (pass.natSeen)
	flowsSeen  flowMemory // flow intent last brought to (pass.seen)
	collected  bool       // garbage collected once since the start

	mu        sync.Mutex
	converged bool
	lastErr   error
	bad       []string // intent that does not decode, as last reported
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
		api:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ovsnet_api_requests_total", Help: "Attach API requests served (add-port, del-port from the CLI), by result."}, []string{"op", "result"}),
	}
	m.reg.MustRegister(m.runs, m.errors, m.duration, m.repairs, m.gc, m.ports, m.flows, m.bad, m.connected, m.api, m.checks, m.updates)
	return m
}

// lockPath is the per-host lock: next to the OVSDB socket, as OVS's own
// pid files are.
func lockPath(endpoint string) string {
	if p, ok := strings.CutPrefix(endpoint, "unix:"); ok {
		return filepath.Join(filepath.Dir(p), "ovsnet-controller.lock")
	}
	return "/var/run/openvswitch/ovsnet-controller.lock"
}

// convergeLockPath is the lock that keeps CLI changes and the controller's
// convergence apart: the CLI holds it shared for its whole run (so CLI
// commands still run in parallel), a convergence run holds it exclusively.
// Without it, a resync computed from an older read could remove the flows
// of a port attached meanwhile.
func convergeLockPath(endpoint string) string {
	return strings.TrimSuffix(lockPath(endpoint), "-controller.lock") + ".lock"
}

// LockHost takes the convergence lock for a CLI run, shared (changes) or
// exclusive (reconcile, which must not see an attach half-way); it is
// released when the process exits. No run directory here (a remote OVSDB)
// means no controller to race with; a lock file others could hold is an
// error.
func LockHost(endpoint string, exclusive bool) error {
	f, err := openLock(convergeLockPath(endpoint))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil // no run directory here, or not root: nothing to race with
	}
	if err != nil {
		return err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	syscall.Flock(int(f.Fd()), how)
	return nil // f stays open: the lock lasts until exit
}

// lockHost takes the host's controller lock, or says who holds it.
func lockHost(path string) (*os.File, error) {
	f, err := openLock(path)
	if err != nil {
		return nil, fmt.Errorf("controller lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		who := lockHolders(f)
		f.Close()
		return nil, fmt.Errorf("the controller lock %s is held by %s: another ovsnet controller is running on this host, stop it first", path, who)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// RunService runs the controller until ctx ends.
func RunService(ctx context.Context, o ServiceOptions) error {
	if o.Endpoint == "" {
		o.Endpoint = ovsdb.DefaultEndpoint()
	}
	lock, err := lockHost(lockPath(o.Endpoint))
	if err != nil {
		return err
	}
	defer lock.Close()
	s := &Service{o: o, kick: make(chan struct{}, 1), metrics: newMetrics(), lastVerify: time.Now(), flowsSeen: flowMemory{}}
	cl, err := openLock(convergeLockPath(o.Endpoint))
	if err != nil {
		return err
	}
	s.convergeLock = cl
	defer cl.Close()
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (use --listen)", o.Listen, err)
	}
	srv := &http.Server{Handler: s.mux()}
	go srv.Serve(ln)
	defer srv.Close()

	tr := newTracer()
	sw := flows.NewSwitch()
	defer sw.Close()
	s.h = &Host{Flows: sw}
	// Dial the bridges' OpenFlow connections and count their flows while
	// the monitor's initial reply (10,000 interfaces: ~2 s) is decoded.
	if bs, err := ovsnetBridgeNames(ctx, o.Endpoint); err == nil {
		s.h.prefetchFlowCounts(bs)
	}
	db, err := ovsdb.Connect(ctx, o.Endpoint, ovsdb.Watch{OnChange: s.trigger})
	if err != nil {
		return err
	}
	tr.step("connect and monitor OVSDB")
	tr.done("controller start")
	defer db.Close()
	s.h.DB = db
	if path := APISocket(o.Endpoint); path != "" {
		api, err := s.serveAPI(path)
		if err != nil {
			return err
		}
		defer api.Close() // removes the socket file
	}
	o.Log.Info("controller started", "db", o.Endpoint, "listen", ln.Addr().String(), "api", APISocket(o.Endpoint), "resync", o.Resync.String())

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
			// but not before the first run: the initial monitor reply is
			// already whole, and the start is what waits for it.
			if ready {
				time.Sleep(50 * time.Millisecond)
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
		s.h.dropEarlyCounts()
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
	if err := syscall.Flock(int(s.convergeLock.Fd()), syscall.LOCK_EX); err != nil {
		err = fmt.Errorf("take the convergence lock: %w", err)
		s.failed(err)
		return err
	}
	defer syscall.Flock(int(s.convergeLock.Fd()), syscall.LOCK_UN)
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
		topo, _ = s.h.DB.ReadAll(ctx)
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
	links, linkErr := attach.ListHostLinks(probeLink(topo))
	var gone []string
	var gcErr error
	if resync || !s.collected {
		gone, gcErr = s.h.collectGarbage(ctx, topo, links)
		s.collected = gcErr == nil
	}
	if linkErr != nil {
		gcErr, links = linkErr, nil
	}
	m.gc.Add(float64(len(gone)))
	for _, g := range gone {
		s.o.Log.Info("removed port of a vanished container", "port", g)
	}
	if len(gone) > 0 {
		// Changed just now: the cache may not have heard yet.
		topo, links = nil, nil
	}
	verify := time.Since(s.lastVerify) >= s.o.Verify
	var fst flowStats
	r, err := s.h.reconcile(ctx, pass{topo: topo, links: links, quick: !verify, natSeen: &s.natSeen, natCheck: resync,
		seen: s.flowsSeen, trust: !resync && !verify, stats: &fst})
	m.checks.Add(float64(fst.checks))
	m.updates.Add(float64(fst.updates))
	if err == nil && verify {
		s.lastVerify = time.Now()
	}
	err = errors.Join(gcErr, err)
	m.duration.Observe(time.Since(start).Seconds())
	m.repairs.Add(float64(len(r.did)))
	for _, d := range r.did {
		s.o.Log.Info("repaired drift", "change", d)
	}
	for _, n := range r.notes {
		s.o.Log.Debug("note", "note", n)
	}
	s.reportBadIntent(r.bad)
	s.mu.Lock()
	s.converged, s.lastErr = err == nil && connected, err
	s.mu.Unlock()
	// After the state /healthz reports (a cold start need not wait).
	if r.topo != nil {
		s.updateGauges(r.topo)
	}
	if err != nil {
		s.failed(err)
	}
	return err
}

// flowsBroken says whether a bridge's flows may be gone since the last run
// brought them to the intent: the OpenFlow connection it checked over was
// closed by ovs-vswitchd, or replaced.
func (s *Service) flowsBroken() bool {
	for b, seen := range s.flowsSeen {
		if epoch, open := s.h.Flows.Epoch(b); !open || epoch != seen.epoch {
			return true
		}
	}
	return false
}

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
		total += s.flowsSeen[b.Name].total // as the run left them (none after an error)
	}
	s.metrics.flows.Set(float64(total))
}

func (s *Service) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		ok, err, bad := s.converged, s.lastErr, s.bad
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
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// collectGarbage removes the ports of containers whose network namespace is
// gone (the container exited), with their flows, rules and addresses.
func (h *Host) collectGarbage(ctx context.Context, topo *ovsdb.Topology, links *attach.HostLinks) ([]string, error) {
	var gone []string
	var errs []error
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		ifs, ports := topo.BridgeInterfaces(b)
		for j, ifc := range ifs {
			ref := intent.RefOf(ifc.ExternalIDs)
			ns := ref.Netns
			if !ref.Owned || ns == "" || attach.NetnsExists(ns) {
				continue
			}
			if err := h.detach(ctx, b.Name, []vswitchd.Interface{ifc}, []vswitchd.Port{ports[j]}); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", ifc.Name, err))
				continue
			}
			gone = append(gone, fmt.Sprintf("%s (%s)", ifc.Name, ownerOf(ifc)))
		}
	}
	// Host ends of veths whose attach was killed before its row was made
	// (the convergence lock keeps this from racing a running attach).
	rows := map[string]bool{}
	for _, ifc := range topo.Interfaces {
		rows[ifc.Name] = true
	}
	for _, l := range attach.LeakedHostLinks(links, rows) {
		// topo may come from the monitor's cache, refilled after a
		// reconnect: a link is deleted only if OVSDB itself has no row.
		if ifs, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(l)}, "_uuid"); err != nil || len(ifs) > 0 {
			continue
		}
		if err := attach.DeleteLink(l); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, l+" (leaked veth)")
	}
	return gone, errors.Join(errs...)
}
