// Package mirror keeps a bridge's standing mirrors (`ovsnet mirror`):
// copies of what some containers (or every port) send and receive, for an
// analyzer container such as an IDS. The mirror is intent on the bridge
// (intent.Mirror); Converge makes the OVS Mirror rows follow it and the
// containers' ports as they come and go (a restarted container's new
// port), from the commands and from reconcile. The analyzer's interface
// on the bridge is the mirror's output port, which OVS reserves for the
// copies, as a switch's SPAN port: what the analyzer sends there is
// dropped.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// View is a mirror as list and show report it.
type View struct {
	intent.Mirror
	Ports  int    `json:"ports"`  // the ports it copies (0 with All)
	Copied int    `json:"copied"` // packets sent to the analyzer so far
	State  string `json:"state"`  // "copying", or why not
}

// Add records the mirror m on network name (replacing one to the same
// analyzer) and makes it. The analyzer and every source must be on the
// network now, with one interface for the analyzer.
func Add(ctx context.Context, h *network.Host, name string, m intent.Mirror) (View, error) {
	n, err := bridgeOf(ctx, h, name)
	if err != nil {
		return View{}, err
	}
	defer n.Close()
	if _, _, err := h.InterfaceOn(ctx, n, m.To, ""); err != nil {
		return View{}, fmt.Errorf("analyzer: %w", err)
	}
	for _, f := range m.From {
		if f == m.To {
			return View{}, fmt.Errorf("%s cannot mirror to itself: its interface becomes the mirror's output", f)
		}
		ports, err := portsOf(ctx, h.DB, n.Bridge(), f)
		if err == nil && len(ports) == 0 {
			err = fmt.Errorf("container %q has no interface on %s", f, n.Bridge())
		}
		if err != nil {
			return View{}, err
		}
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(n.Bridge(), m.Encode()) }); err != nil {
		return View{}, err
	}
	if _, err := Converge(ctx, h, n.Bridge(), []intent.Mirror{m}, false); err != nil {
		return View{}, err
	}
	vs, err := List(ctx, h, n.Bridge())
	for _, v := range vs {
		if v.To == m.To {
			return v, err
		}
	}
	return View{Mirror: m}, err
}

// Del removes the mirror to analyzer to from network name; none there is
// an error naming the ones there are.
func Del(ctx context.Context, h *network.Host, name, to string) error {
	n, err := bridgeOf(ctx, h, name)
	if err != nil {
		return err
	}
	defer n.Close()
	br, err := h.DB.GetBridge(ctx, n.Bridge())
	if err != nil {
		return err
	}
	if _, ok := br.ExternalIDs[intent.MirrorKey(to)]; !ok {
		return fmt.Errorf("%s has no mirror to %s (ovsnet mirror list %s shows its mirrors)", n.Bridge(), to, n.Bridge())
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs(n.Bridge(), nil, intent.MirrorKey(to)) }); err != nil {
		return err
	}
	bi := intent.DecodeBridge(br.Name, br.ExternalIDs)
	rest := slices.DeleteFunc(bi.Mirrors, func(m intent.Mirror) bool { return m.To == to })
	_, err = Converge(ctx, h, n.Bridge(), rest, true)
	return err
}

// List is network name's mirrors with what OVS does with them.
func List(ctx context.Context, h *network.Host, name string) ([]View, error) {
	n, err := bridgeOf(ctx, h, name)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	br, err := h.DB.GetBridge(ctx, n.Bridge())
	if err != nil {
		return nil, err
	}
	rows, err := rowsOn(ctx, h.DB, n.Bridge())
	if err != nil {
		return nil, err
	}
	var vs []View
	for _, m := range intent.DecodeBridge(br.Name, br.ExternalIDs).Mirrors {
		v := View{Mirror: m, State: "copying"}
		r, ok := rows[m.To]
		switch {
		case m.Err != nil:
			v.State = m.Err.Error()
		case !ok || r.OutputPort == nil || (!m.All && len(r.SelectSrcPort) == 0):
			// No row, or one whose ports went (OVSDB drops the references
			// of a deleted port; the next convergence removes the row).
			v.State = "waiting: " + m.To + " or every source has no port on " + n.Bridge()
		default:
			v.Ports, v.Copied = len(r.SelectSrcPort), r.Statistics["tx_packets"]
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// bridgeOf is network name, which must be one of this host's bridges.
func bridgeOf(ctx context.Context, h *network.Host, name string) (network.Network, error) {
	n, err := h.Network(ctx, name)
	if err != nil {
		return nil, err
	}
	if n.Name() != n.Bridge() {
		n.Close()
		return nil, fmt.Errorf("%s is an OVN network: mirrors are on ovsnet's own bridges only", name)
	}
	return n, nil
}

// portsOf are the UUIDs of container c's ports on bridge (by its ID, else
// the runtime's name for it).
func portsOf(ctx context.Context, db *ovsdb.Client, bridge, c string) ([]string, error) {
	ifs, err := db.FindInterfaces(ctx, intent.OfContainerOn(bridge, c))
	if err == nil && len(ifs) == 0 {
		ifs, err = db.FindInterfaces(ctx, intent.NamedOn(bridge, c))
	}
	var out []string
	for _, ifc := range ifs {
		if err != nil {
			break
		}
		var p *vswitchd.Port
		if p, err = db.PortOn(ctx, bridge, ifc.UUID); p != nil {
			out = append(out, p.UUID)
		}
	}
	slices.Sort(out)
	return out, err
}

// rowsOn are bridge's standing mirrors' rows, by analyzer.
func rowsOn(ctx context.Context, db *ovsdb.Client, bridge string) (map[string]vswitchd.Mirror, error) {
	ms, err := ovsdb.Select[vswitchd.Mirror](ctx, db,
		[]ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{intent.KeyMirrorBridge: bridge})})
	out := map[string]vswitchd.Mirror{}
	for _, m := range ms {
		out[m.ExternalIDs[intent.KeyMirrorTo]] = m
	}
	return out, err
}

// Converge brings bridge's standing mirrors' rows to ms, in one
// transaction: a mirror whose analyzer, or every source, has no port
// there has no row until they do. With all, rows of mirrors not in ms go
// (ms is then every mirror the bridge has). It says what it changed.
func Converge(ctx context.Context, h *network.Host, bridge string, ms []intent.Mirror, all bool) ([]string, error) {
	db := h.DB
	rows, err := rowsOn(ctx, db, bridge)
	if err != nil {
		return nil, err
	}
	var did []string
	var errs []error
	tx := db.Tx()
	for _, m := range ms {
		if m.Err != nil {
			delete(rows, m.To) // reported with the bridge's intent; its row stays as it is
			continue
		}
		r, has := rows[m.To]
		delete(rows, m.To)
		spec, ok, err := specOf(ctx, db, bridge, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case !ok && has:
			tx.DeleteMirrors(bridge, r.UUID)
			did = append(did, fmt.Sprintf("mirror %s on %s waits for its ports", m.Says(), bridge))
		case ok && !has:
			tx.AddMirror(bridge, spec)
			did = append(did, fmt.Sprintf("mirror %s on %s made", m.Says(), bridge))
		case ok && !same(r, spec):
			tx.UpdateMirror(r.UUID, spec)
			did = append(did, fmt.Sprintf("mirror %s on %s follows its containers' ports", m.Says(), bridge))
		}
	}
	for to, r := range rows {
		if all {
			tx.DeleteMirrors(bridge, r.UUID)
			did = append(did, fmt.Sprintf("mirror to %s on %s removed", to, bridge))
		}
	}
	if tx.Empty() {
		return did, errors.Join(errs...)
	}
	tx.BumpNextCfg()
	if _, err := tx.Commit(ctx); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	// Copies stop (or start) for every packet only once ovs-vswitchd has
	// the change and its datapath's cached flows were translated again,
	// which a mirror alone does not make it do (flows.Touch).
	if err := db.WaitApplied(ctx, 30*time.Second); err != nil {
		return did, errors.Join(append(errs, err)...)
	}
	add, del := flows.Touch()
	err = h.Flows.Apply(bridge, add)
	if err == nil {
		err = h.Flows.Apply(bridge, del)
	}
	if err == nil {
		err = h.Flows.WaitRevalidated(ctx)
	}
	if err != nil {
		err = fmt.Errorf("mirrors of %s changed, but flows cached before may copy as before until they expire: %w", bridge, err)
	}
	return did, errors.Join(append(errs, err)...)
}

// specOf is the row mirror m wants on bridge; ok is false when it can have
// none now.
func specOf(ctx context.Context, db *ovsdb.Client, bridge string, m intent.Mirror) (ovsdb.MirrorSpec, bool, error) {
	out, err := portsOf(ctx, db, bridge, m.To)
	if err != nil || len(out) != 1 {
		return ovsdb.MirrorSpec{}, false, err
	}
	spec := ovsdb.MirrorSpec{Name: "ovsnet-mirror-" + m.To, Output: out[0], All: m.All,
		ExternalIDs: map[string]string{intent.KeyMirrorTo: m.To, intent.KeyMirrorBridge: bridge}}
	for _, f := range m.From {
		ps, err := portsOf(ctx, db, bridge, f)
		if err != nil {
			return spec, false, err
		}
		spec.Select = append(spec.Select, ps...)
	}
	slices.Sort(spec.Select)
	return spec, m.All || len(spec.Select) > 0, nil
}

// same says whether row r does what spec asks.
func same(r vswitchd.Mirror, spec ovsdb.MirrorSpec) bool {
	src, dst := slices.Clone(r.SelectSrcPort), slices.Clone(r.SelectDstPort)
	slices.Sort(src)
	slices.Sort(dst)
	return r.OutputPort != nil && *r.OutputPort == spec.Output && r.SelectAll == spec.All &&
		slices.Equal(src, spec.Select) && slices.Equal(dst, spec.Select)
}
