package service

import (
	"context"
	"sync"
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

// requests counts the requests under way and when the last one ended. A
// hold is a request that ends when it is released or when its time is up:
// the Docker driver's join holds one for its endpoint until the
// container's start event, since Docker is still starting it then.
type requests struct {
	busy     atomic.Int32
	lastDone atomic.Int64 // UnixNano

	mu    sync.Mutex
	held  map[string]time.Time // key -> when the hold ends by itself
	freed chan struct{}        // closed when a hold is released (then replaced)
	ends  map[string]int64     // holds ended, by why (release's reason, or timedOut)
}

// timedOut is why a hold whose time ran out ended.
const timedOut = "timed_out"

// begin marks a request under way; the returned function ends it.
func (r *requests) begin() func() {
	r.busy.Add(1)
	return func() {
		r.ended(time.Now())
		r.busy.Add(-1)
	}
}

// ended records a request's end at t, unless a later one is recorded.
func (r *requests) ended(t time.Time) {
	for {
		last := r.lastDone.Load()
		if last >= t.UnixNano() || r.lastDone.CompareAndSwap(last, t.UnixNano()) {
			return
		}
	}
}

// hold marks a request under way for key until release(key), at most for
// max.
func (r *requests) hold(key string, max time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held == nil {
		r.held = map[string]time.Time{}
	}
	r.held[key] = time.Now().Add(max)
}

// release ends the holds of keys (those not held are ignored), counting
// them under why.
func (r *requests) release(why string, keys ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.held)
	for _, k := range keys {
		delete(r.held, k)
	}
	if len(r.held) == n {
		return
	}
	r.count(why, n-len(r.held))
	r.ended(time.Now())
	if r.freed != nil {
		close(r.freed)
		r.freed = nil
	}
}

// count adds n holds ended for why; r.mu is held.
func (r *requests) count(why string, n int) {
	if r.ends == nil {
		r.ends = map[string]int64{}
	}
	r.ends[why] += int64(n)
}

// holdsEnded says how many holds ended for why, counting those whose time
// is up.
func (r *requests) holdsEnded(why string) int64 {
	r.holding(time.Now())
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ends[why]
}

// holding drops the holds whose time is up at now (each a request that
// ended then) and says when the last of the others ends by itself (zero:
// none is held).
func (r *requests) holding(now time.Time) (until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, t := range r.held {
		if !now.Before(t) {
			delete(r.held, k)
			r.ended(t)
			r.count(timedOut, 1)
		} else if t.After(until) {
			until = t
		}
	}
	return until
}

// released is closed when a hold is next released.
func (r *requests) released() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.freed == nil {
		r.freed = make(chan struct{})
	}
	return r.freed
}

// idleFor is how long no request has been under way (0 while one is).
func (r *requests) idleFor(now time.Time) time.Duration {
	if !r.holding(now).IsZero() || r.busy.Load() > 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, r.lastDone.Load())), 0)
}

// waitQuiet returns once no request has been under way for quiet, or
// after max, or when ctx ends.
func (r *requests) waitQuiet(ctx context.Context, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		freed := r.released() // taken first: a release from here on wakes us
		now := time.Now()
		if !now.Before(deadline) {
			return
		}
		wait := deadline.Sub(now)
		if until := r.holding(now); !until.IsZero() {
			wait = min(wait, until.Sub(now)) // or a release
		} else if idle := r.idleFor(now); idle >= quiet {
			return
		} else {
			wait = min(wait, quiet-idle)
		}
		select {
		case <-ctx.Done():
			return
		case <-freed:
		case <-time.After(wait):
		}
	}
}

// waitReleased returns once nothing is held, or after max, or when ctx
// ends.
func (r *requests) waitReleased(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		freed := r.released()
		now := time.Now()
		until := r.holding(now)
		if until.IsZero() || !now.Before(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-freed:
		case <-time.After(min(until.Sub(now), deadline.Sub(now))):
		}
	}
}
