package service

import (
	"context"
	"time"

	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/controller/pool"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// poolQuiet is how long after a take the refill waits for no other take:
// a refill reads the whole bridge and makes ovsdb-server and ovs-vswitchd
// busy, which slowed a take right behind it from ~40 to ~80 ms at 1,000
// ports; takes that come together are refilled together.
const poolQuiet = 250 * time.Millisecond

// keepPool keeps the warm pool at its size: after every convergence run
// (a bridge made, deleted, its pool's port gone) and every take once
// takes pause (poolQuiet) and the containers Docker took them for have
// started (startWait), as one more change holding the host lock shared.
// With a size of 0 it removes whatever pool's ports are left.
func (s *Service) keepPool(ctx context.Context) {
	p := s.h.Pool
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.Woken():
			for quiet := false; !quiet; {
				select {
				case <-p.Woken():
				case <-time.After(poolQuiet):
					quiet = true
				}
			}
			s.requests.waitReleased(ctx, startWait)
			select {
			case <-s.poolKick: // the run after the take: this refill covers it
			default:
			}
		case <-s.poolKick:
		}
		unlock, err := s.sharedLock()
		if err == nil {
			var did []string
			start := time.Now()
			did, err = pool.Converge(ctx, s.h, p)
			for _, d := range did {
				s.o.Log.Info("pool", "change", d, "took", time.Since(start).Round(time.Millisecond).String())
			}
			s.metrics.poolReady.Set(float64(s.poolReady(ctx)))
		}
		unlock()
		if err != nil && ctx.Err() == nil {
			s.o.Log.Error("keeping the pool failed", "err", err)
		}
	}
}

// poolReady counts the pool's ready ports.
func (s *Service) poolReady(ctx context.Context) int {
	sts, err := pool.Read(ctx, s.h)
	if err != nil {
		return 0
	}
	n := 0
	for _, st := range sts {
		for _, ifs := range st.Ready {
			n += len(ifs)
		}
	}
	return n
}

// Drain removes every pool's port of the host (ovsnet controller
// --drain): for a controller stopped for good. It holds the controller
// lock, so no controller refills meanwhile.
func Drain(ctx context.Context, endpoint string) ([]string, error) {
	if endpoint == "" {
		endpoint = ovsdb.DefaultEndpoint()
	}
	held, err := lock.Controller(endpoint)
	if err != nil {
		return nil, err
	}
	defer held.Close()
	h, err := network.Open(ctx, endpoint, ovn.Backend{})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	cl, err := lock.Open(lock.ConvergePath(endpoint))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := lock.Take(cl, lock.Shared); err != nil {
		return nil, err
	}
	return pool.Drain(ctx, h)
}
