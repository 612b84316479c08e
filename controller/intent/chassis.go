package intent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// The Open_vSwitch row's external_ids that make a host an OVN chassis:
// OVN's own keys (ovn-controller reads them), written only through
// Chassis.
const (
	KeyOVNRemote    = "ovn-remote"               // the southbound database
	KeyOVNEncapType = "ovn-encap-type"           // geneve | vxlan
	KeyOVNEncapIP   = "ovn-encap-ip"             // this host's tunnel address
	KeySystemID     = "system-id"                // the chassis' name
	KeyOVNDatapath  = "ovn-bridge-datapath-type" // netdev without the kernel module
	KeyOVNJoined    = "ovsnet-ovn-joined"        // "true": ovsnet joined it (leave undoes only that)
	KeyOVNNB        = "ovsnet-ovn-nb"            // the northbound database networks are made in by default
	KeyOVNBridge    = "ovn-bridge"               // br-int unless set
	KeyOVNMappings  = "ovn-bridge-mappings"      // physical network:bridge pairs
	KeyOVNUplink    = "ovsnet-ovn-uplink"        // the device ovsnet put on the uplink bridge
	DefaultOVNBrInt = "br-int"

	// UplinkNetwork is the physical network a router's gateway leaves
	// by: on a chassis that has an uplink, bridge UplinkBridge holding
	// the device.
	UplinkNetwork = "ovsnet-uplink"
	UplinkBridge  = "ovn-uplink"
)

// UplinkMapping is the ovn-bridge-mappings value of a chassis with an uplink.
const UplinkMapping = UplinkNetwork + ":" + UplinkBridge

// HasUplink says whether ovn-bridge-mappings value m (pairs joined by
// commas, as set or as ovn-controller publishes it) maps ovsnet's uplink.
func HasUplink(m string) bool { return slices.Contains(strings.Split(m, ","), UplinkMapping) }

// Chassis is a host's OVN membership as the Open_vSwitch row records it.
type Chassis struct {
	Remote, EncapType, SystemID, Datapath string
	NB                                    string // ovsnet's default northbound database
	EncapIP                               netip.Addr
	Joined                                bool   // by ovsnet
	Uplink                                string // the device on UplinkBridge; "": none
	Mappings                              string // ovn-bridge-mappings as found
	IntegrationBridge                     string
}

// Encode is the chassis' keys (SystemID is set by the caller when new).
func (c Chassis) Encode() map[string]string {
	m := map[string]string{KeyOVNRemote: c.Remote, KeyOVNEncapType: c.EncapType, KeyOVNEncapIP: c.EncapIP.String(),
		KeySystemID: c.SystemID, KeyOVNJoined: "true"}
	if c.Datapath != "" {
		m[KeyOVNDatapath] = c.Datapath
	}
	if c.NB != "" {
		m[KeyOVNNB] = c.NB
	}
	if c.Uplink != "" {
		m[KeyOVNUplink], m[KeyOVNMappings] = c.Uplink, UplinkMapping
	}
	return m
}

// ChassisKeys are the keys Leave removes (system-id stays: it names the
// host to OVS's own tools too).
var ChassisKeys = []string{KeyOVNRemote, KeyOVNEncapType, KeyOVNEncapIP, KeyOVNDatapath, KeyOVNJoined, KeyOVNNB}

// UplinkKeys are the keys a chassis' uplink sets (both go with it; a
// mapping ovsnet did not set is not touched).
var UplinkKeys = []string{KeyOVNUplink, KeyOVNMappings}

// DecodeChassis reads the Open_vSwitch row's external_ids; an error says
// which key does not parse.
func DecodeChassis(ext map[string]string) (Chassis, error) {
	c := Chassis{Remote: ext[KeyOVNRemote], EncapType: ext[KeyOVNEncapType], SystemID: ext[KeySystemID],
		Datapath: ext[KeyOVNDatapath], Joined: ext[KeyOVNJoined] == "true", IntegrationBridge: ext[KeyOVNBridge], NB: ext[KeyOVNNB],
		Uplink: ext[KeyOVNUplink], Mappings: ext[KeyOVNMappings]}
	if c.IntegrationBridge == "" {
		c.IntegrationBridge = DefaultOVNBrInt
	}
	if v := ext[KeyOVNEncapIP]; v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return c, &Error{Row: "Open_vSwitch", Key: KeyOVNEncapIP, Value: v, Want: "an IP address", Then: "ovn-controller makes no tunnels"}
		}
		c.EncapIP = a
	}
	return c, nil
}

// CheckEncapType refuses what OVN does not tunnel with.
func CheckEncapType(t string) error {
	if t != "geneve" && t != "vxlan" {
		return fmt.Errorf("unknown encapsulation %q: use geneve (OVN's own) or vxlan", t)
	}
	return nil
}

// KeyDockerOVNPrefix, on the Open_vSwitch row, maps a Docker network of
// ovsnet's driver to the OVN network it attaches to: the key ends with the
// Docker network's ID (Docker's networks are this host's alone), the value
// is the OVN network's name.
const KeyDockerOVNPrefix = "ovsnet-docker-ovn:"

// DockerOVNKey is the key mapping Docker network id to its OVN network.
func DockerOVNKey(id string) string { return KeyDockerOVNPrefix + id }
