// Package ovsdb is ovsnet's typed access to the Open_vSwitch database: one
// long-lived libovsdb connection per process, reads as narrow server-side
// selects (never a monitor of whole tables in the CLI), and writes as typed
// rows through libovsdb's model API, gathered in a Tx that callers commit as
// one checked transaction.
package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"

	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnsb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// DefaultEndpoint returns the endpoint OVS's own tools use: $OVS_RUNDIR/db.sock,
// or /var/run/openvswitch/db.sock.
func DefaultEndpoint() string {
	if e := os.Getenv("OVSNET_DB"); e != "" {
		return e
	}
	dir := os.Getenv("OVS_RUNDIR")
	if dir == "" {
		dir = "/var/run/openvswitch"
	}
	return "unix:" + filepath.Join(dir, "db.sock")
}

// ClientModel registers only the tables ovsnet uses, so that older OVS schemas
// (with fewer tables or columns elsewhere) still validate.
func ClientModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		vswitchd.OpenvSwitchTable: &vswitchd.OpenvSwitch{},
		vswitchd.BridgeTable:      &vswitchd.Bridge{},
		vswitchd.PortTable:        &vswitchd.Port{},
		vswitchd.InterfaceTable:   &vswitchd.Interface{},
		vswitchd.DatapathTable:    &vswitchd.Datapath{},
		vswitchd.MirrorTable:      &vswitchd.Mirror{},
	})
}

// Client is a connection to ovsdb-server plus the model mapper used to decode
// select results into typed rows.
type Client struct {
	client.Client
	db       model.DatabaseModel
	Endpoint string
	watched  bool // the cache holds the monitored columns: ReadAll uses it
	settle   func()
}

// Reconnect connects again if the server went away (ovsdb-server
// restarting), trying until ctx ends: a client without a monitor does not
// reconnect by itself, and a rollback must not fail for a restart it could
// wait out.
func (c *Client) Reconnect(ctx context.Context) error {
	for {
		// An echo, not Connected: libovsdb leaves that true when the
		// server hangs up, and tears the connection down asynchronously.
		err := c.Client.Echo(ctx)
		if err == nil {
			return nil
		}
		if cerr := c.Client.Connect(ctx); cerr != nil {
			err = cerr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reconnect to OVSDB at %s: %w", c.Endpoint, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Settled says the caller has converged once from the cache: from now on
// every add event is a change (see afterLoad).
func (c *Client) Settled() {
	if c.settle != nil {
		c.settle()
	}
}

// ErrUnreachable is wrapped by Connect's error when no server answers.
var ErrUnreachable = errors.New("OVS database not reachable")

// Watch makes Connect keep the connection (reconnecting after an
// ovsdb-server restart) and monitor ovsnet's tables, calling onChange after
// every update and after every reconnect. The controller uses it; the CLI
// monitors nothing and reads only the rows it needs.
type Watch struct {
	OnChange func()
}

// Connect opens one connection to endpoint ("unix:PATH" or "tcp:HOST:PORT").
func Connect(ctx context.Context, endpoint string, watch ...Watch) (*Client, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint()
	}
	cm, err := ClientModel()
	if err != nil {
		return nil, err
	}
	return connect(ctx, endpoint, cm, database{name: "OVSDB", use: "unix:PATH or tcp:HOST:PORT",
		hint: "start Open vSwitch (systemctl start openvswitch-switch), or point --db / OVSNET_DB / OVS_RUNDIR at its socket"}, watch...)
}

// database says, in connect's errors, which database an endpoint is for.
type database struct {
	name string // in "bad NAME endpoint"
	use  string // the endpoints it takes
	hint string // what to do when nothing answers
}

// ConnectSouthbound opens one connection to OVN's southbound database,
// with models of the tables ovsnet reads there (package ovnsb).
func ConnectSouthbound(ctx context.Context, endpoint string) (*Client, error) {
	cm, err := model.NewClientDBModel("OVN_Southbound", map[string]model.Model{
		ovnsb.ChassisTable: &ovnsb.Chassis{},
		ovnsb.EncapTable:   &ovnsb.Encap{},
	})
	if err != nil {
		return nil, err
	}
	return connect(ctx, endpoint, cm, database{name: "OVN southbound", use: "tcp:HOST:6642 or unix:PATH",
		hint: "is ovn-central's southbound ovsdb-server running and listening there? (ovn-sbctl --db=" + endpoint + " show)"})
}

// ConnectNorthbound opens one connection to OVN's northbound database,
// with models of the tables ovsnet writes there (package ovnnb).
func ConnectNorthbound(ctx context.Context, endpoint string) (*Client, error) {
	cm, err := ovnnb.FullDatabaseModel() // every table ovnnb models
	if err != nil {
		return nil, err
	}
	return connect(ctx, endpoint, cm, database{name: "OVN northbound", use: "tcp:HOST:6641 or unix:PATH",
		hint: "is ovn-central's northbound ovsdb-server running and listening there? (ovn-nbctl --db=" + endpoint + " show)"})
}

// connect opens one connection to endpoint, a database of, with the
// model cm.
func connect(ctx context.Context, endpoint string, cm model.ClientDBModel, of database, watch ...Watch) (*Client, error) {
	if !strings.HasPrefix(endpoint, "unix:") && !strings.HasPrefix(endpoint, "tcp:") && !strings.HasPrefix(endpoint, "ssl:") {
		return nil, fmt.Errorf("bad %s endpoint %q: use %s", of.name, endpoint, of.use)
	}
	// Without a logger libovsdb raises global verbosity and prints every operation.
	discard := logr.Discard()
	opts := []client.Option{client.WithEndpoint(endpoint), client.WithLogger(&discard)}
	if len(watch) > 0 {
		b := backoff.NewExponentialBackOff()
		b.MaxInterval = 2 * time.Second
		b.MaxElapsedTime = 0 // keep trying: ovsdb-server may be restarting
		opts = append(opts, client.WithReconnect(5*time.Second, b))
	}
	c, err := client.NewOVSDBClient(cm, opts...)
	if err != nil {
		return nil, err
	}
	// A server that is down refuses at once; one that is up but busy (many
	// clients connecting at once, a slow machine) gets time to answer.
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		return nil, fmt.Errorf("%w at %s (%v): %s", ErrUnreachable, endpoint, err, of.hint)
	}
	// libovsdb built and validated the database model while connecting
	// (its cache holds it); building it again cost ~0.5 ms per command.
	var db model.DatabaseModel
	if tc := c.Cache(); tc != nil {
		db = tc.DatabaseModel()
	} else {
		var errs []error
		if db, errs = model.NewDatabaseModel(c.Schema(), cm); len(errs) > 0 {
			c.Close()
			return nil, fmt.Errorf("the %s schema at %s does not match ovsnet's models: %v", cm.Name(), endpoint, errs)
		}
	}
	cl := &Client{Client: c, db: db, Endpoint: endpoint}
	if len(watch) > 0 {
		if _, err := c.Monitor(ctx, watchedColumns(c)); err != nil {
			c.Close()
			return nil, fmt.Errorf("monitor OVSDB at %s: %w", endpoint, err)
		}
		h, settle := afterLoad(c.Cache(), watch[0].OnChange)
		c.Cache().AddEventHandler(h)
		cl.watched, cl.settle = true, settle
	}
	return cl, nil
}

// afterLoad is the watch's event handler: every change calls on, but the
// add events of the initial load do not. Their rows are in the cache the
// caller reads first, and libovsdb dispatches their events (one per row:
// 20,000 at 10,000 ports) on a goroutine of its own, some of them after
// Monitor returns (measured: ~300), which asked for a second, redundant
// convergence right after the first. So until settle is called (after the
// caller's first run) the add of a row that was in the cache when the
// handler was made is skipped; any other add (a new row, or every row again
// after a reconnect) calls on.
func afterLoad(tc *cache.TableCache, on func()) (h cache.EventHandler, settle func()) {
	var mu sync.Mutex
	loaded := map[string]struct{}{}
	for _, t := range tc.Tables() { // those ClientModel registers
		if rc := tc.Table(t); rc != nil {
			for u := range rc.RowsShallow() {
				loaded[u] = struct{}{}
			}
		}
	}
	h = &cache.EventHandlerFuncs{
		AddFunc: func(_ string, m model.Model) {
			u := uuidOf(m)
			mu.Lock()
			_, initial := loaded[u]
			delete(loaded, u)
			mu.Unlock()
			if !initial {
				on()
			}
		},
		UpdateFunc: func(string, model.Model, model.Model) { on() },
		DeleteFunc: func(string, model.Model) { on() },
	}
	return h, func() {
		mu.Lock()
		loaded = nil
		mu.Unlock()
	}
}

func uuidOf(m model.Model) string {
	switch r := m.(type) {
	case *vswitchd.Interface:
		return r.UUID
	case *vswitchd.Port:
		return r.UUID
	case *vswitchd.Bridge:
		return r.UUID
	case *vswitchd.OpenvSwitch:
		return r.UUID
	}
	return ""
}

// watchedColumns is what the controller monitors: the columns ReadAll
// returns and nothing else. Not Interface statistics or status, which
// ovs-vswitchd rewrites all the time: monitoring every column of 10,000
// interfaces cost the controller ~300 MB and a decode of each update.
func watchedColumns(c client.Client) *client.Monitor {
	var (
		o vswitchd.OpenvSwitch
		b vswitchd.Bridge
		p vswitchd.Port
		i vswitchd.Interface
	)
	return c.NewMonitor(
		client.WithTable(&o, &o.Bridges, &o.OtherConfig),
		client.WithTable(&b, &b.Name, &b.Ports, &b.DatapathType, &b.ExternalIDs, &b.OtherConfig, &b.FailMode, &b.Protocols),
		client.WithTable(&p, &p.Name, &p.Interfaces, &p.Tag),
		client.WithTable(&i, &i.Name, &i.Type, &i.Ofport, &i.OfportRequest, &i.ExternalIDs, &i.LinkState),
	)
}
