package service

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestPageGuard(t *testing.T) {
	ok := http.NewServeMux()
	ok.HandleFunc("GET /api/trace", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	ok.HandleFunc("POST /api/trace", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	for _, c := range []struct {
		method, host, ctype, origin string
		want                        int
	}{
		{"GET", "127.0.0.1:9476", "", "", 200},
		{"GET", "[::1]:9476", "", "", 200},
		{"GET", "localhost:9476", "", "", 200},
		{"GET", "LOCALHOST", "", "", 200},
		{"GET", "192.0.2.7:9476", "", "", 200},
		{"GET", "rebind.example.com:9476", "", "", 421},
		{"GET", "127.0.0.1.nip.io:9476", "", "", 421},
		{"POST", "127.0.0.1:9476", "application/json", "", 200},
		{"POST", "127.0.0.1:9476", "application/json; charset=utf-8", "http://127.0.0.1:9476", 200},
		{"POST", "127.0.0.1:9476", "text/plain", "", 415},
		{"POST", "127.0.0.1:9476", "", "", 415},
		{"POST", "127.0.0.1:9476", "application/json", "http://evil.example", 403},
		{"POST", "127.0.0.1:9476", "application/json", "null", 403},
		{"PUT", "127.0.0.1:9476", "text/plain", "", 405}, // no such route: the mux says so
	} {
		r := httptest.NewRequest(c.method, "/api/trace", strings.NewReader("{}"))
		r.Host = c.host
		if c.ctype != "" {
			r.Header.Set("Content-Type", c.ctype)
		}
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		w := httptest.NewRecorder()
		pageGuard(ok).ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s Host %q type %q origin %q: %d, want %d", c.method, c.host, c.ctype, c.origin, w.Code, c.want)
		}
	}
}

// failingListener fails its first n Accepts as a process out of
// descriptors does, then hands out one connection and closes.
type failingListener struct {
	net.Listener
	n     int32
	calls atomic.Int32
	conn  net.Conn
}

func (l *failingListener) Accept() (net.Conn, error) {
	switch k := l.calls.Add(1); {
	case k <= l.n:
		return nil, &net.OpError{Op: "accept", Err: errors.New("too many open files")}
	case k == l.n+1:
		return l.conn, nil
	default:
		return nil, net.ErrClosed
	}
}

func TestAcceptLoopOutlivesErrors(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	l := &failingListener{n: 4, conn: a}
	served := make(chan net.Conn, 1)
	acceptLoop(l, func(c net.Conn) { served <- c }, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if c := <-served; c != a {
		t.Fatal("the connection after the errors was not served")
	}
	if got := l.calls.Load(); got != 6 {
		t.Fatalf("%d accepts, want 4 failed, 1 served, 1 closed", got)
	}
}
