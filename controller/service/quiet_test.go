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
