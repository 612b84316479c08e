package network

import (
	"context"
	"fmt"
	"strings"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/flows"
)

// CheckPort verifies CONTAINER's INTERFACE on BRIDGE against its intent,
// on this host's side: its OVS port, the port's OpenFlow number and flows,
// and its device (a veth's host end; an internal port's device in the
// container). It returns the port's intent, and an error naming every
// difference. What is inside the container the runtime's result says
// (addresses, routes) is the caller's to compare.
func (h *Host) CheckPort(ctx context.Context, bridge, iface, container string) (intent.Port, error) {
	n, err := h.Network(ctx, bridge)
	if err != nil {
		return intent.Port{}, err
	}
	n.Close()
	ifs, ports, err := h.AttachedPort(ctx, n.Bridge(), iface, container)
	if err != nil {
		return intent.Port{}, err
	}
	ifc, port := ifs[0], ports[0]
	p, err := intent.DecodePort(IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil {
		return p, err
	}
	var diffs []string
	if p.State != intent.StateReady {
		diffs = append(diffs, fmt.Sprintf("its attach is not finished (state %s)", p.State))
	}
	if ifc.Ofport == nil || *ifc.Ofport <= 0 {
		diffs = append(diffs, fmt.Sprintf("OVS port %s has no OpenFlow port number (%s)", ifc.Name, cmpErr(ifc.Error)))
	} else if p.Network == "" { // on an OVN network the flows are ovn-controller's
		vlan := 0
		if port.Tag != nil {
			vlan = *port.Tag
		}
		want := len(flows.PortFlows(flowmodel.PortOf(p, ifc.Name, *ifc.Ofport, vlan)))
		n, err := h.Flows.CookieCount(bridge, flows.PortCookie(ifc.Name), flows.ObjectMask)
		switch {
		case err != nil:
			diffs = append(diffs, fmt.Sprintf("the flows of OVS port %s cannot be read: %v", ifc.Name, err))
		case n != want:
			diffs = append(diffs, fmt.Sprintf("OVS port %s has %d flows, its intent %d", ifc.Name, n, want))
		}
		if err := h.PipelineInPlace(bridge); err != nil {
			diffs = append(diffs, err.Error())
		}
	}
	if p.Type == attach.TypeInternal {
		if _, err := attach.LinkState(p.Netns, p.Iface); err != nil {
			diffs = append(diffs, fmt.Sprintf("internal port %s is not in the container as %s: %v", ifc.Name, p.Iface, err))
		}
	} else if st, err := attach.HostLinkState(ifc.Name); err != nil || st != "up" {
		diffs = append(diffs, fmt.Sprintf("veth %s is %s", ifc.Name, cmpOr(err, st)))
	}
	if len(diffs) > 0 {
		return p, fmt.Errorf("%s %s on %s: %s (ovsnet reconcile repairs what it can)", container, iface, bridge, strings.Join(diffs, "; "))
	}
	return p, nil
}

func cmpErr(e *string) string {
	if e == nil || *e == "" {
		return "no error reported"
	}
	return *e
}

func cmpOr(err error, st string) string {
	if err != nil {
		return "missing (" + err.Error() + ")"
	}
	return st
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
