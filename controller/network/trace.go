package network

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// tracer prints how long each step of a command took, to stderr, when
// OVSNET_TRACE is set: the cheap way to see where an attach spends its time.
type tracer struct {
	on    bool
	start time.Time
	last  time.Time
	steps []string
}

func newTracer() *tracer {
	now := time.Now()
	return &tracer{on: os.Getenv("OVSNET_TRACE") != "", start: now, last: now}
}

func (t *tracer) step(name string) {
	if !t.on {
		return
	}
	now := time.Now()
	t.steps = append(t.steps, fmt.Sprintf("%s %.2fms", name, ms(now.Sub(t.last))))
	t.last = now
}

func (t *tracer) done(what string) {
	if t.on {
		fmt.Fprintf(os.Stderr, "trace %s: %s; total %.2fms\n", what, strings.Join(t.steps, ", "), ms(time.Since(t.start)))
	}
}

// ms is d in milliseconds, for trace steps with parts.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
