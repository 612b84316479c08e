// Package steptime prints how long each step of a command took, to
// stderr, when OVSNET_TRACE is set: the cheap way to see where an attach,
// a convergence or the controller's start spends its time. It also tells
// a Progress (the CLI's bars) how far long work has got.
package steptime

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Tracer times the steps of one command.
type Tracer struct {
	on    bool
	start time.Time
	last  time.Time
	steps []string
}

// New starts timing.
func New() *Tracer {
	now := time.Now()
	return &Tracer{on: os.Getenv("OVSNET_TRACE") != "", start: now, last: now}
}

// Step ends a step.
func (t *Tracer) Step(name string) {
	if !t.on {
		return
	}
	now := time.Now()
	t.steps = append(t.steps, fmt.Sprintf("%s %.2fms", name, MS(now.Sub(t.last))))
	t.last = now
}

// Done prints the steps of what.
func (t *Tracer) Done(what string) {
	if t.on {
		fmt.Fprintf(os.Stderr, "trace %s: %s; total %.2fms\n", what, strings.Join(t.steps, ", "), MS(time.Since(t.start)))
	}
}

// MS is d in milliseconds, for trace steps with parts.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
