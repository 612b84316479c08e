package service

import (
	"context"
	"time"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/network/links"
)

// nameEndpoints records the name of a container that started on the Docker
// network driver's endpoints (made before their container is known), so
// that links naming it find its new endpoints after a restart.
func (s *Service) nameEndpoints(ctx context.Context, id string) {
	exists, t, err := containers.DockerContainer(ctx, id)
	if err != nil || !exists || t == nil || len(t.Endpoints) == 0 {
		return
	}
	unlock, err := s.sharedLock()
	if err != nil {
		return
	}
	defer unlock()
	if err := links.NameEndpoints(ctx, s.h.DB, t.Name, t.Endpoints); err != nil {
		s.o.Log.Error("name a container's endpoints", "container", t.Name, "err", err)
	}
}

// followContainers follows the container runtime's events: a container
// that starts (again: a restart gives it a new network namespace, without
// the interfaces ovsnet gave it) or is removed sets off a run that looks
// at the ports of vanished namespaces at once (reconcile's
// followRestarts), not at the next resync. A broken stream is followed
// again, backing off to 10 s; a host without a runtime has none.
func (s *Service) followContainers(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := containers.DockerEvents(ctx, func(action, id string) {
			if action == "start" {
				s.nameEndpoints(ctx, id)
			}
			if action == "start" || action == "destroy" {
				s.orphansNow.Store(true)
				s.trigger()
			}
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			wait = time.Second
		}
		s.o.Log.Debug("container events", "err", err, "retry", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}
