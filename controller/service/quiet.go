package service

import (
	"context"
	"sync/atomic"
	"time"
)

// Convergence after a change waits for the requests this controller
// serves (attaches, detaches, the Docker driver's, the pool's refills) to
// pause: they change the network whole under the host lock shared, so
// nothing is half-made for it to see, and a run in their midst only makes
// them wait for the exclusive lock and competes for the CPU with them (a
// run reads every port of a bridge: 8-20 ms at 400 ports, one or two per
// `docker run`). A steady stream of requests delays it at most
// convergeMaxWait.
const (
	convergeQuiet   = 250 * time.Millisecond
	convergeMaxWait = 2 * time.Second
)

// requests counts the requests under way and when the last one ended.
type requests struct {
	busy     atomic.Int32
	lastDone atomic.Int64 // UnixNano
}

// begin marks a request under way; the returned function ends it.
func (r *requests) begin() func() {
	r.busy.Add(1)
	return func() {
		r.lastDone.Store(time.Now().UnixNano())
		r.busy.Add(-1)
	}
}

// idleFor is how long no request has been under way (0 while one is).
func (r *requests) idleFor(now time.Time) time.Duration {
	if r.busy.Load() > 0 {
		return 0
	}
	return now.Sub(time.Unix(0, r.lastDone.Load()))
}

// waitQuiet returns once no request has been under way for quiet, or
// after max, or when ctx ends.
func (r *requests) waitQuiet(ctx context.Context, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		now := time.Now()
		idle := r.idleFor(now)
		if idle >= quiet || !now.Before(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(quiet-idle, deadline.Sub(now))):
		}
	}
}
