package attach

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attach types.
const (
	TypeVeth     = "veth"
	TypeInternal = "internal"
)

// HostName is the deterministic host-side name of the link that connects
// CONTAINER's INTERFACE to BRIDGE: "on" + 12 hex digits of a hash, 14
// characters, well inside IFNAMSIZ.
func HostName(bridge, container, iface string) string {
	h := sha256.Sum256([]byte(bridge + "\x00" + container + "\x00" + iface))
	return "on" + hex.EncodeToString(h[:6])
}

// Config is what the container's interface gets.
type Config struct {
	Name     string // name inside the container
	MAC      net.HardwareAddr
	MTU      int
	Addrs    []netip.Prefix
	Gateways []netip.Addr // default route(s), one per family
	// Routes says whether the gateways replace a default route the
	// container has through another interface (RouteIfNone: they do not).
	Routes RoutePolicy
	// NoTxOffload turns off TX checksum/segmentation offload: on the userspace
	// datapath without userspace TSO a veth that keeps it passes ping but
	// stalls TCP, because OVS forwards the partial-checksum packets as they
	// are.
	NoTxOffload bool
	// Egress caps what the container sends through the interface (a
	// shaper at its root; Rate 0: none).
	Egress Shaper
}

// RoutePolicy says what an interface's gateways do to the container's
// default routes.
type RoutePolicy int

const (
	// RouteIfNone adds a default route of a family only where the
	// container has none: a second attachment does not take the first's.
	RouteIfNone RoutePolicy = iota
	// RouteReplace points the container's default route at this
	// interface's gateway whatever it was (--default-route).
	RouteReplace
)

// withHandle runs f with a netlink handle inside the netns at path.
func withHandle(path string, f func(h *netlink.Handle) error) error {
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	return f(h)
}

// HasLink reports whether the netns at path has a link named name.
func HasLink(path, name string) (bool, error) {
	found := false
	err := withHandle(path, func(h *netlink.Handle) error {
		_, err := h.LinkByName(name)
		var nf netlink.LinkNotFoundError
		switch {
		case err == nil:
			found = true
		case !errors.As(err, &nf):
			return err
		}
		return nil
	})
	return found, err
}

// CreateVeth makes a veth pair whose host end is host (in this netns, up)
// and whose other end is created directly inside the container's netns
// under its final name, so no temporary name can clash there.
func CreateVeth(host, nsPath string, c Config) error {
	nsh, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer nsh.Close()
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: host, MTU: c.MTU},
		PeerName:         c.Name,
		PeerHardwareAddr: c.MAC,
		PeerNamespace:    netlink.NsFd(int(nsh)),
		PeerMTU:          uint32(c.MTU),
	}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("create veth %s/%s: %w", host, c.Name, err)
	}
	if c.NoTxOffload {
		if err := setTxOffload(host, false); err != nil {
			DeleteLink(host)
			return err
		}
	}
	sealHostEnd(host)
	if err := netlink.LinkSetUp(v); err != nil {
		DeleteLink(host)
		return fmt.Errorf("set %s up: %w", host, err)
	}
	return nil
}

// DeleteLink removes a link in this netns; a missing link is not an error.
func DeleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if kernelVport(l) {
		return nil
	}
	return netlink.LinkDel(l)
}

// kernelVport says l is a port device of OVS's kernel datapath (an
// internal port there): rtnetlink cannot delete it (EOPNOTSUPP), and
// ovs-vswitchd deletes it, wherever it is, once its row goes.
func kernelVport(l netlink.Link) bool { return l.Type() == "openvswitch" }

// WaitLink waits until a link named name exists in this netns (e.g. the tap
// ovs-vswitchd creates for an internal port) and returns it. It listens for
// netlink events rather than polling.
func WaitLink(ctx context.Context, name string) (netlink.Link, error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{}); err != nil {
		return nil, err
	}
	// Subscribed first, then checked: no creation can fall in between.
	if l, err := netlink.LinkByName(name); err == nil {
		return l, nil
	}
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return nil, fmt.Errorf("netlink subscription closed while waiting for %s", name)
			}
			if u.Attrs() != nil && u.Attrs().Name == name && u.Header.Type == unix.RTM_NEWLINK {
				return netlink.LinkByName(name)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("link %s did not appear: is ovs-vswitchd running in this network namespace? (%w)", name, ctx.Err())
		}
	}
}

// MoveIn moves link name from this netns into the one at nsPath.
func MoveIn(name, nsPath string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	nsh, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer nsh.Close()
	if err := netlink.LinkSetNsFd(l, int(nsh)); err != nil {
		return fmt.Errorf("move %s into %s: %w", name, nsPath, err)
	}
	return nil
}

// Configure sets up the link currently named cur inside the netns at nsPath:
// rename to c.Name, MTU, MAC, addresses, announcements, link up, default
// routes (replacing any existing default) and offloads.
func Configure(nsPath, cur string, c Config) error {
	netNS, err := ns.GetNS(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer netNS.Close()
	// The whole setup runs on a thread inside the container's netns, so that
	// netlink, ethtool and /proc/sys all address the container's devices.
	return netNS.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(cur)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", cur, nsPath, err)
		}
		if cur != c.Name {
			if err := netlink.LinkSetName(l, c.Name); err != nil {
				return fmt.Errorf("rename %s to %s: %w", cur, c.Name, err)
			}
		}
		if c.MTU > 0 && l.Attrs().MTU != c.MTU {
			if err := netlink.LinkSetMTU(l, c.MTU); err != nil {
				return fmt.Errorf("set MTU %d on %s: %w", c.MTU, c.Name, err)
			}
		}
		if len(c.MAC) > 0 && l.Attrs().HardwareAddr.String() != c.MAC.String() {
			if err := netlink.LinkSetHardwareAddr(l, c.MAC); err != nil {
				return fmt.Errorf("set MAC %s on %s: %w", c.MAC, c.Name, err)
			}
		}
		if c.NoTxOffload {
			if err := setTxOffload(c.Name, false); err != nil {
				return err
			}
		}
		if c.Egress.Rate > 0 {
			if err := shapeHere(l, c.Egress); err != nil {
				return err
			}
		}
		for _, a := range c.Addrs {
			na := &netlink.Addr{IPNet: prefixToIPNet(a)}
			if a.Addr().Is6() {
				// IPAM already guarantees uniqueness; DAD would only delay use.
				na.Flags = unix.IFA_F_NODAD
			}
			if err := netlink.AddrReplace(l, na); err != nil {
				return fmt.Errorf("add address %s to %s: %w", a, c.Name, err)
			}
		}
		// The kernel then sends a gratuitous ARP and an unsolicited neighbour
		// advertisement when the link comes up, so that peers holding a stale
		// entry for the address (a container re-attached with a new MAC)
		// update it at once. Sending them ourselves would need a packet
		// socket, whose close waits for an RCU grace period (~10 ms).
		if err := announceOnUp(c.Name, c.Addrs); err != nil {
			return err
		}
		// An interface ovsnet gives IPv4 only gets no IPv6 either, as Docker
		// does: otherwise every container coming up sends MLD reports,
		// router solicitations and DAD probes, which the userspace datapath
		// handles one upcall at a time only to drop them (seen slowing
		// bulk attaches of thousands of containers).
		if hasIPv4Only(c.Addrs) {
			noIPv6(c.Name)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", c.Name, err)
		}
		return setDefaultRoutes(l, c.Gateways, c.Routes)
	})
}

// shapeHere shapes l, in the calling thread's netns, to s.
func shapeHere(l netlink.Link, s Shaper) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	_, err = Shape(h, l, s)
	return err
}

// setDefaultRoutes points the default route of each gateway's family at it
// through l (in the calling thread's netns), as p allows.
func setDefaultRoutes(l netlink.Link, gws []netip.Addr, p RoutePolicy) error {
	for _, gw := range gws {
		family, dst := netlink.FAMILY_V4, &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
		if gw.Is6() {
			family, dst = netlink.FAMILY_V6, &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		if p == RouteIfNone {
			if other, err := defaultRouteElsewhere(family, l.Attrs().Index); err != nil || other {
				return err
			}
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: net.IP(gw.AsSlice())}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s on %s: %w", gw, l.Attrs().Name, err)
		}
	}
	return nil
}

// defaultRouteElsewhere says whether the main table has a default route of
// family through a link other than index.
func defaultRouteElsewhere(family, index int) (bool, error) {
	rs, err := netlinksafe.RouteList(nil, family)
	if err != nil {
		return false, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range rs {
		if ones, _ := maskOf(r.Dst); ones == 0 && r.LinkIndex != index {
			return true, nil
		}
	}
	return false, nil
}

func maskOf(n *net.IPNet) (int, int) {
	if n == nil {
		return 0, 0
	}
	return n.Mask.Size()
}

// EnsureDefaultRoutes gives the container at nsPath a default route of each
// gateway's family through dev where it has none: when the interface that
// held it was detached, another attachment takes it over.
func EnsureDefaultRoutes(nsPath, dev string, gws []netip.Addr) error {
	netNS, err := ns.GetNS(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer netNS.Close()
	return netNS.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", dev, nsPath, err)
		}
		return setDefaultRoutes(l, gws, RouteIfNone)
	})
}

func hasIPv4Only(addrs []netip.Prefix) bool {
	v4 := false
	for _, a := range addrs {
		if a.Addr().Is6() {
			return false
		}
		v4 = true
	}
	return v4
}

// sealHostEnd keeps the host's own IP stack off a veth's host end (in the
// calling thread's netns), which is only a port of the bridge. On the
// userspace datapath ovs-vswitchd reads the port with a packet socket, so
// the host's stack gets every frame too: it answered a container's ARP
// for the gateway address with the host end's MAC, and the container then
// reached the host's addresses past the flows (spoofed sources included).
// No ARP replies there (arp_ignore 8), strict reverse-path filtering (no
// route points at it, so every IPv4 packet is dropped), and no IPv6 (no
// link-local address, DAD or router solicitations either).
func sealHostEnd(dev string) {
	for key, v := range map[string]string{"ipv4/conf/" + dev + "/arp_ignore": "8", "ipv4/conf/" + dev + "/rp_filter": "1"} {
		os.WriteFile("/proc/sys/net/"+key, []byte(v), 0o644)
	}
	noIPv6(dev)
}

// HostEndSealed says whether sealHostEnd is in force on dev (in this netns).
func HostEndSealed(dev string) bool {
	for key, v := range map[string]string{"ipv4/conf/" + dev + "/arp_ignore": "8", "ipv4/conf/" + dev + "/rp_filter": "1", "ipv6/conf/" + dev + "/disable_ipv6": "1"} {
		if b, err := os.ReadFile("/proc/sys/net/" + key); err == nil && strings.TrimSpace(string(b)) != v {
			return false
		}
	}
	return true
}

// SealHostEnd is sealHostEnd for a veth made before it was done at
// creation.
func SealHostEnd(dev string) { sealHostEnd(dev) }

// noIPv6 turns IPv6 off on dev (in the calling thread's netns); best
// effort: a kernel without IPv6 has nothing to turn off.
func noIPv6(dev string) {
	os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("1"), 0o644)
}

// announceOnUp sets arp_notify / ndisc_notify on dev (in the calling
// thread's netns) for each family it gets an address in.
func announceOnUp(dev string, addrs []netip.Prefix) error {
	for _, a := range addrs {
		p := "/proc/sys/net/ipv4/conf/" + dev + "/arp_notify"
		if a.Addr().Is6() {
			p = "/proc/sys/net/ipv6/conf/" + dev + "/ndisc_notify"
		}
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("enable announcements on %s: %w", dev, err)
		}
	}
	return nil
}

// setTxOffload turns TX checksum offload on or off on dev (in the calling
// thread's netns); the kernel drops TCP segmentation offload with it, which
// needs it, and brings it back when it is turned on again. One legacy
// ethtool ioctl (ETHTOOL_STXCSUM): the feature-string interface costs ten
// times more (0.7 ms a device here), which adds up in bulk attaches.
func setTxOffload(dev string, on bool) error {
	what := "off"
	if on {
		what = "on"
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("turn TX offload %s on %s: %w", what, dev, err)
	}
	defer unix.Close(fd)
	const ethtoolSTXCSUM = 0x17
	v := struct{ cmd, data uint32 }{cmd: ethtoolSTXCSUM}
	if on {
		v.data = 1
	}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(ifr.name[:], dev)
	ifr.data = uintptr(unsafe.Pointer(&v))
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return fmt.Errorf("turn TX offload %s on %s: %w", what, dev, e)
	}
	runtime.KeepAlive(&v)
	return nil
}

// SetVethTxOffload turns TX offload on or off on both ends of an attached
// veth: host in this netns, name in the netns at nsPath.
func SetVethTxOffload(host, nsPath, name string, on bool) error {
	if err := setTxOffload(host, on); err != nil {
		return err
	}
	return SetTxOffloadIn(nsPath, name, on)
}

// SetTxOffloadIn turns TX checksum offload (and with it TSO) of link name
// in the netns at nsPath on or off.
func SetTxOffloadIn(nsPath, name string, on bool) error {
	netNS, err := ns.GetNS(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer netNS.Close()
	return netNS.Do(func(ns.NetNS) error { return setTxOffload(name, on) })
}

// TSOActive says whether l, a bridge's own port on the userspace datapath,
// shows that the ovs-vswitchd running now has userspace TSO on: it opens
// its taps with virtio-net headers (IFF_VNET_HDR) only then, and only then
// takes partial-checksum and segmentation-offloaded packets from a veth
// (TCP over a veth keeping its offloads measured 5.4 Gbit/s here, 0.66
// with them off). The setting, other_config:userspace-tso-enable, is read
// at its start only, so OVSDB cannot say whether it is in force; the tap,
// which each ovs-vswitchd opens anew, can. False for anything else.
func TSOActive(l netlink.Link) bool {
	t, ok := l.(*netlink.Tuntap)
	return ok && t.Flags&netlink.TUNTAP_VNET_HDR != 0
}

// BridgeTSO is TSOActive for bridge's own port in this netns; false if it
// is not here.
func BridgeTSO(bridge string) bool {
	l, err := netlink.LinkByName(bridge)
	return err == nil && TSOActive(l)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// LinkNamesByMAC is the names of the links in the netns at path, by MAC
// (net.HardwareAddr.String()): how a runtime named the interfaces ovsnet
// handed it.
func LinkNamesByMAC(path string) (map[string]string, error) {
	names := map[string]string{}
	err := withHandle(path, func(h *netlink.Handle) error {
		ls, err := h.LinkList()
		for _, l := range ls {
			if m := l.Attrs().HardwareAddr; len(m) > 0 {
				names[m.String()] = l.Attrs().Name
			}
		}
		return err
	})
	return names, err
}

// LinkState returns the operational state of link name in the netns at path.
func LinkState(path, name string) (string, error) {
	st := ""
	err := withHandle(path, func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err == nil {
			st = stateOf(l)
		}
		return err
	})
	return st, err
}

// HostLinkState is LinkState for a link in this netns: for a veth's host
// end, "up" says its peer is up too, wherever the peer is.
func HostLinkState(name string) (string, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return "", err
	}
	return stateOf(l), nil
}

// stateOf reads a link's flags: taps report operstate "unknown", the
// flags say what matters.
func stateOf(l netlink.Link) string {
	switch raw := l.Attrs().RawFlags; {
	case raw&unix.IFF_UP == 0:
		return "down"
	case raw&unix.IFF_LOWER_UP == 0:
		return "no-carrier"
	default:
		return "up"
	}
}

// DeleteInternal removes an internal port's device from the container's
// netns. ovs-vswitchd removes it too once its row is gone, but in its own
// time; deleting it here makes detaching synchronous. Missing is fine.
// With mac, only a device that has it is the port's: the interface's name
// in the container may be another port's by now (a detach finished after
// its container was attached again), and that one is left alone.
func DeleteInternal(nsPath, name string, mac net.HardwareAddr) error {
	if !isNetns(nsPath) {
		return nil // the container is gone, and its devices with it
	}
	return withHandle(nsPath, func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil
		}
		if l.Type() != "tuntap" {
			return nil // not a userspace internal port: not ours to remove (see kernelVport)
		}
		if mac != nil && l.Attrs().HardwareAddr.String() != mac.String() {
			return nil // another port's device
		}
		if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete %s in %s: %w", name, nsPath, err)
		}
		return nil
	})
}

// HostLinks are this netns's links, listed cheaply: names from sysfs (a
// directory read: a netlink dump of 9,000 veths costs ~0.9 s of kernel time
// here, statistics or not), each link looked up by netlink when asked for.
type HostLinks struct {
	names map[string]bool
	all   map[string]netlink.Link // filled by the netlink fallback only
}

// ListHostLinks lists the links. probe names a link known to be in this
// netns (a bridge's own port), to check that /sys is this netns's sysfs (it
// is under systemd and `ip netns exec`); if not, it falls back to a netlink
// dump.
func ListHostLinks(probe string) (*HostLinks, error) {
	if es, err := os.ReadDir("/sys/class/net"); err == nil {
		h := &HostLinks{names: make(map[string]bool, len(es))}
		for _, e := range es {
			h.names[e.Name()] = true
		}
		if _, err := netlink.LinkByName(probe); probe == "" || h.names[probe] == (err == nil) {
			return h, nil
		}
	}
	ls, err := netlinksafe.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list the host's links: %w", err)
	}
	h := &HostLinks{names: map[string]bool{}, all: map[string]netlink.Link{}}
	for _, l := range ls {
		h.names[l.Attrs().Name], h.all[l.Attrs().Name] = true, l
	}
	return h, nil
}

// Has says whether a link of that name was listed.
func (h *HostLinks) Has(name string) bool { return h != nil && h.names[name] }

// Get returns the link named name, or nil if it is not there (any more).
func (h *HostLinks) Get(name string) netlink.Link {
	if !h.Has(name) {
		return nil
	}
	if h.all != nil {
		return h.all[name]
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	return l
}

// LeakedHostLinks lists the veths and taps among links that carry ovsnet's
// host-side names ("on" + 12 hex digits) but no OVSDB row: leftovers of an
// attach killed half-way, or of an internal port whose row went while
// ovs-vswitchd was down (on the userspace datapath its tap persists, and
// the ovs-vswitchd that comes back never knew it).
func LeakedHostLinks(links *HostLinks, rows map[string]bool) []string {
	var out []string
	if links == nil {
		return nil
	}
	for n := range links.names {
		if !hostNameRE.MatchString(n) || rows[n] {
			continue
		}
		if l := links.Get(n); l != nil && (l.Type() == "veth" || l.Type() == "tuntap") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

var hostNameRE = regexp.MustCompile(`^on[0-9a-f]{12}$`)

// Counters are a link's packet, byte and drop counts.
type Counters struct {
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
}

// LinkCounters reads link name's counters in the namespace at path.
func LinkCounters(path, name string) (Counters, error) {
	var c Counters
	err := withHandle(path, func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if s := l.Attrs().Statistics; s != nil {
			c = Counters{RxPackets: s.RxPackets, TxPackets: s.TxPackets, RxBytes: s.RxBytes, TxBytes: s.TxBytes, RxDropped: s.RxDropped, TxDropped: s.TxDropped}
		}
		return nil
	})
	return c, err
}
