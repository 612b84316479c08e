package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/ovsnet/ovsnet/controller/api"
	"github.com/ovsnet/ovsnet/controller/bridge"
	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/steptime"
)

// The attach API's server side (package api has its wire format and
// client): the same Host methods the CLI runs, under the host lock.

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
	var rq api.Request
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewDecoder(c).Decode(&rq); err != nil {
		json.NewEncoder(c).Encode(api.Response{Error: "malformed request: " + err.Error()})
		return
	}
	s.o.Log.Debug("api request", "op", rq.Op, "bridge", rq.Port.Bridge, "container", rq.Port.Container, "interface", rq.Port.Iface)
	// Not the client's connection's context: a client that goes away
	// mid-attach must not leave the attach half-made; AddPort finishes or
	// rolls back.
	ctx, cancel := context.WithTimeout(context.Background(), api.Timeout)
	defer cancel()
	tr := steptime.New()
	unlock, err := s.sharedLock()
	defer unlock()
	tr.Step("wait for the host lock")
	tr.Done("api " + rq.Op)
	var rs api.Response
	switch {
	case err != nil:
		// Without the lock a convergence run could see the change half made.
	case rq.Op == "add-port" && rq.Bridge != nil:
		rs.Port, err = bridge.AddPort(ctx, s.h, *rq.Bridge, rq.Port)
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
	end := s.requests.begin()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		end()
		return func() {}, fmt.Errorf("take the host lock: %w", err)
	}
	return func() { f.Close(); end() }, nil
}
