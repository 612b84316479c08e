package network

import (
	"context"
	"fmt"

	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/flows"
)

// The flows of containers and links as operations need them: what the
// flows are is package flowmodel's to say.

// checkPipeline starts finding out whether bridge's pipeline is in place
// (a restarted ovs-vswitchd has no flows, and no controller may run to
// restore them), overlapping the caller's other work; the returned
// function waits for the answer and, if the pipeline is gone, puts back
// every flow of the bridge (else an attach would install only its own
// port's flows onto a bridge that forwards nothing, and report success).
// One flow-count request by cookie, skipped while this process's
// connection to the bridge is the one it last checked over (the
// controller: a restart breaks the connection).
func (h *Host) checkPipeline(bridge string) (ensure func(context.Context) error) {
	epoch, open := h.Flows.Epoch(bridge)
	h.mu.Lock()
	seen, ok := h.pipelineSeen[bridge]
	h.mu.Unlock()
	if open && ok && seen == epoch {
		return func(context.Context) error { return nil }
	}
	type answer struct {
		n   int
		err error
	}
	done := make(chan answer, 1)
	go func() {
		n, err := h.Flows.CookieCount(bridge, flows.BridgeCookie(), flows.ObjectMask)
		done <- answer{n, err}
	}()
	return func(ctx context.Context) error {
		a := <-done
		if a.err != nil {
			return a.err
		}
		if a.n == 0 {
			if err := h.restoreFlows(ctx, bridge); err != nil {
				return fmt.Errorf("bridge %s had lost its flows (ovs-vswitchd restarted?) and putting them back failed (run ovsnet reconcile): %w", bridge, err)
			}
		}
		epoch, _ := h.Flows.Epoch(bridge)
		h.mu.Lock()
		if h.pipelineSeen == nil {
			h.pipelineSeen = map[string]uint64{}
		}
		h.pipelineSeen[bridge] = epoch
		h.mu.Unlock()
		return nil
	}
}

// restoreFlows puts back every object's flows of bridge as its intent
// says (what reconcile converges to), replacing by cookie: an attach
// running meanwhile keeps the flows it installs.
func (h *Host) restoreFlows(ctx context.Context, bridge string) error {
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return err
	}
	b := topo.Bridge(bridge)
	if b == nil {
		return NoBridge(bridge)
	}
	ifs, ports := topo.BridgeInterfaces(b)
	bf, err := flowmodel.Of(topo, b, flowmodel.DecodePorts(ifs, ports))
	if err != nil {
		return err
	}
	return h.Flows.ApplySpread(bridge, bf.Changes()...)
}

// PipelineInPlace says, as an error, when ovsnet bridge bridge has lost
// its pipeline (ovs-vswitchd restarted with no controller to restore it):
// it then forwards nothing, whatever its ports' flows.
func (h *Host) PipelineInPlace(bridge string) error {
	n, err := h.Flows.CookieCount(bridge, flows.BridgeCookie(), flows.ObjectMask)
	switch {
	case err != nil:
		return fmt.Errorf("the flows of bridge %s cannot be read: %v", bridge, err)
	case n == 0:
		return fmt.Errorf("bridge %s has lost its flows and forwards nothing (ovs-vswitchd restarted?): run ovsnet reconcile, or the controller, which restores them", bridge)
	}
	return nil
}
