// Package doctor checks a host for what ovsnet needs and what makes it
// slow (`ovsnet doctor`), each finding with its fix.
package doctor

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/flowmodel"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/natplan"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ratelimit"
	"github.com/ovsnet/ovsnet/kmod"
	"github.com/ovsnet/ovsnet/nat"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// Finding is one thing ovsnet doctor checked.
type Finding struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok, note or problem
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Finding statuses: a problem blocks ovsnet or costs most of its speed; a
// note is worth knowing.
const (
	StatusOK      = "ok"
	StatusNote    = "note"
	StatusProblem = "problem"
)

// Options say where the doctor looks.
type Options struct {
	Endpoint   string // OVSDB, as for every command
	Controller string // the controller's --listen address
}

// Run checks the host for what ovsnet needs and what makes it slow,
// each finding with its fix. h is nil when OVSDB could not be reached
// (connErr says why): the checks that need it say so.
func Run(ctx context.Context, h *network.Host, connErr error, o Options) []Finding {
	var fs []Finding
	var topo *ovsdb.Topology
	if h == nil {
		fs = append(fs, Finding{"ovsdb-server", StatusProblem, connErr.Error(), ""}) // it says what to do
	} else {
		var ovs []Finding
		ovs, topo = doctorOVS(h, ctx, o)
		fs = append(fs, ovs...)
	}
	fs = append(fs, doctorIptables(), doctorController(o.Controller, dockerBridges(topo)), doctorDocker())
	return fs
}

// dockerBridges are the bridges of topo that carry Docker networks (made
// by the controller's network plugin); none without a topology.
func dockerBridges(topo *ovsdb.Topology) []string {
	if topo == nil {
		return nil
	}
	var out []string
	for _, b := range topo.Bridges {
		if intent.DecodeBridge(b.Name, b.ExternalIDs).Docker.ID != "" {
			out = append(out, b.Name)
		}
	}
	sort.Strings(out)
	return out
}

// doctorOVS are the checks that read OVSDB; it returns the topology it
// read (nil if it could not), which other checks use too.
func doctorOVS(h *network.Host, ctx context.Context, o Options) ([]Finding, *ovsdb.Topology) {
	roots, err := ovsdb.Select[vswitchd.OpenvSwitch](ctx, h.DB, nil, "_uuid", "ovs_version", "other_config")
	if err != nil || len(roots) == 0 {
		return []Finding{{"ovsdb-server", StatusProblem, fmt.Sprintf("no Open_vSwitch row (%v)", err), "run ovs-vsctl init"}}, nil
	}
	root := roots[0]
	version := "unknown version (ovs-vswitchd has not started since the database was made)"
	if root.OVSVersion != nil {
		version = "OVS " + *root.OVSVersion
	}
	fs := []Finding{{"ovsdb-server", StatusOK, "reachable, " + version, ""}, doctorVswitchd(o.Endpoint)}
	topo, err := h.DB.ReadAllFresh(ctx)
	if err != nil {
		return append(fs, Finding{"bridges", StatusProblem, err.Error(), ""}), nil
	}
	dp := datapath.Detect()
	fs = append(fs, doctorDatapath(dp))
	fs = append(fs, doctorFeatures(ctx, h, dp, topo)...)
	fs = append(fs, doctorTSO(dp, root.OtherConfig, topo))
	fs = append(fs, doctorForwarding(topo), doctorMTU(topo), doctorNetem())
	fs = append(fs, doctorShapers(ctx, topo)...)
	return append(fs, doctorIntent(topo)...), topo
}

// doctorShapers reports container interfaces whose rate limit is not held
// by their shapers now (one deleted by hand, a container started since
// that no convergence has run for), and ones it could not check.
func doctorShapers(ctx context.Context, topo *ovsdb.Topology) []Finding {
	var fs []Finding
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		ifs, _ := topo.BridgeInterfaces(b)
		for _, ifc := range ifs {
			if _, has := ifc.ExternalIDs[intent.KeyRate]; !has || !intent.Owned(b.ExternalIDs) {
				continue
			}
			missing, err := ratelimit.Missing(ctx, ifc)
			switch {
			case err != nil:
				fs = append(fs, Finding{"rate limits", StatusNote, fmt.Sprintf("%s on %s: its shapers could not be checked: %v", network.OwnerOf(ifc), b.Name, err), ""})
			case len(missing) > 0:
				fs = append(fs, Finding{"rate limits", StatusProblem, fmt.Sprintf("%s on %s is not held to its cap on %s", network.OwnerOf(ifc), b.Name, strings.Join(missing, " and ")),
					"ovsnet reconcile puts the shapers back (the controller does at its resync)"})
			}
		}
	}
	return fs
}

// doctorVswitchd looks for a live ovs-vswitchd through its pid file next
// to the database's socket.
func doctorVswitchd(endpoint string) Finding {
	sock, local := strings.CutPrefix(cmp.Or(endpoint, os.Getenv("OVSNET_DB"), "unix:"+ovsdb.RunDir()+"/db.sock"), "unix:")
	if !local {
		return Finding{"ovs-vswitchd", StatusNote, "OVSDB is remote (" + endpoint + "): ovs-vswitchd cannot be seen from here", ""}
	}
	dir := filepath.Dir(sock)
	pid, err := ovsdb.VswitchdPid(dir)
	if err != nil || syscall.Kill(pid, 0) != nil {
		return Finding{"ovs-vswitchd", StatusProblem, "not running (no live pid in " + filepath.Join(dir, "ovs-vswitchd.pid") + "): bridges forward nothing",
			"start it (systemctl start openvswitch-switch; without systemd: " + OVSCtl + " start); then `ovsnet reconcile` puts back internal ports and flows"}
	}
	return Finding{"ovs-vswitchd", StatusOK, fmt.Sprintf("running (pid %d)", pid), ""}
}

func doctorDatapath(dp string) Finding {
	if dp == datapath.System {
		return Finding{"datapath", StatusOK, "kernel (the openvswitch module is loaded): veths by default", ""}
	}
	return Finding{"datapath", StatusOK, "userspace (netdev: no openvswitch kernel module): internal ports by default", ""}
}

// doctorFeatures reports, per datapath type ovsnet's bridges use, what
// ovs-vswitchd says that datapath can do (OVSDB's Datapath table, which
// add-br fills) and what ovsnet does differently because of it; and a
// kernel datapath deleted under ovs-vswitchd.
func doctorFeatures(ctx context.Context, h *network.Host, dp string, topo *ovsdb.Topology) []Finding {
	used := map[string]*vswitchd.Bridge{}
	for i := range topo.Bridges {
		if b := &topo.Bridges[i]; intent.Owned(b.ExternalIDs) {
			used[datapath.Of(b)] = b
		}
	}
	var fs []Finding
	for _, t := range []string{datapath.System, datapath.Netdev} {
		b, ok := used[t]
		if !ok {
			continue
		}
		if err := datapath.CheckKernel(b); err != nil {
			fs = append(fs, Finding{"datapath " + t, StatusProblem, err.Error(), "restart ovs-vswitchd, then ovsnet reconcile"})
			continue
		}
		caps, err := h.DB.ReadDatapathCapabilities(ctx, t)
		if err != nil || len(caps) == 0 {
			fs = append(fs, Finding{"datapath " + t, StatusNote, fmt.Sprintf("capabilities not reported yet (%v)", cmp.Or[error](err, errNotProbed)), "ovsnet reconcile probes them"})
			continue
		}
		fs = append(fs, Finding{"datapath " + t, StatusOK, datapath.DescribeFeatures(t, caps), ""})
	}
	if _, ok := used[datapath.Netdev]; ok || dp == datapath.Netdev {
		fs = append(fs, doctorGRE())
	}
	return fs
}

// doctorGRE says how GRE tunnels on the userspace datapath are made
// here: kernel gretap devices where the kernel has ip_gre, else OVS's own.
func doctorGRE() Finding {
	if s := kmod.Of("ip_gre"); s.Has() {
		return Finding{"gre", StatusOK, "userspace datapath: GRE tunnels are kernel gretap devices (ip_gre " + s.String() + "): the underlay is left alone, containers keep their offloads", ""}
	}
	return Finding{"gre", StatusNote, "userspace datapath: this kernel has no ip_gre, so GRE tunnels are OVS's own ports: the underlay address moves onto an OVS bridge and containers compute their own checksums",
		"use VXLAN tunnels (kernel devices here), or a kernel with ip_gre (modprobe ip_gre)"}
}

var errNotProbed = fmt.Errorf("no Datapath row: no bridge probed it")

// doctorTSO checks that the userspace datapath runs with userspace TSO:
// set in OVSDB, and in force (the taps ovs-vswitchd opened have virtio-net
// headers; it reads the setting at start only).
func doctorTSO(dp string, oc map[string]string, topo *ovsdb.Topology) Finding {
	if dp != datapath.Netdev {
		return Finding{"userspace TSO", StatusOK, "not needed on the kernel datapath", ""}
	}
	set := oc["userspace-tso-enable"] == "true"
	probed, on := "", true
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		if datapath.Of(b) != datapath.Netdev {
			continue
		}
		if l, err := netlink.LinkByName(b.Name); err == nil {
			probed, on = b.Name, attach.TSOActive(l)
			break
		}
	}
	switch {
	case !set:
		return Finding{"userspace TSO", StatusProblem, "off (other_config:userspace-tso-enable is not true): containers' TCP runs at about a tenth of a Linux bridge's", TSOFix}
	case probed != "" && !on:
		return Finding{"userspace TSO", StatusProblem, "set, but not in force: ovs-vswitchd started before it was set (bridge " + probed + "'s tap has no vnet_hdr)", TSOFix}
	case probed == "":
		return Finding{"userspace TSO", StatusOK, "set (no bridge yet to see it in force)", ""}
	}
	return Finding{"userspace TSO", StatusOK, "on and in force (bridge " + probed + "'s tap has vnet_hdr)", ""}
}

// doctorForwarding checks that IPv4 (and, with IPv6 subnets, IPv6)
// forwarding is on where ovsnet bridges need it.
func doctorForwarding(topo *ovsdb.Topology) Finding {
	p := natplan.Of(topo)
	if len(p.Bridges) == 0 {
		return Finding{"forwarding", StatusOK, "no ovsnet bridge with a subnet yet", ""}
	}
	var off []string
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		off = append(off, "net.ipv4.ip_forward")
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); len(p.IPv6) > 0 && strings.TrimSpace(string(b)) != "1" {
		off = append(off, "net.ipv6.conf.all.forwarding")
	}
	if len(off) > 0 {
		return Finding{"forwarding", StatusProblem, strings.Join(off, " and ") + " off: containers reach nothing beyond their bridge",
			"ovsnet reconcile (it turns forwarding on), and find what turned it off (a sysctl.d file, a firewall)"}
	}
	return Finding{"forwarding", StatusOK, "on", ""}
}

// doctorMTU compares the bridges' MTUs with the devices under them: the
// default route's, and the tunnels' underlays.
func doctorMTU(topo *ovsdb.Topology) Finding {
	dev, mtu := defaultRouteMTU()
	var bad []string
	for i := range topo.Bridges {
		bi := intent.DecodeBridge(topo.Bridges[i].Name, topo.Bridges[i].ExternalIDs)
		if !bi.Owned {
			continue
		}
		bm := bi.MTU
		for _, t := range bi.GoodTunnels() {
			if max := t.UnderlayMTU - mesh.Overhead(t.Type); t.UnderlayMTU > 0 && (bm == 0 || bm > max) {
				bad = append(bad, fmt.Sprintf("bridge %s's MTU %d is above what its %s tunnel to %s carries (%d)", bi.Name, cmp.Or(bm, 1500), t.Type, t.Remote, max))
			}
		}
	}
	if len(bad) > 0 {
		return Finding{"MTU", StatusProblem, strings.Join(bad, "; ") + ": large packets between hosts are lost",
			"ovsnet del-br and add-br again without --mtu (ovsnet then takes the underlay's less the tunnel's overhead), or raise the underlay's MTU"}
	}
	if dev == "" {
		return Finding{"MTU", StatusNote, "no default route: containers reach only their bridges", ""}
	}
	return Finding{"MTU", StatusOK, fmt.Sprintf("default route through %s, MTU %d", dev, mtu), ""}
}

func defaultRouteMTU() (string, int) {
	rs, err := netlinksafe.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", 0
	}
	for _, r := range rs {
		if ones, _ := maskSize(r.Dst); ones == 0 {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				return l.Attrs().Name, l.Attrs().MTU
			}
		}
	}
	return "", 0
}

func maskSize(n *net.IPNet) (int, int) {
	if n == nil {
		return 0, 0
	}
	return n.Mask.Size()
}

// doctorIntent reports intent that does not decode, ports in error and
// dangling links, bridge by bridge.
func doctorIntent(topo *ovsdb.Topology) []Finding {
	var fs []Finding
	for i := range topo.Bridges {
		b := &topo.Bridges[i]
		bi := intent.DecodeBridge(b.Name, b.ExternalIDs)
		if !bi.Owned {
			continue
		}
		for _, err := range flowmodel.BadIntent(topo, b) {
			fs = append(fs, Finding{"intent", StatusProblem, err.Error(), "fix or remove the key with ovs-vsctl, or detach the container and attach it again"})
		}
		ifs, _ := topo.BridgeInterfaces(b)
		ports := map[string]bool{}
		for _, ifc := range ifs {
			for _, n := range intent.RefOf(ifc.ExternalIDs).LinkEnds() {
				ports[n] = true
			}
			if _, _, err := intent.DecodeImpairment(network.IfaceRow(ifc), ifc.ExternalIDs); err != nil {
				fs = append(fs, Finding{"intent", StatusProblem, err.Error(), fmt.Sprintf("ovsnet impair %s %s --clear, then impair it again", b.Name, network.OwnerOf(ifc))})
			}
			if _, _, err := intent.DecodeRateLimit(network.IfaceRow(ifc), ifc.ExternalIDs); err != nil {
				fs = append(fs, Finding{"intent", StatusProblem, err.Error(), fmt.Sprintf("ovsnet qos %s %s --clear, then set it again", b.Name, network.OwnerOf(ifc))})
			}
			if ifc.Error != nil && *ifc.Error != "" {
				fs = append(fs, Finding{"ports", StatusProblem, fmt.Sprintf("%s (%s) on %s: %s", ifc.Name, network.OwnerOf(ifc), b.Name, *ifc.Error),
					"ovsnet reconcile; if it stays, detach the container and attach it again"})
			}
		}
		for _, m := range bi.Mirrors {
			if m.Err == nil && !ports[m.To] {
				fs = append(fs, Finding{"mirrors", StatusNote, fmt.Sprintf("mirror %s on %s copies nothing: %s has no port there", m.Says(), b.Name, m.To),
					fmt.Sprintf("attach %s to %s, or ovsnet mirror del %s --to %s", m.To, b.Name, b.Name, m.To)})
			}
		}
		for _, l := range bi.Links {
			for _, end := range []string{l.Src, l.Dst} {
				if _, remote := intent.RemoteEnd(end); !remote && !ports[end] {
					fs = append(fs, Finding{"links", StatusNote, fmt.Sprintf("link %s -> %s on %s: %s has no port there", l.Src, l.Dst, b.Name, end),
						fmt.Sprintf("ovsnet unlink %s %s %s, unless it comes back", b.Name, l.Src, l.Dst)})
				}
			}
		}
	}
	if len(fs) == 0 {
		fs = append(fs, Finding{"intent", StatusOK, "every bridge's and port's settings decode; no port in error", ""})
	}
	return fs
}

func doctorIptables() Finding {
	backend := nat.Backend()
	if backend == "" {
		return Finding{"iptables", StatusProblem, "not found: NAT and published ports cannot work", "apt-get install iptables"}
	}
	if other := nat.OtherBackend(); other != "" {
		return Finding{"iptables", StatusProblem, fmt.Sprintf("ovsnet uses %s, but %s also holds ovsnet rules: two ovsnets, or a backend switch that left them", backend, other),
			fmt.Sprintf("remove them there (%s -t nat -F OVSNET-DNAT ... or a reboot), and keep one backend (update-alternatives --config iptables)", strings.TrimSuffix(other, "-save"))}
	}
	return Finding{"iptables", StatusOK, backend + " backend", ""}
}

// OVSCtl is the script that starts and stops Open vSwitch's daemons
// where no service manager does (Debian's and Ubuntu's path).
const OVSCtl = "/usr/share/openvswitch/scripts/ovs-ctl"

// startController is how to start the controller, with systemd and
// without (deploy/install.sh installs the unit).
const startController = "systemctl enable --now ovsnet-controller; without systemd: " +
	"ovsnet controller --listen 127.0.0.1:9476 --docker-plugin ovsnet >/var/log/ovsnet-controller.log 2>&1 &"

// doctorController checks the controller's health; without it, Docker
// networks on dockerNets (its network plugin's) take no containers.
func doctorController(addr string, dockerNets []string) Finding {
	c := &http.Client{Timeout: 2 * time.Second}
	r, err := c.Get("http://" + addr + "/healthz")
	if err != nil && len(dockerNets) > 0 {
		return Finding{"controller", StatusProblem, fmt.Sprintf("not running at %s, and it is the network plugin of the Docker networks on %s: "+
			"docker run on them fails (after 15 s: dial unix /run/docker/plugins/ovsnet.sock) until it runs", addr, strings.Join(dockerNets, ", ")), startController}
	}
	if err != nil {
		return Finding{"controller", StatusNote, "not running at " + addr + ": nothing repairs drift or collects exited containers' ports until `ovsnet reconcile`",
			startController}
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	if r.StatusCode != http.StatusOK {
		return Finding{"controller", StatusProblem, "running at " + addr + " but not converged: " + strings.TrimSpace(string(b)), "see its log (journalctl -u ovsnet-controller)"}
	}
	return Finding{"controller", StatusOK, "running at " + addr + ", converged", ""}
}

func doctorDocker() Finding {
	if err := containers.DockerPing(); err != nil {
		return Finding{"containers", StatusNote, fmt.Sprintf("Docker API unreachable (%v): CONTAINER must be a netns name, pid:N or a path", err),
			"start Docker, or set DOCKER_HOST (Podman: unix:///run/podman/podman.sock)"}
	}
	return Finding{"containers", StatusOK, "Docker API reachable: CONTAINER may be a container name or ID", ""}
}

// doctorNetem says whether this kernel has netem, which ovsnet impair
// needs: loaded, built in, or a module modprobe finds.
func doctorNetem() Finding {
	switch kmod.Of("sch_netem") {
	case kmod.Loaded:
		return Finding{"netem", StatusOK, "loaded (ovsnet impair works)", ""}
	case kmod.BuiltIn:
		return Finding{"netem", StatusOK, "built into the kernel (ovsnet impair works)", ""}
	case kmod.Installed:
		return Finding{"netem", StatusOK, "a module the kernel loads when ovsnet impair first asks for it", ""}
	}
	return Finding{"netem", StatusNote, "not in this kernel (no sch_netem loaded, built in or installed): ovsnet impair cannot work here",
		"install the kernel's extra modules (Ubuntu: linux-modules-extra-$(uname -r)), then modprobe sch_netem"}
}
