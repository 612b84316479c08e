// Package flood changes the flood bounds of container ports and of
// bridges (set-flood-limit): the packets per second of floods (broadcast,
// multicast, unknown unicast) a port may send, held by an OpenFlow meter
// per port. The bound is intent (intent.KeyFloodPPS); flowmodel makes the
// meter and flows from it.
package flood

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Limit is a change of flood bound: of one container interface
// (Iface and Container given) or of a bridge, its new ports and every
// port it has (neither given).
type Limit struct {
	Bridge, Iface, Container string
	PPS                      int
}

// Set changes a flood bound (see Limit), in OVSDB first and
// then in each port's flows and meter. It returns the OVS ports changed.
func Set(ctx context.Context, h *network.Host, o Limit) ([]string, error) {
	if err := network.CheckFloodPPS(&o.PPS); err != nil {
		return nil, err
	}
	if (o.Iface == "") != (o.Container == "") {
		return nil, fmt.Errorf("give both INTERFACE and CONTAINER (one port) or neither (the bridge and all its ports)")
	}
	n, err := h.Network(ctx, o.Bridge)
	if err != nil {
		return nil, err
	}
	n.Close()
	if err := n.Refuse(network.SettingFloodLimit); err != nil {
		return nil, err
	}
	o.Bridge = n.Name()
	var ifs []vswitchd.Interface
	var ports []vswitchd.Port
	err = ovsdb.OnConflict(func() (err error) {
		if o.Iface != "" {
			ifs, ports, err = setPort(ctx, h, o)
		} else {
			ifs, ports, err = setBridge(ctx, h, o)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return apply(h, o, ifs, ports)
}

// setPort records one port's bound.
func setPort(ctx context.Context, h *network.Host, o Limit) ([]vswitchd.Interface, []vswitchd.Port, error) {
	ifs, ports, err := h.AttachedPort(ctx, o.Bridge, o.Iface, o.Container)
	if err != nil {
		return nil, nil, err
	}
	ifs, ports = ifs[:1], ports[:1]
	set := map[string]string{intent.KeyFloodPPS: strconv.Itoa(o.PPS)}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(ifs[0].UUID, set) }); err != nil {
		return nil, nil, err
	}
	ifs[0].ExternalIDs = maps.Clone(ifs[0].ExternalIDs)
	maps.Copy(ifs[0].ExternalIDs, set)
	return ifs, ports, nil
}

// setBridge records the bridge's bound and its ports' in one
// transaction, guarded like an attach: an attach that read the old bound
// either committed before the read here (its port is among those changed)
// or conflicts and reads the new one.
func setBridge(ctx context.Context, h *network.Host, o Limit) ([]vswitchd.Interface, []vswitchd.Port, error) {
	topo, err := h.DB.ReadAllFresh(ctx)
	if err != nil {
		return nil, nil, err
	}
	br := topo.Bridge(o.Bridge)
	if br == nil || !intent.Owned(br.ExternalIDs) {
		return nil, nil, network.NoBridge(o.Bridge)
	}
	all, allPorts := topo.BridgeInterfaces(br)
	set := map[string]string{intent.KeyFloodPPS: strconv.Itoa(o.PPS)}
	var ifs []vswitchd.Interface
	var ports []vswitchd.Port
	for i, ifc := range all {
		if ref := intent.RefOf(ifc.ExternalIDs); ref.IsContainer() || ref.Owned && ref.Pooled {
			ifc.ExternalIDs = maps.Clone(ifc.ExternalIDs)
			maps.Copy(ifc.ExternalIDs, set)
			ifs, ports = append(ifs, ifc), append(ports, allPorts[i])
		}
	}
	_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.GuardBridge(o.Bridge, br.ExternalIDs, set)
		for _, ifc := range ifs {
			tx.SetInterfaceExternalIDs(ifc.UUID, set)
		}
	})
	return ifs, ports, err
}

// apply puts the changed ports' flows and meters in place. A
// port whose intent does not decode gets none (as everywhere).
func apply(h *network.Host, o Limit, ifs []vswitchd.Interface, ports []vswitchd.Port) ([]string, error) {
	var chs []flows.Change
	var names []string
	var unmetered []uint32 // the meters of ports that no longer have one
	for i, ifc := range ifs {
		vlan := 0
		if ports[i].Tag != nil {
			vlan = *ports[i].Tag
		}
		ch := flows.Change{Cookie: flows.PortCookie(ifc.Name), Mask: flows.ObjectMask}
		if p, ok, _ := flowmodel.DecodePort(ifc, vlan); ok {
			ch = flows.PortChange(p)
		}
		if len(ch.Meters) == 0 && ifc.Ofport != nil && *ifc.Ofport > 0 {
			unmetered = append(unmetered, uint32(*ifc.Ofport))
		}
		chs, names = append(chs, ch), append(names, ifc.Name)
	}
	if len(chs) == 0 {
		return nil, nil
	}
	err := h.Flows.ApplySpread(o.Bridge, chs...)
	if err == nil {
		err = h.Flows.DeleteMeters(o.Bridge, unmetered)
	}
	if err != nil {
		return nil, fmt.Errorf("flood bound %d recorded, but the flows were not updated (run ovsnet reconcile): %w", o.PPS, err)
	}
	return names, nil
}
