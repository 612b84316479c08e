package flows

import (
	"errors"
	"sync"
	"testing"
)

// TestApplyGroupsConcurrentCallers: Applies that arrive while a bundle is
// in flight go together in the next one, and a refused bundle is retried
// caller by caller so that only the caller with the bad change fails.
func TestApplyGroupsConcurrentCallers(t *testing.T) {
	s := NewSwitch()
	const bad = 0xbad
	var mu sync.Mutex
	var sent [][]uint64 // cookies of each bundle, in order
	release := make(chan struct{})
	first := true
	s.bundle = func(bridge string, chs []Change) error {
		mu.Lock()
		var cs []uint64
		for _, c := range chs {
			cs = append(cs, c.Cookie)
		}
		sent = append(sent, cs)
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release // hold the first bundle in flight until the others queue
		}
		for _, c := range chs {
			if c.Cookie == bad {
				return errors.New("refused")
			}
		}
		return nil
	}

	errs := make([]error, 5)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = s.Apply("br", Change{Cookie: 1}) }()
	// Wait until the first bundle is in flight, then queue four more.
	for {
		mu.Lock()
		n := len(sent)
		mu.Unlock()
		if n == 1 {
			break
		}
	}
	cookies := []uint64{2, bad, 4, 5}
	for i, c := range cookies {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i+1] = s.Apply("br", Change{Cookie: c}) }()
	}
	waitQueued(s, "br", 4) // all four behind the first before it returns
	close(release)
	wg.Wait()

	waitIdle(t, s, "br") // the last leader lets go just after its callers return
	if err := s.Apply("br", Change{Cookie: 6}); err != nil {
		t.Errorf("an Apply after the group: %v", err)
	}

	for i, err := range errs {
		if want := i == 2; (err != nil) != want {
			t.Errorf("caller %d: err %v, want failure %v", i, err, want)
		}
	}
	// First alone, then the four together (refused), then each alone.
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 7 || len(sent[0]) != 1 || len(sent[1]) != 4 {
		t.Fatalf("bundles sent: %v, want [1] [2 bad 4 5] then one each", sent)
	}
	retried := map[uint64]bool{}
	for _, c := range sent[2:6] {
		if len(c) == 1 {
			retried[c[0]] = true
		}
	}
	for _, c := range cookies {
		if !retried[c] {
			t.Errorf("change %#x not retried alone: bundles %v", c, sent)
		}
	}
}

// waitQueued waits until n changes are queued for bridge's next bundle.
func waitQueued(s *Switch, bridge string, n int) {
	for {
		s.bmu.Lock()
		q := 0
		if b := s.pending[bridge]; b != nil {
			q = len(b.changes)
		}
		s.bmu.Unlock()
		if q == n {
			return
		}
	}
}

// waitIdle waits until no bundle of bridge is in flight; none may be left
// pending then.
func waitIdle(t *testing.T, s *Switch, bridge string) {
	for {
		s.bmu.Lock()
		busy, pending := s.busy[bridge], s.pending[bridge]
		s.bmu.Unlock()
		if pending != nil {
			t.Fatalf("a batch left pending: %v", pending.changes)
		}
		if !busy {
			return
		}
	}
}
