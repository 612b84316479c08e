package show

import (
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
)

// BridgeView is one bridge as show reports it.
type BridgeView struct {
	Name       string             `json:"name"`
	Datapath   string             `json:"datapath"`
	Ovsnet     bool               `json:"managed_by_ovsnet"`
	Subnets    []string           `json:"subnets,omitempty"`
	IPRanges   []string           `json:"ip_ranges,omitempty"`
	Gateways   []string           `json:"gateways,omitempty"`
	MTU        int                `json:"mtu,omitempty"`
	ICC        bool               `json:"icc"`
	NAT        bool               `json:"nat"`
	RateLimit  string             `json:"default_rate_limit,omitempty"` // new interfaces' cap, in words (add-br --rate, qos --default)
	Router     string             `json:"router,omitempty"`             // an OVN network's router (ovsnet router attach)
	Egress     string             `json:"router_gateway,omitempty"`     // its router's way out: ADDRESS (ovsnet router create --gateway-chassis)
	Services   []string           `json:"services,omitempty"`           // an OVN network's services: NAME VIP
	Ports      []network.PortView `json:"containers"`
	Links      []LinkView         `json:"links,omitempty"`
	Mirrors    []intent.Mirror    `json:"mirrors,omitempty"` // standing mirrors (ovsnet mirror list says what they copy)
	Tunnels    []intent.Tunnel    `json:"tunnels,omitempty"`
	Errors     []string           `json:"intent_errors,omitempty"` // of the bridge's own settings, which do not decode
	UnderlayOf string             `json:"underlay_of,omitempty"`   // a bridge ovsnet made to hold a device's address for tunnels
	UplinkOf   string             `json:"uplink_of,omitempty"`     // the bridge ovn join --uplink made, holding that device
	OtherPorts []string           `json:"other_ports,omitempty"`
	Docker     *Docker            `json:"docker_network,omitempty"` // the Docker network it carries
	// Pool is the warm pool's ports (ovsnet controller --pool): no
	// container's yet, apart from Ports.
	Pool []network.PortView `json:"pool,omitempty"`
}

// Docker is the Docker network a bridge carries, as show reports it.
type Docker struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"` // as Docker names it, once recorded
	VLAN     int    `json:"vlan,omitempty"`
	Internal bool   `json:"internal,omitempty"`
}

// LinkView is one link as show reports it.
type LinkView struct {
	intent.Link
	// Dangling are the ends with no port on the bridge (detached): the link
	// lets nothing through until they are attached again (ovsnet unlink
	// removes it).
	Dangling []string `json:"dangling,omitempty"`
}

// DatapathOVN is how show names an OVN network's "datapath".
const DatapathOVN = "ovn"
