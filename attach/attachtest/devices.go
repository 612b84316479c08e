// Package attachtest keeps links in memory for unit tests of what attaches
// and detaches: attach.Devices without netlink or root.
package attachtest

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ovsnet/ovsnet/attach"
)

// Host is the host's namespace in Links.
const Host = ""

// link is one device: its namespace, its veth peer's name (in the peer's
// namespace), the MAC it was made with and what was configured on it.
type link struct {
	peer   string
	peerNS string
	mac    net.HardwareAddr
	cfg    *attach.Config
}

// Devices is attach.Devices in memory: namespaces (those given to New
// exist), the links in each, and every call made. Internal ports' taps,
// which ovs-vswitchd makes, appear in the host when first moved. Fail
// makes the named method fail from then on.
type Devices struct {
	mu    sync.Mutex
	ns    map[string]bool
	links map[string]map[string]*link // namespace -> name -> link
	calls []string
	Fail  map[string]error
}

var _ attach.Devices = (*Devices)(nil)

// New is Devices with the network namespaces at paths.
func New(paths ...string) *Devices {
	d := &Devices{ns: map[string]bool{}, links: map[string]map[string]*link{Host: {}}, Fail: map[string]error{}}
	for _, p := range paths {
		d.ns[p] = true
		d.links[p] = map[string]*link{}
	}
	return d
}

// Links lists the links in namespace ns, sorted.
func (d *Devices) Links(ns string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for n := range d.links[ns] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Config is what was configured on link name in namespace ns, if it was.
func (d *Devices) Config(ns, name string) (attach.Config, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.links[ns][name]; l != nil && l.cfg != nil {
		return *l.cfg, true
	}
	return attach.Config{}, false
}

// Calls lists the calls made, as "Method arguments".
func (d *Devices) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// call records a call and returns its injected failure.
func (d *Devices) call(method string, args ...any) error {
	d.calls = append(d.calls, strings.TrimSpace(method+" "+fmt.Sprintln(args...)))
	return d.Fail[method]
}

func (d *Devices) NetnsExists(p string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ns[p]
}

func (d *Devices) IsOwnNetns(p string) bool { return p == "/proc/self/ns/net" }

func (d *Devices) HasLink(p, name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ns[p] {
		return false, fmt.Errorf("no network namespace %s", p)
	}
	return d.links[p][name] != nil, nil
}

func (d *Devices) CreateVeth(host, p string, c attach.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("CreateVeth", host, p); err != nil {
		return err
	}
	if !d.ns[p] || d.links[Host][host] != nil || d.links[p][c.Name] != nil {
		return fmt.Errorf("create veth %s: exists, or no namespace %s", host, p)
	}
	d.links[Host][host] = &link{peer: c.Name, peerNS: p}
	d.links[p][c.Name] = &link{peer: host, peerNS: Host, mac: c.MAC}
	return nil
}

func (d *Devices) CreatePoolVeth(host, p string, c attach.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("CreatePoolVeth", host, p); err != nil {
		return err
	}
	ns := Host
	if p != "" {
		if !d.ns[p] {
			return fmt.Errorf("no network namespace %s", p)
		}
		ns = p
	}
	peer := attach.PoolPeer(host)
	d.links[Host][host] = &link{peer: peer, peerNS: ns}
	d.links[ns][peer] = &link{peer: host, peerNS: Host, cfg: &c}
	return nil
}

// remove deletes link name in ns and its veth peer.
func (d *Devices) remove(ns, name string) bool {
	l := d.links[ns][name]
	if l == nil {
		return false
	}
	delete(d.links[ns], name)
	if l.peer != "" && d.links[l.peerNS] != nil {
		delete(d.links[l.peerNS], l.peer)
	}
	return true
}

func (d *Devices) DeleteLink(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("DeleteLink", name); err != nil {
		return err
	}
	d.remove(Host, name)
	return nil
}

func (d *Devices) DeleteLinks(names []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("DeleteLinks", names); err != nil {
		return err
	}
	for _, n := range names {
		d.remove(Host, n)
	}
	return nil
}

// move takes link name from namespace from to namespace to as name now.
func (d *Devices) move(from, name, to, now string) error {
	l := d.links[from][name]
	if l == nil {
		return fmt.Errorf("no link %s in %q", name, from)
	}
	if d.links[to][now] != nil {
		return fmt.Errorf("link %s exists in %s", now, to)
	}
	delete(d.links[from], name)
	d.links[to][now] = l
	if p := d.links[l.peerNS][l.peer]; p != nil {
		p.peer, p.peerNS = now, to
	}
	return nil
}

func (d *Devices) MoveIn(name, p string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("MoveIn", name, p); err != nil {
		return err
	}
	if !d.ns[p] {
		return fmt.Errorf("no network namespace %s", p)
	}
	if d.links[Host][name] == nil {
		d.links[Host][name] = &link{} // an internal port's tap
	}
	return d.move(Host, name, p, name)
}

func (d *Devices) RenameIn(p, cur, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("RenameIn", p, cur, name); err != nil {
		return err
	}
	return d.move(p, cur, p, name)
}

func (d *Devices) ReturnLink(r attach.Return) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("ReturnLink", r.From, r.Name, r.To, r.As); err != nil {
		return false, err
	}
	l := d.links[r.From][r.Name]
	if l == nil {
		return false, nil
	}
	mac := l.mac
	if l.cfg != nil {
		mac = l.cfg.MAC
	}
	if mac.String() != r.MAC.String() || d.links[r.To][r.As] != nil {
		return false, nil
	}
	return true, d.move(r.From, r.Name, r.To, r.As)
}

func (d *Devices) Configure(p, cur string, c attach.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("Configure", p, cur, c.Name); err != nil {
		return err
	}
	if cur != c.Name {
		if err := d.move(p, cur, p, c.Name); err != nil {
			return err
		}
	}
	if l := d.links[p][c.Name]; l != nil {
		l.cfg = &c
		return nil
	}
	return fmt.Errorf("no link %s in %s", cur, p)
}

func (d *Devices) SetVethTxOffload(host, p, name string, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.call("SetVethTxOffload", host, on)
}

// DeleteInternal deletes link name in p if its MAC is mac (any, if nil).
func (d *Devices) DeleteInternal(p, name string, mac net.HardwareAddr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.call("DeleteInternal", p, name); err != nil {
		return err
	}
	l := d.links[p][name]
	if l == nil || mac != nil && (l.cfg == nil || l.cfg.MAC.String() != mac.String()) {
		return nil
	}
	d.remove(p, name)
	return nil
}

func (d *Devices) EnsureDefaultRoutes(p, dev string, gws []netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.call("EnsureDefaultRoutes", p, dev, gws)
}

func (d *Devices) BridgeTSO(string) bool { return false }

// ShapeHostEnd records the shaper of host link name.
func (d *Devices) ShapeHostEnd(name string, s attach.Shaper) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.call("ShapeHostEnd", name, s.Rate)
}
