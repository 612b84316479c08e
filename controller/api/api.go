// Package api is the attach API's wire format and client: while `ovsnet
// controller` runs, add-port, del-port and the CNI plugin ask it to do the
// work over a Unix socket next to the OVSDB socket (package service
// serves it). The service already holds connections to OVSDB and to each
// bridge's OpenFlow socket, so a request pays neither connection's set-up
// (an OpenFlow one waits for an iteration of ovs-vswitchd's main loop,
// which slows with the port count), and the flows of concurrent requests
// share its bundles. The code that runs is the same Host method the CLI
// runs without a controller, so the result, the rollback and the errors
// are the same either way.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/steptime"
)

// Socket is the attach API's socket for an OVSDB endpoint: next to a
// local OVSDB socket, so that a CLI and a controller talking to the same
// database find each other. None ("") for a remote OVSDB, whose ports and
// links are not this host's.
func Socket(endpoint string) string {
	p, ok := strings.CutPrefix(endpoint, "unix:")
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(p), "ovsnet.sock")
}

// Request is one request: one JSON object per connection.
type Request struct {
	Op   string              `json:"op"` // add-port | del-port | detach (none attached is fine)
	Port network.PortOptions `json:"port"`
	// Bridge, with add-port, is made first if missing (add-br's checks
	// when it exists): the CNI plugin's bridge.
	Bridge *network.BridgeOptions `json:"bridge,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	Port        *network.PortView `json:"port,omitempty"`
	Error       string            `json:"error,omitempty"`
	Unsupported bool              `json:"unsupported,omitempty"` // an older service: do it directly
	Conflict    bool              `json:"conflict,omitempty"`    // Error is a network.ErrConflict
}

// Timeout bounds one request on the service's side; the slowest attach
// step (waiting on ovs-vswitchd) has its own, shorter, timeout.
const Timeout = 2 * time.Minute

// ErrNoService says no controller answers on the attach API's socket: the
// caller does the work itself.
var ErrNoService = errors.New("no ovsnet controller on this host")

// ErrServiceLost says the controller took the request and went away before
// answering (killed, restarted): the request may be done, half-done or not
// started, which ResumeAddPort sorts out.
var ErrServiceLost = errors.New("the ovsnet controller went away during the request")

// AddPortVia asks the host's controller to attach; ErrNoService if none
// runs (or it is too old to take the request).
func AddPortVia(endpoint string, o network.PortOptions) (*network.PortView, error) {
	return callAPI(endpoint, Request{Op: "add-port", Port: o})
}

// AddPortAndBridgeVia is AddPortVia making bridge b first if it is missing.
func AddPortAndBridgeVia(endpoint string, b network.BridgeOptions, o network.PortOptions) (*network.PortView, error) {
	return callAPI(endpoint, Request{Op: "add-port", Port: o, Bridge: &b})
}

// DetachVia asks the host's controller to detach o's container interface
// if it is attached (network.Host.DelPortIfAttached); ErrNoService if none
// runs.
func DetachVia(endpoint string, o network.PortOptions) error {
	_, err := callAPI(endpoint, Request{Op: "detach", Port: o})
	return err
}

// DelPortVia asks the host's controller to detach; ErrNoService if none runs.
func DelPortVia(endpoint, bridge, iface, container string) error {
	_, err := callAPI(endpoint, Request{Op: "del-port", Port: network.PortOptions{Bridge: bridge, Iface: iface, Container: container}})
	return err
}

func callAPI(endpoint string, rq Request) (*network.PortView, error) {
	path := Socket(endpoint)
	// A relative netns path means the caller's directory, which the service
	// does not share; OVSNET_DIRECT=1 skips the controller on purpose.
	relative := strings.Contains(rq.Port.Container, "/") && !filepath.IsAbs(rq.Port.Container)
	if path == "" || relative || os.Getenv("OVSNET_DIRECT") != "" {
		return nil, ErrNoService
	}
	tr := steptime.New()
	defer tr.Done("api " + rq.Op)
	c, err := net.Dial("unix", path)
	if err != nil {
		// No socket, or a dead controller's: nobody to ask.
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrPermission) {
			return nil, ErrNoService
		}
		return nil, fmt.Errorf("ovsnet controller at %s: %w", path, err)
	}
	defer c.Close()
	tr.Step("dial")
	c.SetDeadline(time.Now().Add(Timeout + 30*time.Second))
	if err := json.NewEncoder(c).Encode(rq); err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", ErrServiceLost, path, err)
	}
	var rs Response
	if err := json.NewDecoder(c).Decode(&rs); err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", ErrServiceLost, path, err)
	}
	tr.Step("request")
	switch {
	case rs.Unsupported:
		return nil, ErrNoService
	case rs.Conflict:
		return nil, network.Conflict(rs.Error)
	case rs.Error != "":
		return nil, errors.New(rs.Error)
	}
	return rs.Port, nil
}
