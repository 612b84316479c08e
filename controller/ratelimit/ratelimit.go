// Package ratelimit caps a container interface's rates with token-bucket
// shapers (tbf): what the container sends at the root of its side of the
// interface, what it receives at the root of the veth's host end, where
// the switch's copies leave for the container. Shapers queue what is over
// the rate rather than drop it, so TCP through them runs at the rate; the
// switch's own policers (OpenFlow meters, ingress policing) drop, and TCP
// through them lands far from it (measured: see docs/performance.md). The
// limit is intent (intent.RateLimit on the interface's row), put back by
// reconcile like an impairment.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Options is one `ovsnet qos`, or a CNI ADD's bandwidth.
type Options struct {
	Network, Container, Iface string
	Limit                     intent.RateLimit // zero: clear
}

// Result is the interface's limit after Set.
type Result struct {
	Bridge    string `json:"network"`
	Interface string `json:"interface"`
	Said      string `json:"rate_limit"` // in words; "" when cleared
	intent.RateLimit
}

// Set records o's limit on the interface (bursts defaulted) and brings
// its queues to it; a zero limit clears both. If the queues cannot be
// set, the record and the queues go back to what they were.
func Set(ctx context.Context, h *network.Host, o Options) (Result, error) {
	lim := o.Limit.WithBursts()
	if err := lim.Check(); err != nil {
		return Result{}, fmt.Errorf("rate limit: %w", err)
	}
	ci, err := h.FindContainerIface(ctx, o.Network, o.Container, o.Iface)
	if err != nil {
		return Result{}, err
	}
	ifc := ci.Iface
	if err := refuse(*ifc, lim); err != nil {
		return Result{}, err
	}
	was, _, _ := intent.DecodeRateLimit("", ifc.ExternalIDs)
	r := Result{Bridge: ci.Bridge, Interface: ifc.Name, Said: lim.String(), RateLimit: lim}
	if err := h.DB.SetInterfaceKey(ctx, ifc.UUID, intent.KeyRate, lim.Encode()); err != nil {
		return r, err
	}
	if _, err := apply(ctx, *ifc, lim, o.Container, false); err != nil {
		_, uerr := apply(ctx, *ifc, was, o.Container, false)
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return r, errors.Join(err, uerr, h.DB.SetInterfaceKey(rctx, ifc.UUID, intent.KeyRate, ifc.ExternalIDs[intent.KeyRate]))
	}
	return r, nil
}

// SetDefault records lim (bursts defaulted) as the rate limit of the
// container interfaces attached to bridge network name from now on that
// ask for none of their own; a zero lim removes the default. Interfaces
// attached before keep theirs. It returns the bridge's name.
func SetDefault(ctx context.Context, h *network.Host, name string, lim intent.RateLimit) (string, error) {
	lim = lim.WithBursts()
	if err := lim.Check(); err != nil {
		return "", fmt.Errorf("rate limit: %w", err)
	}
	n, err := h.Network(ctx, name)
	if err != nil {
		return "", err
	}
	n.Close()
	if err := n.Refuse(network.SettingDefaultRate); err != nil {
		return "", err
	}
	set, del := map[string]string{intent.KeyRate: lim.Encode()}, []string(nil)
	if lim.IsZero() {
		set, del = nil, []string{intent.KeyRate}
	}
	_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(n.Bridge(), set, del...) })
	return n.Bridge(), err
}

// refuse says why ifc cannot take lim: an internal port has no host end
// to queue what it receives (ovs-vswitchd writes straight into the
// container), and netem (ovsnet impair) holds the root of its container's
// side.
func refuse(ifc vswitchd.Interface, lim intent.RateLimit) error {
	if lim.IngressRate > 0 && ifc.Type == attach.TypeInternal {
		return fmt.Errorf("an ingress rate needs a veth: %s is an internal port, whose packets ovs-vswitchd writes straight into the container past any queue (attach it with --type veth)", ifc.Name)
	}
	if _, has := ifc.ExternalIDs[intent.KeyImpair]; has && lim.EgressRate > 0 {
		return fmt.Errorf("%s's container side is impaired (netem holds its queue): cap what it sends with ovsnet impair --rate, or clear the impairment first", network.OwnerOf(ifc))
	}
	return nil
}

// Converge brings an interface's queues to its limit, for reconcile; one
// with none, or whose container is not running, is left alone.
func Converge(ctx context.Context, ifc vswitchd.Interface) (did string, err error) {
	lim, ok, err := intent.DecodeRateLimit(network.IfaceRow(ifc), ifc.ExternalIDs)
	if !ok || err != nil {
		return "", err
	}
	changed, err := apply(ctx, ifc, lim, "", true)
	if err != nil || !changed {
		return "", err
	}
	return fmt.Sprintf("put back the rate limit of %s (%s)", network.OwnerOf(ifc), lim), nil
}

// ShapeSide caps what ifc's container sends, at its side of the link in
// network namespace netns (a runtime's, which moved the link in itself:
// a Docker sandbox). containers.ErrNotRunning: the link is not there yet.
func ShapeSide(ctx context.Context, ifc vswitchd.Interface, netns string) error {
	lim, ok, err := intent.DecodeRateLimit(network.IfaceRow(ifc), ifc.ExternalIDs)
	if !ok || err != nil || lim.EgressRate == 0 {
		return err
	}
	mac, _ := intent.HeldMAC(ifc.ExternalIDs)
	h, l, err := containers.Side(ctx, netns, nil, mac)
	if err != nil {
		return err
	}
	defer h.Close()
	_, err = attach.Shape(h, l, lim.Egress())
	return err
}

// Missing says which of ifc's shapers are not as its limit asks (none
// when it has no limit, or its container is not running), changing
// nothing: for doctor.
func Missing(ctx context.Context, ifc vswitchd.Interface) ([]string, error) {
	lim, ok, err := intent.DecodeRateLimit(network.IfaceRow(ifc), ifc.ExternalIDs)
	if !ok || err != nil {
		return nil, err
	}
	var missing []string
	if ifc.Type != attach.TypeInternal {
		nh, err := netlink.NewHandle()
		if err != nil {
			return nil, err
		}
		defer nh.Close()
		l, err := nh.LinkByName(ifc.Name)
		if err != nil {
			return nil, fmt.Errorf("host end %s: %w", ifc.Name, err)
		}
		if held, err := attach.Shaped(nh, l, lim.Ingress()); err != nil || !held {
			missing = append(missing, "what it receives (host end "+ifc.Name+")")
		}
	}
	pi, err := intent.DecodePort(network.IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil {
		return missing, err
	}
	h, l, err := containers.Side(ctx, pi.Netns, []string{pi.RuntimeName, pi.Container}, pi.MAC)
	if errors.Is(err, containers.ErrNotRunning) {
		return missing, nil
	}
	if err != nil {
		return missing, err
	}
	defer h.Close()
	if held, err := attach.Shaped(h, l, lim.Egress()); err != nil || !held {
		missing = append(missing, "what it sends (its side)")
	}
	return missing, nil
}

// apply brings both queues of ifc to lim: the host end's (ingress) and
// the container side's (egress). With lenient, a container that is not
// running leaves its side alone.
func apply(ctx context.Context, ifc vswitchd.Interface, lim intent.RateLimit, name string, lenient bool) (changed bool, err error) {
	pi, err := intent.DecodePort(network.IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil {
		return false, err
	}
	if ifc.Type != attach.TypeInternal {
		if changed, err = attach.ShapeHostEnd(ifc.Name, lim.Ingress()); err != nil {
			return changed, fmt.Errorf("queue what %s receives: %w", pi.Container, err)
		}
	}
	h, l, err := containers.Side(ctx, pi.Netns, []string{name, pi.RuntimeName, pi.Container}, pi.MAC)
	if lenient && errors.Is(err, containers.ErrNotRunning) {
		return changed, nil
	}
	if err != nil {
		return changed, err
	}
	defer h.Close()
	c, err := attach.Shape(h, l, lim.Egress())
	if err != nil {
		return changed || c, fmt.Errorf("queue what %s sends: %w", pi.Container, err)
	}
	return changed || c, nil
}
