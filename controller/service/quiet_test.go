package service

import (
	"context"
	"testing"
	"time"
)

// TestRequestsQuiet: a request under way is never idle; once it ends the
// idle time runs from its end; waitQuiet returns at its bound even while
// one is under way, and at once when ctx has ended.
func TestRequestsQuiet(t *testing.T) {
	var r requests
	end := r.begin()
	if idle := r.idleFor(time.Now().Add(time.Hour)); idle != 0 {
		t.Fatalf("idle %v while a request is under way", idle)
	}
	r.waitQuiet(context.Background(), time.Hour, 0) // its bound: returns
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.waitQuiet(ctx, time.Hour, time.Hour) // ctx ended: returns
	end()
	done := time.Unix(0, r.lastDone.Load())
	if idle := r.idleFor(done.Add(time.Second)); idle != time.Second {
		t.Fatalf("idle %v a second after the request ended", idle)
	}
	inner := r.begin()
	if idle := r.idleFor(done.Add(time.Hour)); idle != 0 {
		t.Fatalf("idle %v with a second request under way", idle)
	}
	inner()
	r.waitQuiet(context.Background(), 0, time.Hour) // nothing under way: returns
}

// TestRequestsHeld: a hold is a request under way until it is released or
// its time is up, and the idle time runs from then; waitQuiet and
// waitReleased return when another goroutine releases it.
func TestRequestsHeld(t *testing.T) {
	var r requests
	r.hold("ep1", time.Hour)
	now := time.Now()
	if idle := r.idleFor(now.Add(time.Minute)); idle != 0 {
		t.Fatalf("idle %v while a hold is live", idle)
	}
	if until := r.holding(now); until.Before(now.Add(59 * time.Minute)) {
		t.Fatalf("the hold ends by itself at %v, not an hour from now", until)
	}
	r.release("started", "other") // not held: changes nothing
	if idle := r.idleFor(now.Add(time.Minute)); idle != 0 {
		t.Fatalf("idle %v after releasing a key not held", idle)
	}
	done := make(chan struct{})
	go func() {
		r.waitQuiet(context.Background(), 0, time.Hour)
		r.waitReleased(context.Background(), time.Hour)
		close(done)
	}()
	r.release("started", "ep1")
	<-done // a hold left would keep it an hour
	if until := r.holding(time.Now()); !until.IsZero() {
		t.Fatalf("a hold is live after its release, until %v", until)
	}

	// A hold whose time is up ends then.
	r.hold("ep2", time.Minute)
	at := time.Now().Add(2 * time.Minute)
	if idle := r.idleFor(at); idle < time.Minute-time.Second || idle > time.Minute+time.Second {
		t.Fatalf("idle %v a minute after the hold's time was up", idle)
	}
	r.waitReleased(context.Background(), 0) // its bound: returns
	if rel, exp := r.holdsEnded("started"), r.holdsEnded(timedOut); rel != 1 || exp != 1 {
		t.Fatalf("%d holds released and %d timed out, want 1 and 1", rel, exp)
	}
}
