package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/ovsnet/ovsnet/appctl"
	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/api"
	"github.com/ovsnet/ovsnet/controller/bridge"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/lock"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// Versions are the spec versions the plugin takes configurations of.
var Versions = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// Main runs the plugin for the request in the environment (CNI_COMMAND
// and the others) and stdin, prints the result or the spec's error, and
// exits.
func Main(about string) {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: Add, Del: Del, Check: Check, Status: Status, GC: GC}, Versions, about)
}

// timeout bounds one request; the engine's slowest wait has a shorter one.
const timeout = 2 * time.Minute

// request is one request's configuration and where its host is.
type request struct {
	conf     *NetConf
	endpoint string
}

func newRequest(args *skel.CmdArgs) (*request, error) {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return nil, err
	}
	ep, rundir := c.endpoint()
	if rundir != "" {
		// ovs-vswitchd's OpenFlow sockets are next to the database's.
		os.Setenv("OVS_RUNDIR", rundir)
	}
	return &request{conf: c, endpoint: ep}, nil
}

// open connects to the host's OVSDB, holding the convergence lock shared
// as the CLI does.
func (r *request) open(ctx context.Context) (*network.Host, error) {
	if err := lock.Converge(r.endpoint, lock.Shared); err != nil {
		return nil, unavailable(err)
	}
	h, err := network.Open(ctx, r.endpoint, ovn.Backend{})
	if err != nil {
		return nil, unavailable(err)
	}
	return h, nil
}

// withHost runs do on the host's OVSDB and OpenFlow connections, opened
// here (the convergence lock shared), within the request's time.
func (r *request) withHost(do func(context.Context, *network.Host) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h, err := r.open(ctx)
	if err != nil {
		return err
	}
	defer h.Close()
	return do(ctx, h)
}

// unavailable is an error of a host that cannot be reached.
func unavailable(err error) error {
	return types.NewError(types.ErrTryAgainLater, err.Error(), "is Open vSwitch running? `ovsnet doctor` says what is missing")
}

// Add attaches the container's interface: from the controller when one
// runs, else here. Delegated IPAM's addresses are released if it fails.
func Add(args *skel.CmdArgs) (err error) {
	r, err := newRequest(args)
	if err != nil {
		return err
	}
	if !attach.NetnsExists(args.Netns) {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("network namespace %q does not exist", args.Netns), "")
	}
	o, err := r.conf.port(args.ContainerID, args.Netns, args.IfName, args.Args)
	if err != nil {
		return err
	}
	var ipamResult *current.Result
	if t := r.conf.IPAM.Type; t != "" {
		if ipamResult, err = delegateAdd(t, args.StdinData); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				invoke.DelegateDel(context.Background(), t, args.StdinData, nil)
			}
		}()
		o.Addresses, o.Gateway = ipamAddresses(ipamResult)
	}
	subnets, gateways := ipamSubnets(ipamResult)
	port, err := r.attach(r.conf.bridge(subnets, gateways), o)
	if err != nil {
		return err
	}
	res, err := result(r.conf, port, args, ipamResult)
	if err != nil {
		r.detach(o.Iface, o.Container) // a failed ADD leaves nothing
		return err
	}
	return types.PrintResult(res, r.conf.CNIVersion)
}

// attach runs the engine, through the controller if one runs.
func (r *request) attach(b network.BridgeOptions, o network.PortOptions) (*network.PortView, error) {
	port, err := api.AddPortAndBridgeVia(r.endpoint, b, o)
	if errors.Is(err, api.ErrServiceLost) {
		// It may have attached: take it away, and attach here.
		fmt.Fprintf(os.Stderr, "ovsnet: %v: removing what it may have made, then attaching here\n", err)
		if derr := r.detach(o.Iface, o.Container); derr != nil {
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("the controller went away during the attach, and what it made could not be removed: %v", derr),
				"`ovsnet reconcile` (or the controller, once it runs again) removes it")
		}
		err = api.ErrNoService
	}
	if errors.Is(err, api.ErrNoService) {
		var te *types.Error
		err = r.withHost(func(ctx context.Context, h *network.Host) (err error) {
			port, err = bridge.AddPort(ctx, h, b, o)
			return err
		})
		if errors.As(err, &te) {
			return nil, te // the host could not be reached
		}
	}
	switch {
	case errors.Is(err, network.ErrConflict):
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	case err != nil:
		return nil, types.NewError(types.ErrInternal, err.Error(), "")
	}
	return port, nil
}

// detach takes the container's interface away if this network's plugin
// attached it.
func (r *request) detach(iface, container string) error {
	o := network.PortOptions{Bridge: r.conf.Bridge, Iface: iface, Container: container, CNINetwork: r.conf.Name}
	err := api.DetachVia(r.endpoint, o)
	if errors.Is(err, api.ErrNoService) || errors.Is(err, api.ErrServiceLost) {
		err = r.withHost(func(ctx context.Context, h *network.Host) error {
			return h.DelPortIfAttached(ctx, o)
		})
	}
	if errors.Is(err, network.ErrNoBridge) {
		return nil // gone with its bridge
	}
	return err
}

// Del detaches the container's interface and frees what it held. It
// succeeds when the interface, its namespace or the bridge are gone
// already, and when asked again.
func Del(args *skel.CmdArgs) error {
	r, err := newRequest(args)
	if err != nil {
		return err
	}
	if err := r.detach(args.IfName, args.ContainerID); err != nil {
		var te *types.Error
		if errors.As(err, &te) {
			return te
		}
		return types.NewError(types.ErrInternal, err.Error(), "")
	}
	if t := r.conf.IPAM.Type; t != "" {
		return invoke.DelegateDel(context.Background(), t, args.StdinData, nil)
	}
	return nil
}

// Status says whether ADDs can succeed: OVSDB and ovs-vswitchd answer.
func Status(args *skel.CmdArgs) error {
	r, err := newRequest(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := ovsdb.Connect(ctx, r.endpoint)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("OVSDB at %s does not answer: %v", r.endpoint, err), "start Open vSwitch (ovsdb-server)")
	}
	defer db.Close()
	if err := vswitchdAnswers(ovsdb.RunDir()); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "start Open vSwitch (ovs-vswitchd)")
	}
	if err := pipelineInPlace(ctx, db, r.conf.Bridge); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "ovsnet reconcile")
	}
	if t := r.conf.IPAM.Type; t != "" {
		return invoke.DelegateStatus(ctx, t, args.StdinData, nil)
	}
	return nil
}

// pipelineInPlace reports an ovsnet bridge of the network's that has lost
// its flows (a restarted ovs-vswitchd, no controller): an ADD restores
// them, but the containers attached before are cut off until then.
func pipelineInPlace(ctx context.Context, db *ovsdb.Client, bridge string) error {
	br, err := db.GetBridge(ctx, bridge)
	if err != nil || br == nil || !intent.Owned(br.ExternalIDs) {
		return nil // no bridge yet (the first ADD makes it), or an OVN network's
	}
	h := network.New(db, flows.NewSwitch(), nil)
	defer h.Flows.Close()
	return h.PipelineInPlace(bridge)
}

// vswitchdAnswers dials ovs-vswitchd's control socket in dir.
func vswitchdAnswers(dir string) error {
	sock, err := appctl.Socket(dir)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return fmt.Errorf("ovs-vswitchd does not answer on %s: %v", sock, err)
	}
	return c.Close()
}
