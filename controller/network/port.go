package network

import (
	"context"
	"fmt"
	"strings"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/flows"
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
	// Name is the runtime's name of the container when Container is an
	// ID (a pod's NAMESPACE/NAME, Podman's container name): shown, and
	// taken for the container by link, trace and port.
	Name string `json:",omitempty"`
	// Pooled makes a warm pool's port (FillPool): no container, Iface
	// and Container empty. Never from a request.
	Pooled bool `json:"-"`
	// FloodPPS bounds what the port sends outside TCP connections under
	// way, in packets a second (0: no bound); nil: the bridge's bound.
	FloodPPS *int `json:",omitempty"`
	// Rate caps what the interface receives and sends (token-bucket
	// shapers, as ovsnet qos sets them); zero: the bridge's default.
	Rate intent.RateLimit `json:",omitzero"`
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
	Published []string `json:"published,omitempty"`  // as docker port prints them
	Chassis   string   `json:"chassis,omitempty"`    // on an OVN network: the system-id of the chassis it is on
	Impaired  string   `json:"impairment,omitempty"` // what ovsnet impair bends it with, in words
	RateLimit string   `json:"rate_limit,omitempty"` // ovsnet qos's caps, in words
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
	return h.AddPortOn(ctx, n, o)
}

// AddPortOn is AddPort on network n, resolved.
func (h *Host) AddPortOn(ctx context.Context, n Network, o PortOptions) (*PortView, error) {
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
			v := ShownPort(o.Bridge, ifs[0], ports[0])
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

// ContainerPorts finds the ports on bridge that carry CONTAINER's interfaces
// (iface "" for all of them), ovs-docker's included.
func (h *Host) ContainerPorts(ctx context.Context, bridge, container, iface string) (*vswitchd.Bridge, []vswitchd.Interface, []vswitchd.Port, error) {
	if err := attach.CheckName("bridge", bridge); err != nil {
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

// AttachedPort finds CONTAINER's INTERFACE on BRIDGE, or says it is not there
// as ovs-docker does.
func (h *Host) AttachedPort(ctx context.Context, bridge, iface, container string) ([]vswitchd.Interface, []vswitchd.Port, error) {
	if err := attach.CheckName("interface", iface); err != nil {
		return nil, nil, err
	}
	_, ifs, ports, err := h.ContainerPorts(ctx, bridge, container, iface)
	if err == nil && len(ifs) == 0 {
		err = fmt.Errorf("failed to find any attached port in %s for CONTAINER=%s and INTERFACE=%s", bridge, container, iface)
	}
	return ifs, ports, err
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
	bridge = n.Name()
	ifs, ports, err := h.AttachedPort(ctx, bridge, iface, container)
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
	chs, err := links.Changes(ctx, h.DB, bridge, intent.DecodeBridge(bridge, br.ExternalIDs).Links, flowmodel.Involving(container), nil)
	if err != nil {
		return err
	}
	// A port whose intent does not decode gets no flows (its old ones go).
	ch := flows.Change{Cookie: flows.PortCookie(ifs[0].Name), Mask: flows.ObjectMask}
	p, ok, err := flowmodel.DecodePort(ifs[0], vlan)
	if ok {
		ch = flows.PortChange(p)
	}
	if aerr := links.Revoke(ctx, h.Flows, bridge, append(chs, ch)...); aerr != nil {
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

// ContainerIface is a container's interface found on a network by name
// (FindContainerIface): the network's bridge, the rows.
type ContainerIface struct {
	Bridge string
	Iface  *vswitchd.Interface
	Port   *vswitchd.Port
	// NoDropMarks says why the network's pipeline cannot say what it
	// drops (nil: it can, it is ovsnet's own).
	NoDropMarks error
}

// FindContainerIface resolves network name and finds container's
// interface iface on it, as InterfaceOn does.
func (h *Host) FindContainerIface(ctx context.Context, name, container, iface string) (ContainerIface, error) {
	n, err := h.Network(ctx, name)
	if err != nil {
		return ContainerIface{}, err
	}
	defer n.Close()
	ifc, p, err := h.InterfaceOn(ctx, n, container, iface)
	return ContainerIface{Bridge: n.Bridge(), Iface: ifc, Port: p, NoDropMarks: n.Refuse(SettingDropMarks)}, err
}

// InterfaceOn is the Interface row and Port of container's interface
// iface on network n ("": its only one there). The container is named by
// its ID or the runtime's name for it; iface by the name ovsnet gave it or
// the runtime did (a Docker endpoint's eth0).
func (h *Host) InterfaceOn(ctx context.Context, n Network, container, iface string) (*vswitchd.Interface, *vswitchd.Port, error) {
	db := h.DB
	ifs, err := db.FindInterfaces(ctx, intent.OfContainer(container, ""))
	if err == nil && len(ifs) == 0 {
		ifs, err = db.FindInterfaces(ctx, intent.RuntimeName(container))
	}
	if err != nil {
		return nil, nil, err
	}
	// The container's interfaces on the network's bridge only: it may be
	// on other bridges too.
	ifs, ports, err := db.PortsOn(ctx, n.Bridge(), ifs)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	var match []int
	for i, ifc := range ifs {
		if !n.Holds(ifc) {
			continue
		}
		name := ifc.ExternalIDs[intent.KeyContainerIface]
		if rn := ifc.ExternalIDs[intent.KeyRuntimeIface]; rn != "" {
			name = rn
		}
		names = append(names, name)
		if iface == "" || iface == name || iface == ifc.ExternalIDs[intent.KeyContainerIface] {
			match = append(match, i)
		}
	}
	switch {
	case len(names) == 0:
		return nil, nil, fmt.Errorf("container %q has no interface on %s (ovsnet show %s lists what is attached)", container, n.Name(), n.Name())
	case len(match) == 0:
		return nil, nil, fmt.Errorf("container %q has no interface %q on %s; it has %s", container, iface, n.Name(), strings.Join(names, ", "))
	case len(match) > 1:
		return nil, nil, fmt.Errorf("container %q has %d interfaces on %s (%s): name one, as %s:%s", container, len(match), n.Name(),
			strings.Join(names, ", "), container, names[0])
	}
	return &ifs[match[0]], &ports[match[0]], nil
}
