package cni

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/flows"
)

// Check verifies an attachment against the result ADD gave: the OVS port,
// its number and flows (checkPort), and in the container the
// interface, its MAC, addresses and routes. It names every difference.
func Check(args *skel.CmdArgs) error {
	r, err := newRequest(args)
	if err != nil {
		return err
	}
	if r.conf.RawPrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs the prevResult of ADD", "")
	}
	if err := version.ParsePrevResult(&r.conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	prev, err := current.NewResultFromResult(r.conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	return r.withHost(func(ctx context.Context, h *network.Host) error {
		p, err := checkPort(ctx, h, r.conf.Bridge, args.IfName, args.ContainerID)
		if err != nil {
			return err
		}
		if p.Netns != args.Netns {
			return fmt.Errorf("%s %s is attached in namespace %s, not %s", args.ContainerID, args.IfName, p.Netns, args.Netns)
		}
		if err := checkContainer(args, p, prev); err != nil {
			return err
		}
		if t := r.conf.IPAM.Type; t != "" {
			return invoke.DelegateCheck(ctx, t, args.StdinData, nil)
		}
		return nil
	})
}

// checkContainer compares the container's side with the intent and the
// result: the interface and its MAC, the result's addresses on it, and its
// routes.
func checkContainer(args *skel.CmdArgs, p intent.Port, prev *current.Result) error {
	var ips []*current.IPConfig
	for _, ipc := range prev.IPs {
		if ipc.Interface != nil && *ipc.Interface < len(prev.Interfaces) && prev.Interfaces[*ipc.Interface].Name == args.IfName {
			ips = append(ips, ipc)
		}
	}
	return ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		l, err := netlink.LinkByName(args.IfName)
		if err != nil {
			return fmt.Errorf("interface %s is not in the container: %v", args.IfName, err)
		}
		var diffs []string
		if got := l.Attrs().HardwareAddr.String(); got != p.MAC.String() {
			diffs = append(diffs, fmt.Sprintf("%s has MAC %s, its port %s", args.IfName, got, p.MAC))
		}
		if err := ip.ValidateExpectedInterfaceIPs(args.IfName, ips); err != nil {
			diffs = append(diffs, err.Error())
		}
		if err := ip.ValidateExpectedRoute(prev.Routes); err != nil {
			diffs = append(diffs, err.Error())
		}
		if len(diffs) > 0 {
			return errors.New(strings.Join(diffs, "; "))
		}
		return nil
	})
}

// GC detaches every attachment ovsnet made for the network that is not
// among the valid attachments, and has delegated IPAM collect its own.
func GC(args *skel.CmdArgs) error {
	r, err := newRequest(args)
	if err != nil {
		return err
	}
	valid := map[string]bool{}
	for _, a := range r.conf.ValidAttachments {
		valid[a.ContainerID+"/"+a.IfName] = true
	}
	return r.withHost(func(ctx context.Context, h *network.Host) error {
		ifs, err := h.DB.FindInterfaces(ctx, intent.OfCNINetwork(r.conf.Name))
		if err != nil {
			return err
		}
		var errs []error
		for _, ifc := range ifs {
			ref := intent.RefOf(ifc.ExternalIDs)
			if valid[ref.Container+"/"+ref.Iface] {
				continue
			}
			if err := h.DelPortIfAttached(ctx, network.PortOptions{Bridge: ref.Bridge, Iface: ref.Iface, Container: ref.Container, CNINetwork: r.conf.Name}); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", ref.Container, ref.Iface, err))
			}
		}
		if t := r.conf.IPAM.Type; t != "" {
			errs = append(errs, invoke.DelegateGC(ctx, t, args.StdinData, nil))
		}
		return errors.Join(errs...)
	})
}

// checkPort verifies CONTAINER's INTERFACE on BRIDGE against its intent,
// on this host's side: its OVS port, the port's OpenFlow number and flows,
// and its device (a veth's host end; an internal port's device in the
// container). It returns the port's intent, and an error naming every
// difference. What is inside the container the runtime's result says
// (addresses, routes) is the caller's to compare.
func checkPort(ctx context.Context, h *network.Host, bridge, iface, container string) (intent.Port, error) {
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
	p, err := intent.DecodePort(network.IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil {
		return p, err
	}
	var diffs []string
	if p.State != intent.StateReady {
		diffs = append(diffs, fmt.Sprintf("its attach is not finished (state %s)", p.State))
	}
	if ifc.Ofport == nil || *ifc.Ofport <= 0 {
		diffs = append(diffs, fmt.Sprintf("OVS port %s has no OpenFlow port number (%s)", ifc.Name, portErr(ifc.Error)))
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
		diffs = append(diffs, fmt.Sprintf("veth %s is %s", ifc.Name, stateOr(err, st)))
	}
	if len(diffs) > 0 {
		return p, fmt.Errorf("%s %s on %s: %s (ovsnet reconcile repairs what it can)", container, iface, bridge, strings.Join(diffs, "; "))
	}
	return p, nil
}

func portErr(e *string) string {
	if e == nil || *e == "" {
		return "no error reported"
	}
	return *e
}

func stateOr(err error, st string) string {
	if err != nil {
		return "missing (" + err.Error() + ")"
	}
	return st
}
