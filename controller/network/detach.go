package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// DelPort detaches CONTAINER's INTERFACE; it fails if there is none.
func (h *Host) DelPort(ctx context.Context, network, iface, container string) error {
	n, err := h.Network(ctx, network)
	if err != nil {
		return err
	}
	defer n.Close()
	ifs, ports, err := h.AttachedPort(ctx, n.Bridge(), iface, container)
	if err != nil {
		return err
	}
	return h.detachOne(ctx, n.Bridge(), ifs, ports, nil)
}

// DelPortIfAttached is DelPort for a request the controller may have
// carried out already (ErrServiceLost), and for runtimes' deletes: no such
// port is not an error. With o.CNINetwork, only a port the CNI plugin
// attached for that network goes (not one another network or the CLI
// attached for the same container and interface).
func (h *Host) DelPortIfAttached(ctx context.Context, o PortOptions) error {
	n, err := h.Network(ctx, o.Bridge)
	if err != nil {
		return err
	}
	defer n.Close()
	bridge := n.Bridge()
	_, ifs, ports, err := h.ContainerPorts(ctx, bridge, o.Container, o.Iface)
	if err != nil {
		return err
	}
	all := len(ifs)
	if o.CNINetwork != "" {
		ifs, ports = cniAttached(ifs, ports, o.CNINetwork)
	}
	if len(ifs) > 0 {
		return h.detachOne(ctx, bridge, ifs, ports, o.Handoff)
	}
	if all > 0 {
		return nil // someone else's
	}
	return h.dropStrayHostEnd(ctx, attach.HostName(bridge, o.Container, o.Iface))
}

// cniAttached keeps the interfaces (and their ports) attached by the CNI
// plugin for network.
func cniAttached(ifs []vswitchd.Interface, ports []vswitchd.Port, network string) ([]vswitchd.Interface, []vswitchd.Port) {
	var outI []vswitchd.Interface
	var outP []vswitchd.Port
	for j, i := range ifs {
		if intent.RefOf(i.ExternalIDs).CNINetwork == network {
			outI, outP = append(outI, i), append(outP, ports[j])
		}
	}
	return outI, outP
}

// dropStrayHostEnd deletes the veth host end named name when no OVS
// interface holds it: its port was deleted behind ovsnet's back
// (ovs-vsctl del-port lets the device go, and the kernel datapath then
// leaves it in the host). The runtime's DEL is the last word on it.
func (h *Host) dropStrayHostEnd(ctx context.Context, name string) error {
	ifs, err := ovsdb.Select[vswitchd.Interface](ctx, h.DB, []ovsdbops.Condition{ovsdb.NameIs(name)}, "_uuid")
	if err != nil || len(ifs) > 0 {
		return err
	}
	l, err := netlink.LinkByName(name)
	if err != nil || l.Type() != "veth" {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s, the host end of a veth whose OVS port is gone: %w", name, err)
	}
	return nil
}

// DelPorts detaches all interfaces of the containers from bridge, in one
// detach (the kernel's link deletions in one request); none attached is
// not an error. It says how many went.
func (h *Host) DelPorts(ctx context.Context, bridge string, containers ...string) (int, error) {
	if err := attach.CheckName("bridge", bridge); err != nil {
		return 0, err
	}
	// One read of everything, not three round trips per container.
	topo, err := h.DB.ReadAll(ctx)
	if err != nil {
		return 0, err
	}
	n, err := h.Network(ctx, bridge)
	if err != nil {
		return 0, err
	}
	defer n.Close()
	br := topo.Bridge(n.Bridge())
	if br == nil {
		return 0, nil // an OVN network: no integration bridge, no ports
	}
	want := map[string]bool{}
	for _, c := range containers {
		want[c] = true
	}
	var ifs []vswitchd.Interface
	var ports []vswitchd.Port
	all, allPorts := topo.BridgeInterfaces(br)
	for i, ifc := range all {
		if want[ifc.ExternalIDs[intent.KeyContainerID]] && n.Holds(ifc) {
			ifs, ports = append(ifs, ifc), append(ports, allPorts[i])
		}
	}
	if len(ifs) == 0 {
		return 0, nil
	}
	return len(ifs), h.Detach(ctx, br.Name, ifs, ports)
}

// Detach takes ports away in an order that a kill at any point leaves for
// reconcile to finish, and that frees an address only once the interface
// holding it is gone: the rows are marked detaching, the published ports'
// rules go, then the devices (veth host ends take the container ends with
// them; internal ports are deleted in the container), then the flows
// (while ovs-vswitchd is not yet busy taking hundreds of ports away), then
// the rows with the address hints lowered, in one transaction.
func (h *Host) Detach(ctx context.Context, bridge string, ifs []vswitchd.Interface, ports []vswitchd.Port) error {
	tr := steptime.New()
	defer tr.Done(fmt.Sprintf("detach of %d interface(s) from %s", len(ifs), bridge))
	if err := h.markDetaching(ctx, ifs); err != nil {
		return err
	}
	tr.Step("mark detaching")
	var uuids []string
	for _, p := range ports {
		uuids = append(uuids, p.UUID)
	}
	var freed []netip.Addr
	for _, i := range ifs {
		for _, p := range intent.HeldAddrs(i.ExternalIDs) {
			freed = append(freed, p.Addr())
		}
	}
	if err := h.NAT().ReleaseAll(ifs); err != nil {
		return err
	}
	tr.Step("published ports")
	if err := RemoveLinks(ifs, h.Devices, h.Tell()); err != nil {
		return err
	}
	tr.Step("devices")
	gone := map[string]int{}
	containers := map[string]bool{}
	for _, i := range ifs {
		gone[i.Name] = 0
		if i.Ofport != nil {
			gone[i.Name] = *i.Ofport
		}
		containers[intent.RefOf(i.ExternalIDs).Container] = true
	}
	// The backend's part, as the rows say: an OVN network's logical ports
	// (on the integration bridge, whose flows are ovn-controller's), or
	// the bridge's flows for the ports and their links.
	if slices.ContainsFunc(ifs, IsLogical) {
		if h.OVN == nil {
			return fmt.Errorf("the OVN ports among those detached keep their logical ports: this process has no OVN backend")
		}
		if err := h.OVN.Detach(ctx, h, ifs); err != nil {
			return err
		}
	} else if err := h.dropFlowsOf(ctx, bridge, containers, gone); err != nil {
		return err
	}
	tr.Step("flows")
	if err := h.removePorts(ctx, bridge, uuids, freed); err != nil {
		return err
	}
	tr.Step("rows")
	err := h.HandOffDefaultRoutes(ctx, ifs)
	tr.Step("default routes")
	return err
}

// markDetaching records in one transaction that the ovsnet interfaces
// among ifs are being taken away: reconcile finishes what a killed detach
// left (finishDetach).
func (h *Host) markDetaching(ctx context.Context, ifs []vswitchd.Interface) error {
	_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		for _, i := range ifs {
			if ref := intent.RefOf(i.ExternalIDs); ref.Owned && ref.State != intent.StateDetaching {
				tx.SetInterfaceExternalIDs(i.UUID, intent.State(intent.StateDetaching))
			}
		}
	})
	return err
}

// FinishDetach completes the detach of an interface whose process died
// half-way (the host lock guarantees no live process is still at it).
func (h *Host) FinishDetach(ctx context.Context, bridge string, ifc vswitchd.Interface, port vswitchd.Port) (string, error) {
	if err := h.Detach(ctx, bridge, []vswitchd.Interface{ifc}, []vswitchd.Port{port}); err != nil {
		return "", fmt.Errorf("finish the detach of %s: %w", ifc.Name, err)
	}
	return fmt.Sprintf("finished interrupted detach of %s (%s, left %s)", ifc.Name, OwnerOf(ifc), intent.RefOf(ifc.ExternalIDs).State), nil
}

// HandOffDefaultRoutes gives a default route back to containers that lost
// theirs with a detached interface: through another of their ovsnet
// interfaces with a gateway of that family, if they have one. A container
// that kept its route (it was elsewhere) is left as it is.
func (h *Host) HandOffDefaultRoutes(ctx context.Context, gone []vswitchd.Interface) error {
	need := map[string]string{} // container: its namespace
	for _, g := range gone {
		ref := intent.RefOf(g.ExternalIDs)
		if c, ns := ref.Container, ref.Netns; c != "" && ref.HasGateway && need[c] == "" && h.Devices.NetnsExists(ns) {
			need[c] = ns
		}
	}
	if len(need) == 0 {
		return nil
	}
	rest, err := h.interfacesOf(ctx, need)
	if err != nil {
		return err
	}
	var errs []error
	for c, ns := range need {
		for _, i := range rest[c] {
			cfg, err := ConfigFromIntent(i)
			if r := intent.RefOf(i.ExternalIDs); err != nil || r.State != intent.StateReady || r.Netns != ns || len(cfg.Gateways) == 0 {
				continue
			}
			if err := h.Devices.EnsureDefaultRoutes(ns, cfg.Name, cfg.Gateways); err != nil {
				errs = append(errs, fmt.Errorf("hand %s's default route to %s: %w", c, cfg.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// interfacesOf reads the interfaces of the containers in cs (their keys),
// grouped by container: one container's through a select of its own, many
// in one read of every interface (not one request each).
func (h *Host) interfacesOf(ctx context.Context, cs map[string]string) (map[string][]vswitchd.Interface, error) {
	var ifs []vswitchd.Interface
	var err error
	if len(cs) == 1 {
		for c := range cs {
			ifs, err = h.DB.FindInterfaces(ctx, intent.OfContainer(c, ""))
		}
	} else {
		ifs, err = ovsdb.Select[vswitchd.Interface](ctx, h.DB, nil)
	}
	if err != nil {
		return nil, err
	}
	by := map[string][]vswitchd.Interface{}
	for _, i := range ifs {
		if c := i.ExternalIDs[intent.KeyContainerID]; c != "" {
			if _, ok := cs[c]; ok {
				by[c] = append(by[c], i)
			}
		}
	}
	return by, nil
}

// dropFlowsOf removes the flows of detached ports (by OVS port name, with
// their OpenFlow port numbers: 0 when not known) and recomputes the links
// of their containers (whose ends are now gone), in one bundle; then
// their meters go. The ports' rows may still be there: the links are
// recomputed without them.
func (h *Host) dropFlowsOf(ctx context.Context, bridge string, containers map[string]bool, ports map[string]int) error {
	br, err := h.DB.GetBridge(ctx, bridge)
	if err != nil || br == nil || !intent.Owned(br.ExternalIDs) {
		return err // OVN's integration bridge: its flows are ovn-controller's
	}
	var chs []flows.Change
	var meters []uint32
	for p, ofport := range ports {
		chs = append(chs, flows.Change{Cookie: flows.PortCookie(p), Mask: flows.ObjectMask})
		if ofport > 0 {
			meters = append(meters, uint32(ofport))
		}
	}
	rest := func(c string) ([]flows.PortModel, error) {
		ps, err := links.ContainerPorts(ctx, h.DB, bridge, c)
		return slices.DeleteFunc(ps, func(p flows.PortModel) bool { _, gone := ports[p.Name]; return gone }), err
	}
	lchs, err := links.Changes(ctx, h.DB, bridge, intent.DecodeBridge(bridge, br.ExternalIDs).Links, func(s, d string) bool { return containers[s] || containers[d] }, rest)
	if err != nil {
		return err
	}
	err = h.Flows.ApplySpread(bridge, append(chs, lchs...)...)
	if err == nil {
		err = h.Flows.DeleteMeters(bridge, meters)
	}
	if flows.Unserved(err) {
		// No ovs-vswitchd: no flows to take away. The one that comes back
		// gets the bridge's flows from the intent, without these ports.
		return nil
	}
	return err
}

// removePorts deletes ports from the bridge and lowers its address hints
// below the freed addresses, guarded like an attach so that it cannot race
// with an allocation.
func (h *Host) removePorts(ctx context.Context, bridge string, uuids []string, freed []netip.Addr) error {
	return ovsdb.OnConflict(func() error {
		br, err := h.DB.GetBridge(ctx, bridge)
		if err != nil {
			return err
		}
		if br == nil {
			return NoBridge(bridge)
		}
		_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) {
			if intent.Owned(br.ExternalIDs) { // not OVN's integration bridge: its addresses are OVN's
				tx.GuardBridge(bridge, br.ExternalIDs, alloc.LowerHints(intent.DecodeBridge(bridge, br.ExternalIDs), freed))
			}
			tx.DeletePorts(bridge, uuids...)
		})
		return err
	})
}

// RemoveLinks deletes the devices of detached container interfaces: veth host
// ends (which take the container ends with them) and internal ports.
func RemoveLinks(ifs []vswitchd.Interface, d attach.Devices, p steptime.Teller) error {
	var errs []error
	var host []string // veths' host ends, and pool's internal ports
	type internal struct {
		ref intent.Ref
		mac net.HardwareAddr // the port's, as configured: its identity in the container
	}
	var internals []internal
	for _, i := range ifs {
		ref := intent.RefOf(i.ExternalIDs)
		switch {
		case ref.Container == "" && !ref.Pooled:
			continue
		case i.Type == "":
			host = append(host, i.Name) // a pool's veth's waiting end goes with it
		case i.Type == "internal" && ref.Netns != "":
			mac, _ := intent.HeldMAC(i.ExternalIDs)
			internals = append(internals, internal{ref, mac})
		case i.Type == "internal" && ref.Pooled:
			// Still in the host: gone now, not whenever ovs-vswitchd
			// next reconfigures after the row goes.
			host = append(host, i.Name)
		}
	}
	// Each internal port in its own container: a request (and an RCU
	// grace period) each.
	if len(internals) > 0 {
		p.Phase("delete internal ports in their containers", len(internals))
	}
	for _, in := range internals {
		if err := d.DeleteInternal(in.ref.Netns, in.ref.Iface, in.mac); err != nil {
			errs = append(errs, err)
		}
		p.Add(1)
	}
	// The host's links, in one request: one RCU wait for them all.
	if err := d.DeleteLinks(host); err != nil {
		errs = append(errs, fmt.Errorf("delete host links: %w", err))
	}
	return errors.Join(errs...)
}
