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
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network/alloc"
	"github.com/ovsnet/ovsnet/controller/steptime"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/ipam"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// PortOptions are add-port's arguments.
type PortOptions struct {
	Bridge, Iface, Container string
	// Addresses: "auto" allocates the lowest free address of each of the
	// bridge's families not given explicitly; anything else is ADDR[/PLEN].
	Addresses []string
	Gateway   string
	MAC       string
	MTU       int
	VLAN      int
	Type      string   // veth|internal; "" picks the datapath's default
	Publish   []string // -p specs: [HOST_IP:][HOST_PORT:]PORT[/proto]
	// DefaultRoute takes the container's default route even where another
	// interface holds it (by default the first attachment keeps it).
	DefaultRoute bool `json:",omitempty"`
	// Handoff, when set, leaves the container's end to a runtime.
	Handoff *Handoff `json:",omitempty"`
	// Netns is the container's network namespace when the caller knows
	// it (a CNI runtime): Container is then only the ID recorded.
	Netns string `json:",omitempty"`
	// CNINetwork records the port as the CNI plugin's, for that network.
	CNINetwork string `json:",omitempty"`
	// Pooled makes a warm pool's port (FillPool): no container, Iface
	// and Container empty. Never from a request.
	Pooled bool `json:"-"`
	// FloodPPS bounds what the port sends outside TCP connections under
	// way, in packets a second (0: no bound); nil: the bridge's bound.
	FloodPPS *int `json:",omitempty"`
}

// Handoff is an attach whose container end a runtime moves into the
// container and configures itself (Docker, through ovsnet's network
// plugin): the veth's container end is left in Netns under Name, with the
// port's MAC and MTU, and ovsnet neither resolves nor configures the
// container.
type Handoff struct {
	Runtime string // "docker"
	Netns   string // where the runtime takes the link from
	Name    string // the link's name there
}

// routes is the attach's default-route policy.
func (o PortOptions) routes() attach.RoutePolicy {
	if o.DefaultRoute {
		return attach.RouteReplace
	}
	return attach.RouteIfNone
}

// PortView is an attached container interface, as add-port and show
// report it.
type PortView struct {
	Bridge    string   `json:"bridge"`
	Container string   `json:"container"`
	Iface     string   `json:"interface"`
	Addresses []string `json:"addresses,omitempty"`
	Gateways  []string `json:"gateways,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	MTU       int      `json:"mtu,omitempty"`
	VLAN      int      `json:"vlan,omitempty"`
	FloodPPS  int      `json:"flood_pps"` // 0: no bound
	Type      string   `json:"type"`
	OVSPort   string   `json:"ovs_port"`
	Ofport    int      `json:"ofport,omitempty"`
	Netns     string   `json:"netns,omitempty"`
	Runtime   string   `json:"runtime,omitempty"` // the runtime whose endpoint it is ("docker"), Container its ID
	Name      string   `json:"name,omitempty"`    // the runtime's name of the container, once known
	State     string   `json:"state,omitempty"`
	Error     string   `json:"error,omitempty"`
	Published []string `json:"published,omitempty"` // as docker port prints them
	Chassis   string   `json:"chassis,omitempty"`   // on an OVN network: the system-id of the chassis it is on
}

// DefaultType is the attach type used on a datapath when --type is not
// given, chosen from throughput measured on the userspace datapath (see
// README): an internal port moved into the container carried 9.5 Gbit/s
// (0.90x a Linux bridge) where a veth carried 6.3 with userspace TSO on
// (offloads kept) and 0.64 with it off (offloads off, which TCP needs then).
// On the kernel datapath a veth is what ovs-docker and Docker use.
func DefaultType(datapath string) string {
	if datapath == DatapathNetdev {
		return attach.TypeInternal
	}
	return attach.TypeVeth
}

// checkType refuses attach type typ where datapath dp cannot carry it: on
// the kernel datapath a port device keeps the name it was made with, so an
// internal port renamed in its container is re-created by ovs-vswitchd
// under its old name in the host, and its OpenFlow port then leads there.
func checkType(dp, typ string) error {
	if dp == DatapathSystem && typ == attach.TypeInternal {
		return fmt.Errorf("an internal port cannot be renamed in its container on the kernel datapath (system): " +
			"ovs-vswitchd would re-create it in the host under its old name; use --type veth, the default there")
	}
	return nil
}

// AddPort attaches CONTAINER to BRIDGE as INTERFACE: the attach engine
// (attachPorts) with one interface. On any failure it rolls back
// everything it did: links, the OVS port, the address.
func (h *Host) AddPort(ctx context.Context, o PortOptions) (*PortView, error) {
	n, err := h.Network(ctx, o.Bridge)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	return h.addPort(ctx, n, o)
}

// addPort is AddPort on network n, resolved.
func (h *Host) addPort(ctx context.Context, n Network, o PortOptions) (*PortView, error) {
	ps, err := h.attachPorts(ctx, n, []PortOptions{o}, false)
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// ResumeAddPort carries out an add-port that the controller took but went
// away during (ErrServiceLost), holding the host's lock as any CLI change
// does: a port it finished is reported as done, one it left half-made is
// removed, and the attach is then made here.
func (h *Host) ResumeAddPort(ctx context.Context, o PortOptions) (*PortView, error) {
	_, ifs, ports, err := h.ContainerPorts(ctx, o.Bridge, o.Container, o.Iface)
	if err != nil {
		return nil, err
	}
	if len(ifs) > 0 && intent.Owned(ifs[0].ExternalIDs) {
		if intent.RefOf(ifs[0].ExternalIDs).State == intent.StateReady {
			v := shownPort(o.Bridge, ifs[0], ports[0])
			return &v, nil
		}
		if err := h.Detach(ctx, o.Bridge, ifs[:1], ports[:1]); err != nil {
			return nil, fmt.Errorf("remove the half-made port %s the controller left: %w", ifs[0].Name, err)
		}
	}
	// A veth made before its row was committed (the engine makes it
	// first): no row holds its host end, and its container end has the
	// interface's name already.
	if err := h.dropStrayHostEnd(ctx, attach.HostName(o.Bridge, o.Container, o.Iface)); err != nil {
		return nil, err
	}
	return h.AddPort(ctx, o)
}

// portRequest is add-port's options, parsed and checked.
type portRequest struct {
	mac       net.HardwareAddr
	gateway   netip.Addr
	requested []netip.Prefix
	auto      bool
	publish   []nat.Mapping
}

// parsePortOptions checks what can be checked without reading anything.
func parsePortOptions(o PortOptions) (*portRequest, error) {
	if err := CheckIfName("bridge", o.Bridge); err != nil {
		return nil, err
	}
	if err := CheckIfName("interface", o.Iface); err != nil && !o.Pooled {
		return nil, err
	}
	if o.Iface == "lo" {
		return nil, fmt.Errorf("interface name lo is the container's loopback: name another (eth1)")
	}
	if err := CheckMTU(o.MTU); err != nil {
		return nil, err
	}
	if o.VLAN != 0 && (o.VLAN < 1 || o.VLAN > 4094) {
		return nil, fmt.Errorf("VLAN %d is outside 1..4094", o.VLAN)
	}
	if err := CheckFloodPPS(o.FloodPPS); err != nil {
		return nil, err
	}
	if o.Type != "" && o.Type != attach.TypeVeth && o.Type != attach.TypeInternal {
		return nil, fmt.Errorf("unknown attach type %q: use veth or internal", o.Type)
	}
	if o.Handoff != nil && o.Netns != "" {
		return nil, fmt.Errorf("a port handed off to a runtime has no namespace of ovsnet's")
	}
	if h := o.Handoff; h != nil {
		if o.Type != attach.TypeVeth {
			return nil, fmt.Errorf("a port %s moves into its container is a veth", h.Runtime)
		}
		if err := CheckIfName("interface", h.Name); err != nil {
			return nil, err
		}
	}
	var mac net.HardwareAddr
	if o.MAC != "" {
		m, err := ParseMAC(o.MAC)
		if err != nil {
			return nil, err
		}
		mac = m
	}
	var gateway netip.Addr
	if o.Gateway != "" {
		g, err := netip.ParseAddr(o.Gateway)
		if err != nil {
			return nil, fmt.Errorf("malformed gateway %q: want an address such as 173.16.1.1", o.Gateway)
		}
		gateway = g
	}
	auto := false
	var requested []netip.Prefix
	for _, a := range o.Addresses {
		if a == "auto" {
			auto = true
			continue
		}
		p, err := ipam.ParseRequest(a)
		if err != nil {
			return nil, err
		}
		for _, r := range requested {
			if r.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("two %s addresses (%s, %s): give at most one per family", ipam.Family(p.Addr()), r.Addr(), p.Addr())
			}
		}
		requested = append(requested, p)
	}

	var publish []nat.Mapping
	for _, p := range o.Publish {
		m, err := nat.ParseMapping(p)
		if err != nil {
			return nil, err
		}
		publish = append(publish, m)
	}

	return &portRequest{mac: mac, gateway: gateway, requested: requested, auto: auto, publish: publish}, nil
}

// checkOn checks the request against the bridge's settings before anything
// is touched, returning the bridge's subnets and NAT settings.
func (rq *portRequest) checkOn(br intent.Bridge) (subnets []ipam.Subnet, nb nat.Bridge, err error) {
	if br.SubnetsErr != nil {
		return nil, nb, br.SubnetsErr
	}
	subnets = br.Subnets
	if rq.auto && len(subnets) == 0 {
		return nil, nb, fmt.Errorf("--ip without an address needs a subnet on bridge %s: give --ip=ADDR/PLEN, or recreate the bridge with --subnet", br.Name)
	}
	nb, natOK := natplan.BridgeOf(br)
	if len(rq.publish) > 0 && (!natOK || !nb.NAT) {
		return nil, nb, fmt.Errorf("-p needs a bridge in NAT mode (--nat=true with an IPv4 subnet); %s is not", br.Name)
	}
	if len(rq.publish) > 0 && !rq.auto && !alloc.HasFamily(rq.requested, netip.IPv4Unspecified()) {
		return nil, nb, fmt.Errorf("-p needs an IPv4 address on the interface: add --ip")
	}
	// Reject a bad explicit address or gateway before touching anything.
	var onLink []netip.Prefix
	for _, r := range rq.requested {
		p, err := ipam.Validate(r, subnets, nil)
		if err != nil {
			return nil, nb, err
		}
		onLink = append(onLink, p.Masked())
	}
	if rq.auto {
		for _, s := range subnets {
			onLink = append(onLink, s.Prefix)
		}
	}
	if rq.gateway.IsValid() {
		ok := false
		for _, p := range onLink {
			ok = ok || p.Contains(rq.gateway)
		}
		if !ok {
			return nil, nb, fmt.Errorf("gateway %s is not on the interface's %s subnet: give a gateway inside it", rq.gateway, ipam.Family(rq.gateway))
		}
	}
	return subnets, nb, nil
}

// gatewaysFor picks the default gateway of each family the interface has an
// address in: --gateway if given, else the bridge's gateway when the address
// is in the bridge's subnet.
func gatewaysFor(addrs []netip.Prefix, subnets []ipam.Subnet, explicit netip.Addr) []netip.Addr {
	var gws []netip.Addr
	for _, a := range addrs {
		if explicit.IsValid() && explicit.Is4() == a.Addr().Is4() {
			gws = append(gws, explicit)
			continue
		}
		for _, s := range subnets {
			if s.Prefix.Contains(a.Addr()) {
				gws = append(gws, s.Gateway)
			}
		}
	}
	return gws
}

// macFree refuses a MAC that a port of the bridge (holder, "" for none) or
// the bridge's own port has: the impostor would take the other's traffic.
func macFree(br *vswitchd.Bridge, mac net.HardwareAddr, holder string) error {
	if holder != "" {
		return fmt.Errorf("MAC %s is already used on bridge %s by %s: choose another --macaddress, or none", mac, br.Name, holder)
	}
	if gw, err := net.ParseMAC(br.OtherConfig["hwaddr"]); err == nil && gw.String() == mac.String() {
		return fmt.Errorf("MAC %s is bridge %s's own (its gateway's): choose another --macaddress, or none", mac, br.Name)
	}
	return nil
}

// ContainerPorts finds the ports on bridge that carry CONTAINER's interfaces
// (iface "" for all of them), ovs-docker's included.
func (h *Host) ContainerPorts(ctx context.Context, bridge, container, iface string) (*vswitchd.Bridge, []vswitchd.Interface, []vswitchd.Port, error) {
	if err := CheckIfName("bridge", bridge); err != nil {
		return nil, nil, nil, err
	}
	br, err := h.DB.GetBridge(ctx, bridge)
	if err != nil {
		return nil, nil, nil, err
	}
	if br == nil {
		return nil, nil, nil, NoBridge(bridge)
	}
	ifs, err := h.DB.FindInterfaces(ctx, intent.OfContainer(container, iface))
	if err != nil {
		return nil, nil, nil, err
	}
	ifs, ports, err := h.DB.PortsOn(ctx, bridge, ifs)
	return br, ifs, ports, err
}

// attachedPort finds CONTAINER's INTERFACE on BRIDGE, or says it is not there
// as ovs-docker does.
func (h *Host) attachedPort(ctx context.Context, bridge, iface, container string) ([]vswitchd.Interface, []vswitchd.Port, error) {
	if err := CheckIfName("interface", iface); err != nil {
		return nil, nil, err
	}
	_, ifs, ports, err := h.ContainerPorts(ctx, bridge, container, iface)
	if err == nil && len(ifs) == 0 {
		err = fmt.Errorf("failed to find any attached port in %s for CONTAINER=%s and INTERFACE=%s", bridge, container, iface)
	}
	return ifs, ports, err
}

// DelPort detaches CONTAINER's INTERFACE; it fails if there is none.
func (h *Host) DelPort(ctx context.Context, network, iface, container string) error {
	n, err := h.Network(ctx, network)
	if err != nil {
		return err
	}
	defer n.Close()
	ifs, ports, err := h.attachedPort(ctx, n.Bridge(), iface, container)
	if err != nil {
		return err
	}
	return h.Detach(ctx, n.Bridge(), ifs, ports)
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
		return h.Detach(ctx, bridge, ifs, ports)
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
	if err := CheckIfName("bridge", bridge); err != nil {
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
	if err := removeLinks(ifs, h.Devices, h.Tell()); err != nil {
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
	err := h.handOffDefaultRoutes(ctx, ifs)
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
	return fmt.Sprintf("finished interrupted detach of %s (%s)", ifc.Name, OwnerOf(ifc)), nil
}

// handOffDefaultRoutes gives a default route back to containers that lost
// theirs with a detached interface: through another of their ovsnet
// interfaces with a gateway of that family, if they have one. A container
// that kept its route (it was elsewhere) is left as it is.
func (h *Host) handOffDefaultRoutes(ctx context.Context, gone []vswitchd.Interface) error {
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
			cfg, err := configFromIntent(i)
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
		ps, err := h.containerIfaces(ctx, bridge, c)
		return slices.DeleteFunc(ps, func(p flows.PortModel) bool { _, gone := ports[p.Name]; return gone }), err
	}
	lchs, err := h.LinkChanges(ctx, bridge, intent.DecodeBridge(bridge, br.ExternalIDs).Links, func(s, d string) bool { return containers[s] || containers[d] }, rest)
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

// removeLinks deletes the devices of detached container interfaces: veth host
// ends (which take the container ends with them) and internal ports.
func removeLinks(ifs []vswitchd.Interface, d attach.Devices, p Teller) error {
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

// SetVLAN sets the access VLAN of CONTAINER's INTERFACE.
func (h *Host) SetVLAN(ctx context.Context, bridge, iface, container string, vlan int) error {
	if vlan < 1 || vlan > 4094 {
		return fmt.Errorf("VLAN %d is outside 1..4094", vlan)
	}
	n, err := h.Network(ctx, bridge)
	if err != nil {
		return err
	}
	n.Close()
	if err := n.Refuse(SettingVLAN); err != nil {
		return err
	}
	ifs, ports, err := h.attachedPort(ctx, bridge, iface, container)
	if err != nil {
		return err
	}
	if _, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetVLAN(ports[0].UUID, vlan) }); err != nil {
		return err
	}
	// The port's flows carry its VLAN: replace them, and its links'.
	br, err := h.DB.GetBridge(ctx, bridge)
	if err == nil && br == nil {
		err = NoBridge(bridge)
	}
	if err != nil {
		return fmt.Errorf("VLAN %d set on %s, but its flows were not updated (run ovsnet reconcile): %w", vlan, ifs[0].Name, err)
	}
	chs, err := h.LinkChanges(ctx, bridge, intent.DecodeBridge(bridge, br.ExternalIDs).Links, flowmodel.Involving(container), nil)
	if err != nil {
		return err
	}
	// A port whose intent does not decode gets no flows (its old ones go).
	ch := flows.Change{Cookie: flows.PortCookie(ifs[0].Name), Mask: flows.ObjectMask}
	p, ok, err := flowmodel.DecodePort(ifs[0], vlan)
	if ok {
		ch = flows.PortChange(p)
	}
	if aerr := h.revoke(ctx, bridge, append(chs, ch)...); aerr != nil {
		return aerr
	}
	return err
}

// Reattach attaches a container interface again as its intent says, to
// its container as that runs now (a restart gave it another network
// namespace, and the old interface went with the old one): the same
// interface name, addresses, MAC, MTU, VLAN, type and published ports;
// links are the bridge's and stay.
func (h *Host) Reattach(ctx context.Context, bridge string, ifc vswitchd.Interface, port vswitchd.Port) (*PortView, error) {
	pi, err := intent.DecodePort(IfaceRow(ifc), ifc.ExternalIDs)
	if err != nil {
		return nil, err
	}
	o := PortOptions{Bridge: bridge, Iface: pi.Iface, Container: pi.Container, MAC: pi.MAC.String(), MTU: pi.MTU, Type: pi.Type, FloodPPS: &pi.FloodPPS}
	for _, a := range pi.Addrs {
		o.Addresses = append(o.Addresses, a.String())
	}
	if port.Tag != nil {
		o.VLAN = *port.Tag
	}
	for _, m := range natplan.Published(ifc) {
		o.Publish = append(o.Publish, m.String())
	}
	if err := h.Detach(ctx, bridge, []vswitchd.Interface{ifc}, []vswitchd.Port{port}); err != nil {
		return nil, fmt.Errorf("re-attach %s: %w", OwnerOf(ifc), err)
	}
	p, err := h.AddPort(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("re-attach %s: %w", OwnerOf(ifc), err)
	}
	return p, nil
}

// IsLogical says whether ifc is the OVS side of a port of an OVN network.
func IsLogical(ifc vswitchd.Interface) bool {
	return intent.Owned(ifc.ExternalIDs) && ifc.ExternalIDs[intent.KeyOVNNetwork] != ""
}
