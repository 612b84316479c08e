package network

import (
	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/intent"
)

// NoTxOffload says whether a container interface must compute its own
// checksums (and so segment its own TCP): on the userspace datapath a veth
// unless ovs-vswitchd runs with userspace TSO (tso, asked only then: else
// OVS forwards partial-checksum packets as they are, and TCP stalls), and
// any interface on a network spanning hosts, because OVS 3.1's userspace
// tunnels cannot encapsulate offloaded packets (measured here: ping passes,
// TCP does not connect).
func NoTxOffload(b intent.Bridge, typ, dp string, tso func() bool) bool {
	return dp == DatapathNetdev && (b.OVSTunnels() || typ == attach.TypeVeth && !tso())
}

// Tunnel is one tunnel of a bridge to another host, as stored in the
// bridge's external_ids and as `tunnel list` shows it.
type Tunnel = intent.Tunnel
