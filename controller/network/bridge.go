package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// BridgeOptions are add-br's settings. Nil or empty fields were not given.
type BridgeOptions struct {
	Name     string
	Subnets  []string
	Gateways []string
	Ranges   []string // --ip-range: this host's share of subnets spanning hosts
	MTU      int
	ICC      *bool
	NAT      *bool
	FloodPPS *int // the flood bound of its ports (see PortOptions)
	// Rate is the rate limit of its container interfaces that ask for
	// none of their own (see PortOptions).
	Rate     intent.RateLimit
	Datapath string
	// OVN: Name is an OVN network (ovsnet network create), never made
	// here; without it, an OVN network of that name is taken all the same
	// when no bridge has it.
	OVN bool
}

// LinkTimeout bounds how long ovsnet waits for ovs-vswitchd to create a
// device (a bridge's or an internal port's tap).
var LinkTimeout = 10 * time.Second

// Check checks add-br's options without reading anything and returns the
// subnets they give.
func (o BridgeOptions) Check() ([]ipam.Subnet, error) {
	if err := attach.CheckName("bridge", o.Name); err != nil {
		return nil, err
	}
	if err := attach.CheckMTU(o.MTU); err != nil {
		return nil, err
	}
	if err := CheckFloodPPS(o.FloodPPS); err != nil {
		return nil, err
	}
	if err := o.Rate.WithBursts().Check(); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	if o.Datapath != "" && o.Datapath != datapath.System && o.Datapath != datapath.Netdev {
		return nil, fmt.Errorf("unknown datapath %q: use system (kernel module) or netdev (userspace)", o.Datapath)
	}
	if len(o.Gateways) > 0 && len(o.Subnets) == 0 {
		return nil, fmt.Errorf("--gateway needs --subnet")
	}
	subnets, err := ipam.ParseSubnets(o.Subnets, o.Gateways)
	if err != nil {
		return nil, err
	}
	if err := ipam.SetRanges(subnets, o.Ranges); err != nil {
		return nil, err
	}
	for _, sn := range subnets {
		if err := ipam.CheckUsable(sn.Prefix); err != nil {
			return nil, err
		}
	}
	return subnets, nil
}

// Settings are what the options ask of the bridge.
func (o BridgeOptions) Settings(subnets []ipam.Subnet) intent.Settings {
	s := intent.Settings{Subnets: subnets, GatewaysGiven: len(o.Gateways) > 0, MTU: o.MTU, ICC: o.ICC, NAT: o.NAT, FloodPPS: o.FloodPPS,
		Rate: o.Rate.WithBursts()}
	if o.MTU == 0 && len(o.Ranges) > 0 {
		// Spans hosts: room for the encapsulation until tunnels say
		// exactly how much (tunnel add).
		s.AutoMTU = mesh.DefaultMTU()
	}
	return s
}

// EnsureBridge checks that br, an existing bridge, has the settings o
// gives and re-applies its gateway addresses (add-br again is idempotent;
// a runtime's configuration names a bridge it may have made).
func (h *Host) EnsureBridge(ctx context.Context, br *vswitchd.Bridge, o BridgeOptions) error {
	subnets, err := o.Check()
	if err != nil {
		return err
	}
	if err := o.sameAs(br, o.Settings(subnets)); err != nil {
		return err
	}
	// Made by a request racing this one, ovs-vswitchd may not have it
	// yet: what comes next (flows) needs it there.
	if _, err := h.DB.WaitOfport(ctx, o.Name, LinkTimeout); err != nil {
		return err
	}
	_, err = h.ConvergeBridge(ctx, o.Name, br.ExternalIDs)
	return err
}

// sameAs refuses an existing bridge whose settings differ from those given.
func (o BridgeOptions) sameAs(br *vswitchd.Bridge, s intent.Settings) error {
	diffs := s.Differences(br.ExternalIDs)
	if o.Datapath != "" && datapath.Of(br) != o.Datapath {
		diffs = append(diffs, fmt.Sprintf("datapath is %s, asked %s", datapath.Of(br), o.Datapath))
	}
	if len(diffs) > 0 {
		return Conflict(fmt.Sprintf("bridge %q already exists with other settings (%s): delete it with `ovsnet del-br %s` or repeat its settings", o.Name, strings.Join(diffs, "; "), o.Name))
	}
	return nil
}

// ConvergeBridge puts the gateway addresses and MTU on the bridge's
// internal port and brings it up. It waits for ovs-vswitchd to create the
// device only when there is something to put on it. It returns what it changed.
func (h *Host) ConvergeBridge(ctx context.Context, name string, ext map[string]string) ([]string, error) {
	bi := intent.DecodeBridge(name, ext)
	if bi.SubnetsErr != nil {
		return nil, bi.SubnetsErr
	}
	subnets, mtu := bi.Subnets, bi.MTU
	if len(subnets) == 0 && mtu == 0 {
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, LinkTimeout)
	defer cancel()
	l, err := attach.WaitLink(wctx, name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	var gws []netip.Prefix
	for _, s := range subnets {
		gws = append(gws, netip.PrefixFrom(s.Gateway, s.Prefix.Bits()))
	}
	return attach.ConvergeGatewayDevice(l, gws, mtu)
}

// ErrConflict is wrapped by the errors of a request that conflicts with
// what the host has: a bridge with other settings, an overlapping subnet.
var ErrConflict = errors.New("conflicts with the host's configuration")

// Conflict is an error wrapping ErrConflict with message msg.
func Conflict(msg string) error { return &conflictError{msg} }

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }
func (e *conflictError) Unwrap() error { return ErrConflict }

// ErrNoBridge is wrapped when a named bridge does not exist.
var ErrNoBridge = errors.New("bridge not found")

// NoBridge is ErrNoBridge for the bridge name, with how to make it.
func NoBridge(name string) error {
	return fmt.Errorf("%w: %q: create it with `ovsnet add-br %s --subnet CIDR`", ErrNoBridge, name, name)
}
