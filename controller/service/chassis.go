package service

import (
	"context"
	"time"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/ovn"
)

// watchChassis checks, every resync, the OVN chassis `ovsnet ovn join`
// made of this host: ovn-controller running, the chassis in the
// southbound database with its encap address. /healthz lists what is
// wrong (the host's own convergence is not at fault, so it stays 200) and
// ovsnet_ovn_chassis_ready says 1 or 0; a host that did not join reports
// nothing. Apart from convergence: the southbound database may be slow or
// away, and no attach waits for it.
func (s *Service) watchChassis(ctx context.Context) {
	tick := time.NewTicker(s.o.Resync)
	defer tick.Stop()
	for {
		s.checkChassis(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Service) checkChassis(ctx context.Context) {
	root, err := s.h.DB.RootExternalIDs(ctx)
	if err != nil {
		return // convergence reports the database
	}
	if c, _ := intent.DecodeChassis(root); !c.Joined {
		s.setChassis("", false)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := ovn.Read(cctx, s.h)
	if err != nil {
		s.setChassis("ovn: "+err.Error(), true)
		return
	}
	s.setChassis("", st != nil)
}

// setChassis records the chassis' state: problem is "" when it is ready;
// joined false when the host is not a chassis of ovsnet's.
func (s *Service) setChassis(problem string, joined bool) {
	s.mu.Lock()
	s.chassis = problem
	s.mu.Unlock()
	switch {
	case !joined:
		s.metrics.chassis.Set(-1)
	case problem != "":
		s.metrics.chassis.Set(0)
	default:
		s.metrics.chassis.Set(1)
	}
}
