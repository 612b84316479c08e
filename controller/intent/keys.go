// Package intent is the one codec between ovsnet's intent and the
// external_ids of the OVSDB rows that hold it: one Go type per kind of row
// (bridge, container interface, tunnel, underlay), each with an Encode and
// a strict Decode. Nothing else in ovsnet reads or writes these keys, so
// what happens to a value that does not decode is decided here: it is an
// *Error naming the row, the key and the fix, and the decoded value carries
// the strictest reading (a port that sends nothing, a bridge that stays
// isolated), never the loosest.
package intent

import "github.com/ovsnet/ovsnet/ovsdb"

// external_ids keys. All of ovsnet's intent lives in these, so that
// `ovs-vsctl list bridge/interface` shows it and it survives restarts.
const (
	// Written by ovs-docker too, with the same meaning: CONTAINER exactly as the
	// user typed it, and the interface name inside the container.
	KeyContainerID    = "container_id"
	KeyContainerIface = "container_iface"

	KeyOwner     = "ovsnet-owner" // "ovsnet" on every row ovsnet made
	OwnerOvsnet  = "ovsnet"
	KeyBridge    = "ovsnet-bridge"     // interface/port: the bridge it belongs to
	KeyIPv4      = "ovsnet-ipv4"       // interface: ADDR/PLEN
	KeyIPv6      = "ovsnet-ipv6"       // interface: ADDR/PLEN
	KeyMAC       = "ovsnet-mac"        // interface: MAC inside the container
	KeyNetns     = "ovsnet-netns"      // interface: netns path used at attach time
	KeyType      = "ovsnet-type"       // interface: veth|internal
	KeyTxOffload = "ovsnet-tx-offload" // interface: "off" when the container's interface computes its own checksums
	KeyState     = "ovsnet-state"      // interface: StateAttaching, StateReady, StateDetaching; bridge: StateDeleting
	KeyPortGW    = "ovsnet-gateway"    // interface: default gateway(s) set in the container; bridge: gateway address(es)
	KeyMTU       = "ovsnet-mtu"        // interface and bridge
	KeySubnet    = "ovsnet-subnet"     // bridge: comma-separated CIDRs (one per family)
	KeyIPRange   = "ovsnet-ip-range"   // bridge: this host's share of a subnet spanning hosts (one per family)
	KeyMTUAuto   = "ovsnet-mtu-auto"   // bridge: "true" when ovsnet chose ovsnet-mtu from the tunnels' underlay
	KeyICC       = "ovsnet-icc"        // bridge: "true"|"false"
	// interface: the bound, in packets a second, on what the container
	// port sends outside TCP connections under way (connection attempts,
	// UDP, ICMP, ARP, broadcasts); "0": none; unset: DefaultFloodPPS.
	// bridge: the bound its new ports get.
	KeyFloodPPS = "ovsnet-flood-pps"
	KeyNAT      = "ovsnet-nat" // bridge: "true"|"false"
	// bridge: how its datapath takes neighbour solicitations, probed once
	// (OVS's nd_ext capability): NDAnswer (flows answer them) or NDRelay
	// (each goes to its target's owner).
	KeyND  = "ovsnet-nd"
	KeyGen = ovsdb.KeyGen // bridge: bumped by every attach and detach (optimistic concurrency)
	// Bridge allocation state, so that an attach reads O(1) rows however
	// many ports the bridge has. All are starting points for probes, which
	// give uniqueness: a missing or stale value costs probes, not duplicates.
	KeyNextOfport = "ovsnet-next-ofport" // bridge: next ofport_request to hand out
	KeyHintIPv4   = "ovsnet-ipv4-hint"   // bridge: every IPv4 host address below it is in use
	KeyHintIPv6   = "ovsnet-ipv6-hint"   // bridge: likewise for IPv6

	// bridge: one key per link, "ovsnet-link:SRC>DST" = "all" or
	// "80/tcp,53/udp" (SRC and DST as given to ovsnet link).
	KeyLinkPrefix = "ovsnet-link:"

	// bridge: one key per tunnel, "ovsnet-tunnel:REMOTE_IP" =
	// "type=vxlan,key=N,local=IP,port=NAME,ofport=N,mtu=UNDERLAY_MTU".
	KeyTunnelPrefix = "ovsnet-tunnel:"
	// Underlay bridge (the userspace datapath's tunnels need the local
	// address on an OVS bridge): the device it took over and what moved.
	KeyUnderlayDev    = "ovsnet-underlay-dev"
	KeyUnderlayAddrs  = "ovsnet-underlay-addrs"  // CIDRs
	KeyUnderlayRoutes = "ovsnet-underlay-routes" // "DST via GW" or "DST", comma-separated
	KeyUnderlayMTU    = "ovsnet-underlay-mtu"

	// interface: who moves and configures the container's end ("docker":
	// the runtime, through ovsnet's network plugin); unset: ovsnet.
	KeyRuntime = "ovsnet-runtime"
	// interface of a runtime's: the name of the container it belongs to,
	// once known (links name containers by it; a restarted container's
	// new endpoint gets the same name).
	KeyRuntimeName = "ovsnet-runtime-name"
	// interface of a runtime's: the name the runtime gave the container's
	// end (Docker's ethN), once known; shown as the interface
	KeyRuntimeIface = "ovsnet-runtime-iface"
	// interface: the CNI network it was attached for (container_id is the
	// runtime's container ID, container_iface CNI_IFNAME); its runtime
	// ends it (DEL, GC), and a vanished namespace is its end.
	KeyCNINetwork = "ovsnet-cni-network"
	// bridge: the Docker network it carries (its ID), and "true" when the
	// plugin made the bridge for it (then it goes with the network).
	KeyDockerNetwork = "ovsnet-docker-network"
	KeyDockerMade    = "ovsnet-docker-made"
	// bridge: the access VLAN of the Docker network's endpoints (unset: untagged)
	KeyDockerVLAN = "ovsnet-docker-vlan"
	// bridge: "true" for a Docker network made with --internal (no default
	// route in its containers, nothing published)
	KeyDockerInternal = "ovsnet-docker-internal"
	// bridge: the Docker network's name, as Docker reports it once the
	// network exists (show, link, trace... accept it for the bridge)
	KeyDockerName = "ovsnet-docker-name"

	// interface: published ports, "HOST_IP:HOST_PORT:PORT/PROTO,..."
	KeyPublish = "ovsnet-publish"
	// interface: reservations of its published host ports, probed for
	// conflicts: "ovsnet-hostport:PROTO/HOST_IP/HOST_PORT" = "1" and
	// "ovsnet-hostport:PROTO/*/HOST_PORT" = "1".
	KeyHostPortPrefix = "ovsnet-hostport:"

	// interface: "true" on a warm pool's port (ovsnet controller --pool):
	// in OVSDB and ovs-vswitchd with its address, MAC and flows, its
	// container end down in the host until an attach takes it; no
	// container_id until then. Kept while it is detached.
	KeyPool = "ovsnet-pool"
	// interface: on a warm pool's veth whose container end waits in a
	// runtime's network namespace (the Docker plugin's --docker-netns,
	// when not the host's), not in the host: that namespace's path. Only
	// that runtime's handoffs take it (a rename there).
	KeyPoolNetns = "ovsnet-pool-netns"

	// interface on OVN's integration bridge: the OVN network (logical
	// switch) it is a port of; iface-id, OVN's own key, names its logical
	// switch port (ovn-controller binds the two).
	KeyOVNNetwork = "ovsnet-ovn-network"
	KeyIfaceID    = "iface-id"

	// Logical_Switch_Port: the system-id of the chassis whose attach made
	// it, whose convergence removes it when no local interface plugs it.
	KeyOVNChassis = "ovsnet-ovn-chassis"
)

// States of a row (KeyState).
const (
	StateAttaching = "attaching" // interface: rows written, container side not done
	StateReady     = "ready"     // interface: attached
	StateDetaching = "detaching" // interface: being taken away
	StateDeleting  = "deleting"  // bridge: del-br is taking it away
)

// Owned says whether a row's external_ids mark it as ovsnet's.
func Owned(ext map[string]string) bool { return ext[KeyOwner] == OwnerOvsnet }

// Ownership is the external_ids that mark a row as ovsnet's (the whole of
// an ovsnet bridge's Port rows' intent, with the bridge's name).
func Ownership(bridge string) map[string]string {
	m := map[string]string{KeyOwner: OwnerOvsnet}
	if bridge != "" {
		m[KeyBridge] = bridge
	}
	return m
}
