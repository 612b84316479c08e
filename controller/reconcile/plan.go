package reconcile

import (
	"context"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// The decisions of a run, from OVSDB rows alone: pure, so that they are
// tested without a host.

// portStep is what a run does for one interface of an ovsnet bridge.
type portStep int

const (
	leave            portStep = iota // not ovsnet's, or nothing to check
	finishDetach                     // a detach was killed half-way (or a runtime's attach)
	finishAttach                     // an attach was killed after its rows
	reattachInternal                 // an internal port: back into its container if ovs-vswitchd re-created it
	checkVeth                        // a veth: its offloads and its host end's state
	checkPooled                      // a pool's port: its links in the host
)

// planPort decides the step for interface ifc.
func planPort(ifc vswitchd.Interface) portStep {
	ref := intent.RefOf(ifc.ExternalIDs)
	switch {
	case !ref.Owned:
		return leave
	case ref.State == intent.StateDetaching:
		return finishDetach
	case ref.IsPool() && ref.State == intent.StateAttaching:
		// A pool's port whose making died half-way: nobody waits for it.
		return finishDetach
	case ref.IsPool():
		return checkPooled
	case ref.State == intent.StateAttaching && (ref.Runtime != "" || ref.CNINetwork != ""):
		// A runtime's attach (a plugin request) that died half-way: the
		// runtime was told it failed and will not use it.
		return finishDetach
	case ref.State == intent.StateAttaching:
		return finishAttach
	case ifc.Type == "internal":
		return reattachInternal
	case ifc.Type == "":
		return checkVeth
	}
	return leave
}

// orphan is an ovsnet interface whose container is gone.
type orphan struct {
	bridge string
	ifc    vswitchd.Interface
	port   vswitchd.Port
}

// vanished lists the ovsnet interfaces of topo whose network namespace is
// gone (exists says whether a namespace path still exists).
func vanished(topo *ovsdb.Topology, exists func(string) bool) []orphan {
	var out []orphan
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		ifs, ports := topo.BridgeInterfaces(b)
		for j, ifc := range ifs {
			ref := intent.RefOf(ifc.ExternalIDs)
			if ref.Owned && ref.Netns != "" && !exists(ref.Netns) {
				out = append(out, orphan{bridge: b.Name, ifc: ifc, port: ports[j]})
			}
		}
	}
	return out
}

// unfinishedDeletes are the ovsnet bridges a killed del-br left marked
// deleting.
func unfinishedDeletes(topo *ovsdb.Topology) []string {
	var out []string
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if bi := intent.DecodeBridge(b.Name, b.ExternalIDs); bi.Owned && bi.Deleting {
			out = append(out, b.Name)
		}
	}
	return out
}

// orphanAction is what becomes of an interface whose namespace is gone.
type orphanAction int

const (
	keep     orphanAction = iota // its container exists, stopped: it comes back when it starts
	reattach                     // its container runs again, in another namespace
	remove                       // its container is gone
)

// lookupFunc says whether the container runtime knows a container, and,
// if it runs, where (containers.DockerContainer).
type lookupFunc func(ctx context.Context, ref string) (exists bool, running *containers.Target, err error)

// orphanStep decides for orphan o, asking the runtime through lookup.
func orphanStep(ctx context.Context, o orphan, lookup lookupFunc) (orphanAction, error) {
	ref := intent.RefOf(o.ifc.ExternalIDs)
	if ref.CNINetwork != "" {
		// A CNI runtime attaches a restarted container anew (ADD).
		return remove, nil
	}
	exists, running, err := lookup(ctx, ref.Container)
	switch {
	case err != nil:
		return keep, err
	case !exists:
		return remove, nil
	case running != nil && running.Netns != ref.Netns:
		return reattach, nil
	}
	return keep, nil
}
