// Package network is the network operations every front end calls (the
// CLI, the controller's API): bridges, the attach engine for container
// interfaces, links, published ports, tunnels and their underlay, and the
// steps that converge one object to its intent. Each reads the intent in
// OVSDB (package intent), writes it in one checked transaction and brings
// the host's links, flows and NAT rules to match.
package network

import (
	"context"
	"sync"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/poolstate"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/openflow"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// Host is ovsnet's view of one host: its OVSDB connection. It must run in
// the network namespace of the host's ovs-vswitchd, where bridge internal
// ports and veth host ends live.
type Host struct {
	DB       *ovsdb.Client
	Flows    OpenFlow
	Progress steptime.Progress // told how long work goes (nil: nobody)
	// Pool, when set, is the warm pool attaches may take from (the
	// controller's); nil: every attach makes its port.
	Pool *poolstate.Pool
	// OVN resolves the network names that are not bridges here, and
	// takes part in detaching and showing its ports; nil: none.
	OVN Backend
	// Firewall is the host's iptables and ip6tables (nil: the system's,
	// opened on first use).
	Firewall nat.Firewall
	// Devices makes, moves, configures and deletes the links of attaches
	// (attach.System; attachtest.Devices in unit tests).
	Devices attach.Devices
	// Vswitchd is ovs-vswitchd as the engine waits on it to number new
	// ports (WaitOfports on OVSDB; ovsdbtest.Vswitchd in unit tests).
	Vswitchd Numberer
	mu       sync.Mutex
	// pipelineSeen: per bridge, the OpenFlow connection (Switch.Epoch)
	// over which its pipeline was last seen in place (ensurePipeline).
	pipelineSeen map[string]uint64
}

// OpenFlow is what network needs of the bridges' OpenFlow connections and
// of ovs-vswitchd's datapath: flows.Switch, or flowstest.Recorder in unit
// tests.
type OpenFlow interface {
	// Prepare starts dialling bridge; Epoch names its connection (open:
	// one is up), Forget drops it, Close drops them all.
	Prepare(bridge string)
	Epoch(bridge string) (epoch uint64, open bool)
	Forget(bridge string)
	Close()
	// Apply makes changes in one bundle; ApplySpread in as many as a
	// large set needs.
	Apply(bridge string, changes ...flows.Change) error
	ApplySpread(bridge string, changes ...flows.Change) error
	// ReplaceAll makes the bridge's flows exactly fs and its meters ms.
	ReplaceAll(bridge string, fs []*openflow.Flow, ms []openflow.Meter) error
	DeleteMeters(bridge string, ids []uint32) error
	// What the bridge has against what it should.
	Diff(bridge string, fs []*openflow.Flow) (added, removed int, err error)
	MeterDrift(bridge string, ms []openflow.Meter) (wrong, extra int, err error)
	CookieCount(bridge string, cookie, mask uint64) (int, error)
	FlowCounts(bridge string, tables []uint8) (map[uint8]int, error)
	// WaitRevalidated returns once the datapath's cached flows were
	// checked against the flow tables as they are now.
	WaitRevalidated(ctx context.Context) error
}

// Open connects to the host's OVSDB (endpoint "" means the default);
// ovn is the backend of networks that are not this host's bridges (nil:
// none).
func Open(ctx context.Context, endpoint string, ovn Backend) (*Host, error) {
	tr := steptime.New()
	defer tr.Done("open")
	db, err := ovsdb.Connect(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	tr.Step("connect to OVSDB")
	return New(db, flows.NewSwitch(), ovn), nil
}

// New is a Host on OVSDB connection db (which may be set later, before
// use), the bridges' OpenFlow side sw and OVN backend ovn (nil: none), on
// the running system's devices and ovs-vswitchd.
func New(db *ovsdb.Client, sw OpenFlow, ovn Backend) *Host {
	h := &Host{DB: db, Flows: sw, OVN: ovn, Devices: attach.System{}}
	h.Vswitchd = dbNumberer{h}
	return h
}

// Numberer is what the engine waits on for ovs-vswitchd to give new ports
// their OpenFlow numbers.
type Numberer interface {
	// WaitOfports returns the port numbers of the named interfaces, in
	// order, once ovs-vswitchd has numbered them all.
	WaitOfports(ctx context.Context, names []string) ([]int, error)
}

// Close drops the OVSDB connection.
func (h *Host) Close() {
	h.Flows.Close()
	h.DB.Close()
}

// CheckFloodPPS validates a flood bound given (nil: not given).
func CheckFloodPPS(pps *int) error {
	if pps == nil {
		return nil
	}
	return intent.CheckFloodPPS(*pps)
}
