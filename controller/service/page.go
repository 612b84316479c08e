package service

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/trace"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/controller/show"
	"github.com/ovsnet/ovsnet/controller/view"
)

// The page: plain HTML, CSS and JavaScript in the binary, no build step.
//
//go:embed page
var pageFiles embed.FS

// maxRuns is how many convergence runs the page lists.
const maxRuns = 10

// showFresh is how long one reading of the network serves the page's
// requests: show reads every container's link state (a namespace entered
// per internal port), which a few open pages must not multiply.
const showFresh = 2 * time.Second

// shown is the last reading of the network for the page.
type shown struct {
	mu      sync.Mutex
	at      time.Time
	bridges []show.BridgeView
}

// show returns the network as read within showFresh, reading it again if
// older; concurrent requests wait for one reading.
func (s *Service) show(ctx context.Context) ([]show.BridgeView, error) {
	s.page.mu.Lock()
	defer s.page.mu.Unlock()
	if s.page.bridges != nil && time.Since(s.page.at) < showFresh {
		return s.page.bridges, nil
	}
	bs, err := show.Read(ctx, s.h, "", ovn.Backend{})
	if err != nil {
		return nil, err
	}
	s.page.at, s.page.bridges = time.Now(), bs
	return bs, nil
}

// run is one convergence run as the page lists it.
type run struct {
	Start   time.Time `json:"start"`
	Millis  float64   `json:"duration_ms"`
	Repairs []string  `json:"repairs,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// topology is what /api/topology returns: show's bridges, the ports'
// counters and the last runs.
type topology struct {
	Bridges  []show.BridgeView          `json:"bridges"`
	Counters map[string]attach.Counters `json:"counters"` // by OVS port
	Runs     []run                      `json:"runs"`
}

// recordRun keeps a run for the page, the newest first.
func (s *Service) recordRun(start time.Time, did []string, err error) {
	r := run{Start: start, Millis: float64(time.Since(start).Microseconds()) / 1000, Repairs: did}
	if err != nil {
		r.Error = err.Error()
	}
	s.mu.Lock()
	s.runs = append([]run{r}, s.runs[:min(len(s.runs), maxRuns-1)]...)
	s.mu.Unlock()
}

// pageHandlers adds the page and its API to mux. Everything is read-only:
// GET only, but for the trace (POST), which runs ovs-vswitchd's own
// ofproto/trace and changes nothing. No cookies are set.
func (s *Service) pageHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.static("page/index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /page.js", s.static("page/page.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /page.css", s.static("page/page.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /view.css", func(w http.ResponseWriter, _ *http.Request) {
		headers(w, "text/css; charset=utf-8")
		w.Write([]byte(view.Style))
	})
	mux.HandleFunc("GET /topology.svg", func(w http.ResponseWriter, r *http.Request) {
		bs, err := s.show(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		headers(w, "image/svg+xml")
		w.Write([]byte(view.SVG(bs)))
	})
	mux.HandleFunc("GET /api/topology", s.apiTopology)
	mux.HandleFunc("POST /api/trace", s.apiTrace)
}

// static serves an embedded file.
func (s *Service) static(name, typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		data, err := pageFiles.ReadFile(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		headers(w, typ)
		w.Write(data)
	}
}

// headers sets the content type and a policy that lets the page load
// only its own files.
func headers(w http.ResponseWriter, typ string) {
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
}

func (s *Service) apiTopology(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	bs, err := s.show(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	var ports []network.PortView
	for _, b := range bs {
		if len(b.Ports) <= view.MaxDrawn {
			ports = append(ports, b.Ports...)
		}
	}
	cs, err := counters(ctx, s.h.DB, ports)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	s.mu.Lock()
	runs := append([]run{}, s.runs...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, topology{Bridges: bs, Counters: cs, Runs: runs})
}

// traceRequest is the page's trace form.
type traceRequest struct {
	Bridge string `json:"bridge"`
	From   string `json:"from"`
	To     string `json:"to"`
	Proto  string `json:"proto"`
	DPort  int    `json:"dport"`
}

func (s *Service) apiTrace(w http.ResponseWriter, r *http.Request) {
	var q traceRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&q); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad trace request: " + err.Error()})
		return
	}
	q.Bridge, q.From, q.To = strings.TrimSpace(q.Bridge), strings.TrimSpace(q.From), strings.TrimSpace(q.To)
	if q.Bridge == "" || q.From == "" || q.To == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a trace needs a bridge, a source container and a destination (container or address)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res, err := s.h.Trace(ctx, trace.Options{Bridge: q.Bridge, From: q.From, To: q.To, Proto: q.Proto, DPort: q.DPort})
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	res.Raw = ""
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	headers(w, "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
