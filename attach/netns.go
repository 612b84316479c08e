// Package attach plugs links into a container's network namespace: veth
// pairs or OVS internal ports, configured inside the namespace over
// netlink (name, MTU, MAC, addresses, default route, link up, gratuitous
// ARP), and the host-side devices ovsnet keeps (kernel VXLAN devices and
// their splice, the underlay's addresses, a gateway device's addresses).
// It never runs the ip command; finding the namespace from a container's
// name is package containers'.
package attach

import "golang.org/x/sys/unix"

// NetnsDir is where `ip netns add` keeps named namespaces.
var NetnsDir = "/var/run/netns"

// NetnsExists reports whether p is (still) a network namespace file.
func NetnsExists(p string) bool { return isNetns(p) }

// IsOwnNetns reports whether p is this process's own network namespace
// (the host's, for ovsnet): the same nsfs inode.
func IsOwnNetns(p string) bool { return sameNetns(p, "/proc/self/ns/net") }

// sameNetns reports whether paths p and q are one network namespace.
func sameNetns(p, q string) bool {
	var a, b unix.Stat_t
	if unix.Stat(p, &a) != nil || unix.Stat(q, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// isNetns reports whether p is a network namespace file (nsfs).
func isNetns(p string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
