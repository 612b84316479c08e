package service

import (
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// What any local user can reach (the page, on TCP) is bounded so that
// nothing done to it starves the controller: connections at once, time to
// send a request's headers and body, idle keep-alives, header and body
// sizes. The root-only sockets (the attach API, the Docker plugin) get
// the same timeouts and body bound.
const (
	pageConns      = 64
	headerTimeout  = 5 * time.Second
	readTimeout    = 15 * time.Second
	idleTimeout    = 60 * time.Second
	maxHeaderBytes = 16 << 10
)

// newPageServer is the page's HTTP server on ln: at most pageConns
// connections (the rest wait in the kernel's backlog), timeouts, and the
// request checks of pageGuard.
func newPageServer(ln net.Listener, mux *http.ServeMux, log *slog.Logger) (*http.Server, net.Listener) {
	srv := &http.Server{
		Handler:           pageGuard(mux),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return srv, netutil.LimitListener(ln, pageConns)
}

// newSocketServer is an HTTP server for a root-only socket (the Docker
// plugin): timeouts and a body bound (a network's options, not more).
func newSocketServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           http.MaxBytesHandler(h, 1<<20),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// pageGuard refuses what a web page elsewhere could make a browser send:
// a Host that is a name other than localhost (DNS rebinding: a foreign
// name resolving to 127.0.0.1 would make the page same-origin with the
// attacker's), and a POST that is not application/json or comes from
// another origin (a cross-site form or text/plain fetch needs no
// preflight).
// Bodies are bounded; a request no route takes gets the mux's 404 or 405.
func pageGuard(mux *http.ServeMux) http.Handler {
	h := http.MaxBytesHandler(mux, 64<<10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host) {
			http.Error(w, "ovsnet's page answers only to an IP address or localhost in Host", http.StatusMisdirectedRequest)
			return
		}
		if _, route := mux.Handler(r); route != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
			if t, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); t != "application/json" {
				http.Error(w, "requests that change or run something must be application/json", http.StatusUnsupportedMediaType)
				return
			}
			if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// localHost says whether a Host header names this machine by address or
// as localhost, with or without a port.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// acceptLoop hands ln's connections to serve until ln is closed. Accept
// errors (out of descriptors: another process, or clients holding many
// connections) are waited out with a growing pause, as net/http does:
// the loop ends only with its listener.
func acceptLoop(ln net.Listener, serve func(net.Conn), log *slog.Logger, what string) {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			log.Warn("accept failed; retrying", "listener", what, "err", err, "pause", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		go serve(c)
	}
}
