package service

import (
	"context"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// startWait bounds how long the controller holds back its work on the host
// (a convergence run, the pool's refill) after the Docker driver joined an
// endpoint, for its container's start event: Docker is still starting the
// container, and the work would compete with it for ovsdb-server,
// ovs-vswitchd and the CPU. A container that never starts (and whose
// endpoint Docker does not delete) is waited for this long.
const startWait = 2 * time.Second

// Why a hold for a container's start ended (besides timedOut).
const (
	holdStarted = "started" // its start event
	holdRemoved = "removed" // Docker deleted the endpoint: it will not start
)

// started handles a container's start event: its Docker endpoints' holds
// end, and their records get the container's name.
func (s *Service) started(ctx context.Context, id string) {
	exists, t, err := containers.DockerContainer(ctx, id)
	if err != nil || !exists || t == nil || len(t.Endpoints) == 0 {
		return
	}
	defer s.requests.release(holdStarted, t.Endpoints...)
	s.nameEndpoints(ctx, t)
}

// nameEndpoints records the name of a container that started on the Docker
// network driver's endpoints (made before their container is known), so
// that links naming it find its new endpoints after a restart.
func (s *Service) nameEndpoints(ctx context.Context, t *containers.Target) {
	unlock, err := s.sharedLock()
	if err != nil {
		return
	}
	defer unlock()
	if err := links.NameEndpoints(ctx, s.h.DB, t.Name, t.Endpoints); err != nil {
		s.o.Log.Error("name a container's endpoints", "container", t.Name, "err", err)
	}
	if err := s.nameInterfaces(ctx, t); err != nil {
		s.o.Log.Error("record the names Docker gave a container's interfaces", "container", t.Name, "err", err)
	}
}

// nameInterfaces records the name Docker gave each endpoint's interface in
// the container (eth0, eth1...: it picks them when it moves them in), found
// there by the endpoint's MAC, so that show says what the container sees.
func (s *Service) nameInterfaces(ctx context.Context, t *containers.Target) error {
	names, err := attach.LinkNamesByMAC(t.Netns)
	if err != nil {
		return err
	}
	set := map[string]string{} // row UUID -> name
	for _, ep := range t.Endpoints {
		ifs, err := s.h.DB.FindInterfaces(ctx, intent.OfContainer(ep, ""))
		if err != nil {
			return err
		}
		for _, i := range ifs {
			mac, ok := intent.HeldMAC(i.ExternalIDs)
			ref := intent.RefOf(i.ExternalIDs)
			if name := names[mac.String()]; ok && ref.Runtime != "" && name != "" && name != ref.RuntimeIface {
				set[i.UUID] = name
			}
		}
	}
	if len(set) == 0 {
		return nil
	}
	_, err = s.h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		for uuid, name := range set {
			tx.SetInterfaceExternalIDs(uuid, intent.RuntimeIface(name))
		}
	})
	return err
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
				s.started(ctx, id)
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
