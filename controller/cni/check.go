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

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
)

// Check verifies an attachment against the result ADD gave: the OVS port,
// its number and flows (network.CheckPort), and in the container the
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
		p, err := h.CheckPort(ctx, r.conf.Bridge, args.IfName, args.ContainerID)
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
