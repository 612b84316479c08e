package ovsdb

// external_ids keys. All of ovsnet's intent lives in these, so that
// `ovs-vsctl list bridge/interface` shows it and it survives restarts.
const (
	// Written by ovs-docker too, with the same meaning: CONTAINER exactly as the
	// user typed it, and the interface name inside the container.
	KeyContainerID    = "container_id"
	KeyContainerIface = "container_iface"

	KeyOwner     = "ovsnet-owner" // "ovsnet" on every row ovsnet made
	OwnerOvsnet  = "ovsnet"
	KeyBridge    = "ovsnet-bridge"  // interface/port: the bridge it belongs to
	KeyIPv4      = "ovsnet-ipv4"    // interface: ADDR/PLEN
	KeyIPv6      = "ovsnet-ipv6"    // interface: ADDR/PLEN
	KeyMAC       = "ovsnet-mac"     // interface: MAC inside the container
	KeyNetns     = "ovsnet-netns"   // interface: netns path used at attach time
	KeyType      = "ovsnet-type"    // interface: veth|internal
	KeyPortGW    = "ovsnet-gateway" // interface: default gateway(s) set in the container; bridge: gateway address(es)
	KeyMTU       = "ovsnet-mtu"     // interface and bridge
	KeySubnet    = "ovsnet-subnet"  // bridge: comma-separated CIDRs (one per family)
	KeyICC       = "ovsnet-icc"     // bridge: "true"|"false"
	KeyNAT       = "ovsnet-nat"     // bridge: "true"|"false"
	KeyGen       = "ovsnet-gen"     // bridge: bumped by every attach (optimistic concurrency)
	KeyHostIface = "ovsnet-host-iface"
)
