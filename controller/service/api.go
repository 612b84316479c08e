package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/steptime"
)

// The attach API: while `ovsnet controller` runs, add-port and del-port ask
// it to do the work over a Unix socket next to the OVSDB socket. The
// service already holds connections to OVSDB and to each bridge's OpenFlow
// socket, so a request pays neither connection's set-up (an OpenFlow one
// waits for an iteration of ovs-vswitchd's main loop, which slows with the
// port count), and the flows of concurrent requests share its bundles. The code that runs is the same Host method the CLI runs
// without a controller, so the result, the rollback and the errors are the
// same either way.

// APISocket is the attach API's socket for an OVSDB endpoint: next to a
// local OVSDB socket, so that a CLI and a controller talking to the same
// database find each other. None ("") for a remote OVSDB, whose ports and
// links are not this host's.
func APISocket(endpoint string) string {
	p, ok := strings.CutPrefix(endpoint, "unix:")
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(p), "ovsnet.sock")
}

// apiRequest is one request: one JSON object per connection.
type apiRequest struct {
	Op   string              `json:"op"` // add-port | del-port | detach (none attached is fine)
	Port network.PortOptions `json:"port"`
	// Bridge, with add-port, is made first if missing (add-br's checks
	// when it exists): the CNI plugin's bridge.
	Bridge *network.BridgeOptions `json:"bridge,omitempty"`
}

type apiResponse struct {
	Port        *network.Port `json:"port,omitempty"`
	Error       string        `json:"error,omitempty"`
	Unsupported bool          `json:"unsupported,omitempty"` // an older service: do it directly
	Conflict    bool          `json:"conflict,omitempty"`    // Error is a network.ErrConflict
}

// apiTimeout bounds one request on the service's side; the slowest attach
// step (waiting on ovs-vswitchd) has its own, shorter, timeout.
const apiTimeout = 2 * time.Minute

// listenPrivate listens on unix socket path (what names it in errors),
// root's only: a request there creates links and ports as the service. A
// socket file found there is a dead controller's (the caller holds the
// controller lock).
func listenPrivate(path, what string) (net.Listener, error) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// serveAPI answers attach requests on path until ln is closed. The caller
// holds the controller lock, so a socket file found there is a dead
// controller's.
func (s *Service) serveAPI(path string) (net.Listener, error) {
	ln, err := listenPrivate(path, "attach API socket")
	if err != nil {
		return nil, err
	}
	go acceptLoop(ln, s.serveConn, s.o.Log, "attach API")
	return ln, nil
}

func (s *Service) serveConn(c net.Conn) {
	defer c.Close()
	var rq apiRequest
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewDecoder(c).Decode(&rq); err != nil {
		json.NewEncoder(c).Encode(apiResponse{Error: "malformed request: " + err.Error()})
		return
	}
	// Not the client's connection's context: a client that goes away
	// mid-attach must not leave the attach half-made; AddPort finishes or
	// rolls back.
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	tr := steptime.New()
	unlock, err := s.sharedLock()
	defer unlock()
	tr.Step("wait for the host lock")
	tr.Done("api " + rq.Op)
	var rs apiResponse
	switch {
	case err != nil:
		// Without the lock a convergence run could see the change half made.
	case rq.Op == "add-port" && rq.Bridge != nil:
		rs.Port, err = s.h.AddPortAndBridge(ctx, *rq.Bridge, rq.Port)
	case rq.Op == "add-port":
		rs.Port, err = s.h.AddPort(ctx, rq.Port)
	case rq.Op == "del-port":
		err = s.h.DelPort(ctx, rq.Port.Bridge, rq.Port.Iface, rq.Port.Container)
	case rq.Op == "detach":
		err = s.h.DelPortIfAttached(ctx, rq.Port)
	default:
		rs.Unsupported = true
	}
	result := "ok"
	if err != nil {
		rs.Error, rs.Conflict, result = err.Error(), errors.Is(err, network.ErrConflict), "error"
	}
	if !rs.Unsupported {
		s.metrics.api.WithLabelValues(rq.Op, result).Inc()
	}
	s.o.Log.Debug("api", "op", rq.Op, "bridge", rq.Port.Bridge, "container", rq.Port.Container, "interface", rq.Port.Iface, "err", rs.Error)
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	json.NewEncoder(c).Encode(rs)
}

// sharedLock holds the convergence lock shared for one request, as a CLI
// run does: a convergence run (this service's or `ovsnet reconcile`'s)
// must not see the attach half-way. flock locks belong to open files, so a
// file of the request's own conflicts with the service's exclusive one.
func (s *Service) sharedLock() (unlock func(), err error) {
	f, err := lock.Open(lock.ConvergePath(s.o.Endpoint))
	if err != nil {
		return func() {}, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return func() {}, fmt.Errorf("take the host lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// ErrNoService says no controller answers on the attach API's socket: the
// caller does the work itself.
var ErrNoService = errors.New("no ovsnet controller on this host")

// ErrServiceLost says the controller took the request and went away before
// answering (killed, restarted): the request may be done, half-done or not
// started, which ResumeAddPort sorts out.
var ErrServiceLost = errors.New("the ovsnet controller went away during the request")

// AddPortVia asks the host's controller to attach; ErrNoService if none
// runs (or it is too old to take the request).
func AddPortVia(endpoint string, o network.PortOptions) (*network.Port, error) {
	return callAPI(endpoint, apiRequest{Op: "add-port", Port: o})
}

// AddPortAndBridgeVia is AddPortVia making bridge b first if it is missing.
func AddPortAndBridgeVia(endpoint string, b network.BridgeOptions, o network.PortOptions) (*network.Port, error) {
	return callAPI(endpoint, apiRequest{Op: "add-port", Port: o, Bridge: &b})
}

// DetachVia asks the host's controller to detach o's container interface
// if it is attached (network.Host.DelPortIfAttached); ErrNoService if none
// runs.
func DetachVia(endpoint string, o network.PortOptions) error {
	_, err := callAPI(endpoint, apiRequest{Op: "detach", Port: o})
	return err
}

// DelPortVia asks the host's controller to detach; ErrNoService if none runs.
func DelPortVia(endpoint, bridge, iface, container string) error {
	_, err := callAPI(endpoint, apiRequest{Op: "del-port", Port: network.PortOptions{Bridge: bridge, Iface: iface, Container: container}})
	return err
}

func callAPI(endpoint string, rq apiRequest) (*network.Port, error) {
	path := APISocket(endpoint)
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
	c.SetDeadline(time.Now().Add(apiTimeout + 30*time.Second))
	if err := json.NewEncoder(c).Encode(rq); err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", ErrServiceLost, path, err)
	}
	var rs apiResponse
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
