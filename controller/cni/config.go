// Package cni is ovsnet's CNI plugin: it turns the CNI protocol's requests
// (ADD, DEL, CHECK, STATUS, GC, VERSION) into calls of the attach engine,
// made by the controller when one runs on the host, else in the plugin's
// own process. It translates; the attach sequence is the engine's.
package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// NetConf is the network configuration of a plugin of type ovsnet.
type NetConf struct {
	types.PluginConf
	Bridge   string `json:"bridge"`
	Subnet   string `json:"subnet,omitempty"`
	Gateway  string `json:"gateway,omitempty"`
	IPRange  string `json:"ipRange,omitempty"` // this host's share of a subnet spanning hosts
	Subnet6  string `json:"subnet6,omitempty"`
	ICC      *bool  `json:"icc,omitempty"`
	MTU      int    `json:"mtu,omitempty"`
	VLAN     int    `json:"vlan,omitempty"`
	PortType string `json:"portType,omitempty"` // veth | internal
	OVSDB    string `json:"ovsdb,omitempty"`    // unix:PATH, PATH or tcp:HOST:PORT
	// OVN: "bridge" names an OVN network (ovsnet network create), which
	// holds the subnet and isolation: none given here.
	OVN bool `json:"ovn,omitempty"`

	RuntimeConfig struct {
		PortMappings []portMapping `json:"portMappings,omitempty"`
		IPs          []string      `json:"ips,omitempty"`
		MAC          string        `json:"mac,omitempty"`
		Bandwidth    *bandwidth    `json:"bandwidth,omitempty"`
	} `json:"runtimeConfig,omitempty"`
}

// bandwidth is the bandwidth capability (Kubernetes' bandwidth
// annotations): rates in bits a second, bursts in bits.
type bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// rateLimit is the bandwidth capability's caps (zero: none asked).
func (c *NetConf) rateLimit() intent.RateLimit {
	b := c.RuntimeConfig.Bandwidth
	if b == nil {
		return intent.RateLimit{}
	}
	return intent.RateLimit{IngressRate: b.IngressRate, IngressBurst: b.IngressBurst, EgressRate: b.EgressRate, EgressBurst: b.EgressBurst}
}

// portMapping is one entry of the portMappings capability.
type portMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// cniArgs are the CNI_ARGS the reference plugins accept (IP=A[,B] and
// MAC=M) and the pod's name as Kubernetes runtimes (and Podman, its
// container's name) pass it. Fields are named as the keys.
type cniArgs struct {
	types.CommonArgs
	IP                types.UnmarshallableString `json:"ip,omitempty"`
	MAC               types.UnmarshallableString `json:"mac,omitempty"`
	K8S_POD_NAMESPACE types.UnmarshallableString
	K8S_POD_NAME      types.UnmarshallableString
}

// name is the container's name the runtime gave: NAMESPACE/NAME of a
// pod, a bare NAME (Podman's container) without a namespace.
func (a cniArgs) name() string {
	if a.K8S_POD_NAME == "" || a.K8S_POD_NAMESPACE == "" {
		return string(a.K8S_POD_NAME)
	}
	return string(a.K8S_POD_NAMESPACE) + "/" + string(a.K8S_POD_NAME)
}

// parseConf reads stdin's configuration, failing with the spec's codes.
func parseConf(stdin []byte) (*NetConf, error) {
	c := &NetConf{}
	d := json.NewDecoder(bytes.NewReader(stdin))
	if err := d.Decode(c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "network configuration does not decode: "+err.Error(),
			`want e.g. {"cniVersion":"1.1.0","name":"net1","type":"ovsnet","bridge":"br-cni","subnet":"10.60.0.0/24"}`)
	}
	if err := c.check(); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return c, nil
}

// check checks what can be checked without the host.
func (c *NetConf) check() error {
	if c.Bridge == "" {
		return fmt.Errorf(`network %q: "bridge" is missing: name the OVS bridge, e.g. "bridge":"br-cni"`, c.Name)
	}
	if err := attach.CheckName("bridge", c.Bridge); err != nil {
		return err
	}
	if c.OVN {
		if c.Subnet != "" || c.Subnet6 != "" || c.IPRange != "" || c.Gateway != "" || c.IPAM.Type != "" || c.ICC != nil || c.VLAN != 0 {
			return fmt.Errorf(`network %q: "ovn": the OVN network %s holds its subnet and isolation (ovsnet network create): give no "subnet", "subnet6", "ipRange", "gateway", "ipam", "icc" or "vlan"`, c.Name, c.Bridge)
		}
		return attach.CheckMTU(c.MTU)
	}
	if c.Subnet == "" && c.Subnet6 == "" && c.IPAM.Type == "" {
		return fmt.Errorf(`network %q: give "subnet" (and/or "subnet6") for ovsnet's addresses, or an "ipam" section`, c.Name)
	}
	for _, s := range []string{c.Subnet, c.Subnet6} {
		if _, err := netip.ParsePrefix(s); s != "" && err != nil {
			return fmt.Errorf("network %q: subnet %q is not a CIDR", c.Name, s)
		}
	}
	if p, err := netip.ParsePrefix(c.Subnet6); c.Subnet6 != "" && (err != nil || !p.Addr().Is6()) {
		return fmt.Errorf(`network %q: "subnet6" %q is not an IPv6 CIDR`, c.Name, c.Subnet6)
	}
	if c.PortType != "" && c.PortType != "veth" && c.PortType != "internal" {
		return fmt.Errorf(`network %q: "portType" %q: use veth or internal`, c.Name, c.PortType)
	}
	if c.VLAN < 0 || c.VLAN > 4094 {
		return fmt.Errorf(`network %q: "vlan" %d is outside 1..4094`, c.Name, c.VLAN)
	}
	return attach.CheckMTU(c.MTU)
}

// endpoint is the OVSDB endpoint the configuration names (OVS's default
// otherwise), and the directory of ovs-vswitchd's sockets when it is a
// local one.
func (c *NetConf) endpoint() (ep, rundir string) {
	ep = c.OVSDB
	switch {
	case ep == "":
		ep = ovsdb.DefaultEndpoint()
	case strings.HasPrefix(ep, "/"):
		ep = "unix:" + ep
	}
	if p, ok := strings.CutPrefix(ep, "unix:"); ok {
		rundir = filepath.Dir(p)
	}
	return ep, rundir
}

// bridge is the bridge the network's ports go on, made on the first ADD;
// from delegated IPAM, subnets is the result's (the bridge takes the
// gateway then).
func (c *NetConf) bridge(subnets, gateways []string) network.BridgeOptions {
	b := network.BridgeOptions{Name: c.Bridge, MTU: c.MTU, ICC: c.ICC, OVN: c.OVN}
	if c.IPAM.Type != "" {
		b.Subnets, b.Gateways = subnets, gateways
		return b
	}
	for _, s := range []string{c.Subnet, c.Subnet6} {
		if s != "" {
			b.Subnets = append(b.Subnets, s)
		}
	}
	if c.Gateway != "" {
		b.Gateways = []string{c.Gateway}
	}
	if c.IPRange != "" {
		b.Ranges = []string{c.IPRange}
	}
	return b
}

// port is the attach of the container args names: the addresses and MAC
// asked (capabilities first, then CNI_ARGS), the ports to publish.
func (c *NetConf) port(containerID, netns, ifname, args string) (network.PortOptions, error) {
	o := network.PortOptions{Bridge: c.Bridge, Iface: ifname, Container: containerID, Netns: netns,
		CNINetwork: c.Name, Type: c.PortType, VLAN: c.VLAN}
	var a cniArgs
	if err := types.LoadArgs(args, &a); err != nil {
		return o, types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_ARGS: "+err.Error(), "")
	}
	o.Name = a.name()
	o.Addresses = c.RuntimeConfig.IPs
	if len(o.Addresses) == 0 && a.IP != "" {
		o.Addresses = strings.Split(string(a.IP), ",")
	}
	if len(o.Addresses) == 0 {
		o.Addresses = []string{"auto"}
	}
	if o.Rate = c.rateLimit(); o.Rate.WithBursts().Check() != nil {
		return o, types.NewError(types.ErrInvalidNetworkConfig, "runtimeConfig.bandwidth: "+o.Rate.WithBursts().Check().Error(), "")
	}
	if o.Rate.IngressRate > 0 && o.Type == "" {
		// What the container receives waits at a veth's host end: an
		// internal port has none.
		o.Type = attach.TypeVeth
	}
	o.MAC = c.RuntimeConfig.MAC
	if o.MAC == "" {
		o.MAC = string(a.MAC)
	}
	for _, m := range c.RuntimeConfig.PortMappings {
		proto := strings.ToLower(m.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		host := m.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		o.Publish = append(o.Publish, fmt.Sprintf("%s:%d:%d/%s", host, m.HostPort, m.ContainerPort, proto))
	}
	return o, nil
}
