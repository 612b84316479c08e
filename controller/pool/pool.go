// Package pool keeps the controller's warm pool (poolstate.Pool: ports made
// ahead of the attaches that take them, which the attach engine claims):
// it reads each bridge's pool's ports, fills the pool to its size and
// shrinks it in one engine run or detach per bridge (Converge), removes a
// pool's port whose links in the host are gone (Check, for reconcile) and
// every pool's port (Drain, for a controller stopped for good).
package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/network/poolstate"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// State is a bridge's pool: its ports, and the ready ones by type.
type State struct {
	Bridge   string
	Datapath string
	Docker   bool // it carries a Docker network
	// Containers: it has ports besides its own, its pool's and its
	// tunnels' (containers', or ports ovsnet did not make).
	Containers bool
	Gen        string // the bridge's generation
	// Cap is the most a pool may hold there: a quarter of its smallest
	// subnet's addresses, so that a small subnet stays the containers'.
	Cap   int
	Ready map[string][]vswitchd.Interface // by type
	Ifs   []vswitchd.Interface
}

// Read reads the pool's ports of every ovsnet bridge with a subnet
// (bridges being deleted left out), from the database itself: a monitor's
// cache may not have heard of the last fill yet.
func Read(ctx context.Context, h *network.Host) ([]State, error) {
	brs, err := ovsdb.Select[vswitchd.Bridge](ctx, h.DB, []ovsdbops.Condition{ovsdb.ExternalIDsInclude(intent.Ownership(""))}, "name", "external_ids", "datapath_type", "ports")
	if err != nil {
		return nil, err
	}
	pooled, err := h.DB.FindInterfaces(ctx, intent.OfAnyPool())
	if err != nil {
		return nil, err
	}
	var out []State
	for _, b := range brs {
		bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
		if bi.Deleting {
			continue
		}
		ps := State{Bridge: b.Name, Datapath: datapath.Of(&b), Docker: bi.Docker.ID != "", Gen: b.ExternalIDs[intent.KeyGen], Ready: map[string][]vswitchd.Interface{}}
		for i, s := range bi.Subnets {
			if n := ipam.HostCount(s) / 4; i == 0 || n < ps.Cap {
				ps.Cap = n
			}
		}
		for _, ifc := range pooled {
			ref := intent.RefOf(ifc.ExternalIDs)
			if ref.Bridge != b.Name || ref.Container != "" {
				continue // a container's row that also says pooled does not decode: never the pool's to remove
			}
			ps.Ifs = append(ps.Ifs, ifc)
			if ref.State == intent.StateReady {
				ps.Ready[ref.Type] = append(ps.Ready[ref.Type], ifc)
			}
		}
		for _, rs := range ps.Ready {
			slices.SortFunc(rs, func(x, y vswitchd.Interface) int {
				return intent.LowestHeld(x.ExternalIDs).Compare(intent.LowestHeld(y.ExternalIDs))
			})
		}
		ps.Containers = len(b.Ports) > 1+len(ps.Ifs)+len(bi.Tunnels)
		if len(bi.Subnets) > 0 || len(ps.Ifs) > 0 {
			out = append(out, ps)
		}
	}
	return out, nil
}

// Converge brings every ovsnet bridge's pool to p: the ports missing
// made in one run of the engine per bridge and type, the ones beyond it
// (or of a type no longer kept) removed in one detach per bridge. Bridges
// without a subnet have none (a pool's port needs an automatic address).
func Converge(ctx context.Context, h *network.Host, p *poolstate.Pool) ([]string, error) {
	states, err := Read(ctx, h)
	if err != nil {
		return nil, err
	}
	var did []string
	var errs []error
	for _, st := range states {
		d, err := convergeBridge(ctx, h, p, st)
		did, errs = append(did, d...), append(errs, err)
	}
	return did, errors.Join(errs...)
}

// convergeBridge is Converge for one bridge.
func convergeBridge(ctx context.Context, h *network.Host, p *poolstate.Pool, st State) ([]string, error) {
	var did []string
	types := p.TypesFor(st.Datapath, st.Docker)
	size := min(p.Size, st.Cap/len(types))
	if !p.Wanted(st.Bridge, st.Containers, time.Now()) {
		size = 0 // idle: nothing attaches there
	}
	// Kept: ready ports of a kept type, up to the size. Not kept: the
	// rest, with half-made ones (attaching: a fill killed half-way; this
	// process fills only here, so none is under way).
	// Kept where they wait: a Docker network's veths in dockerd's
	// namespace (p.RuntimeNetns), the rest in the host; a port waiting
	// elsewhere (the controller restarted with another --docker-netns) goes.
	waits := func(typ string) string { return p.WaitsIn(st.Docker, typ) }
	for typ, rs := range st.Ready {
		st.Ready[typ] = slices.DeleteFunc(rs, func(r vswitchd.Interface) bool { return r.ExternalIDs[intent.KeyPoolNetns] != waits(typ) })
	}
	var drop []int // indexes into st.Ifs
	for j, ifc := range st.Ifs {
		ref := intent.RefOf(ifc.ExternalIDs)
		at := slices.IndexFunc(st.Ready[ref.Type], func(r vswitchd.Interface) bool { return r.UUID == ifc.UUID })
		if !slices.Contains(types, ref.Type) || at < 0 || at >= size {
			drop = append(drop, j)
		}
	}
	if len(drop) > 0 {
		var rows []vswitchd.Interface
		for _, j := range drop {
			rows = append(rows, st.Ifs[j])
		}
		ifs, ports, err := h.DB.PortsOn(ctx, st.Bridge, rows)
		if err != nil {
			return did, err
		}
		if len(ifs) > 0 {
			if err := h.Detach(ctx, st.Bridge, ifs, ports); err != nil {
				return did, fmt.Errorf("shrink the pool of %s: %w", st.Bridge, err)
			}
			did = append(did, fmt.Sprintf("removed %d pool's port(s) from %s", len(ifs), st.Bridge))
		}
	}
	for _, typ := range types {
		n := size - len(st.Ready[typ])
		if n <= 0 || p.Full(st.Bridge, st.Gen) {
			continue
		}
		if err := h.FillPool(ctx, st.Bridge, typ, n, waits(typ)); err != nil {
			if errors.Is(err, ipam.ErrExhausted) {
				p.SetFull(st.Bridge, st.Gen) // attaches take its last addresses; no fill until the bridge changes
				continue
			}
			return did, fmt.Errorf("fill the pool of %s with %d %s port(s): %w", st.Bridge, n, typ, err)
		}
		did = append(did, fmt.Sprintf("added %d %s pool's port(s) to %s", n, typ, st.Bridge))
	}
	return did, nil
}

// Check removes a ready pool's port whose links in the host are
// gone (deleted behind ovsnet's back, or a reboot took its veth): the
// pool makes another. An internal port's tap is ovs-vswitchd's to make
// again. hostLinks nil: not known, nothing done.
func Check(ctx context.Context, h *network.Host, bridge string, ifc vswitchd.Interface, port vswitchd.Port, hostLinks *attach.HostLinks) (string, error) {
	// Its veth's host end here, and its other end here too unless it
	// waits in a runtime's namespace (a pair: the host end's is enough).
	peer := hostLinks != nil && (ifc.ExternalIDs[intent.KeyPoolNetns] != "" || hostLinks.Has(attach.PoolPeer(ifc.Name)))
	if hostLinks == nil || ifc.Type != "" || (hostLinks.Has(ifc.Name) && peer) {
		return "", nil
	}
	if err := h.Detach(ctx, bridge, []vswitchd.Interface{ifc}, []vswitchd.Port{port}); err != nil {
		return "", fmt.Errorf("remove pool's port %s, whose veth is gone: %w", ifc.Name, err)
	}
	return fmt.Sprintf("removed pool's port %s of %s: its veth was gone", ifc.Name, bridge), nil
}

// Drain removes every pool's port of every bridge.
func Drain(ctx context.Context, h *network.Host) ([]string, error) {
	return Converge(ctx, h, poolstate.New(0, nil))
}
