// Command ovn measures OVN networks beside the static tunnel mesh, side by
// side in one run, on -hosts sandbox hosts on one underlay LAN: the time
// from add-port on host j until host 0's container gets an answer from
// the new one; TCP throughput and ping between containers on two hosts
// (OVN's Geneve, the mesh's VXLAN); the resident memory of ovn-controller
// and of ovsnet's controller on a host; and, with -ports ports over the
// chassis, the northbound and southbound databases' size and ovn-northd's
// time, with one more attach at that size. It writes
// bench/results/ovn.json.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	hosts = flag.Int("hosts", 10, "sandbox hosts (chassis)")
	ports = flag.Int("ports", 1000, "logical ports over the chassis for the database figures (0: skip)")
	secs  = flag.Int("t", 5, "seconds per iperf3 run")
	reps  = flag.Int("reps", 3, "iperf3 and ping runs (medians are reported)")
	out   = flag.String("out", "bench/results/ovn.json", "result file")
	// -router measures only what a router costs (two chassis), into
	// bench/results/ovn-router.json unless -out says otherwise.
	router = flag.Bool("router", false, "measure TCP through a router against within one network (two chassis) only")
	// -router-hosts: the chassis of the -router run; past the two that
	// carry the measured containers, each joins with one container on the
	// service's network (so each programs its router and load balancer).
	routerHosts = flag.Int("router-hosts", 2, "chassis in the -router run")
)

// backend is one way of spanning hosts, as measured.
type backend struct {
	Name            string    `json:"backend"`
	Hosts           int       `json:"hosts"`
	SetupSecs       float64   `json:"setup_seconds"` // hosts joined, or the mesh's tunnels made
	AddPortMs       []float64 `json:"add_port_ms"`   // on host j, j = 1..hosts-1
	ReachableMs     []float64 `json:"add_port_to_first_answer_ms"`
	ReachMedianMs   float64   `json:"add_port_to_first_answer_median_ms"`
	Gbps            float64   `json:"tcp_gbit_per_s"`
	Retrans         int       `json:"tcp_retransmits"`
	PingAvgMs       float64   `json:"ping_avg_ms"`
	MTU             string    `json:"container_mtu"`
	ControllerMiB   int       `json:"ovsnet_controller_rss_mib"`
	OVNControllerMB int       `json:"ovn_controller_rss_mib,omitempty"`
}

func main() {
	flag.Parse()
	if *router {
		r := routerRun()
		fmt.Printf("%d chassis; TCP across two: within a network %.2f Gbit/s %v, through a router %.2f Gbit/s %v: %.2fx; ping %.3f against %.3f ms; router create + 2 attaches %.0f ms\n",
			r.Hosts, r.WithinMed, r.WithinGbps, r.RoutedMed, r.RoutedGbps, r.Ratio, r.WithinPing, r.RoutedPing, r.RouterSetMs)
		s := r.Service
		fmt.Printf("a service: TCP straight to its backend %.2f Gbit/s %v, through its address %.2f Gbit/s %v: %.2fx; add-backend to first served %.0f ms %s\n",
			s.DirectMed, s.DirectGbps, s.ViaMed, s.ViaGbps, s.Ratio, s.AddMedianMs, spread(s.AddBackendMs))
		if *out == "bench/results/ovn.json" {
			*out = "bench/results/ovn-router.json"
		}
		check(measure.Write(*out, map[string]any{"reps": *reps, "iperf3_seconds": *secs}, r))
		return
	}
	o, scale := ovnRun()
	var bs []backend
	if strings.HasPrefix(measure.Datapath(), "system") {
		// The kernel datapath's tunnels are kernel vports whatever the
		// device: one mesh, as add-br and tunnel add make it there.
		bs = []backend{o, meshRun("")}
	} else {
		bs = []backend{o, meshRun("kernel"), meshRun("ovs")}
	}
	for _, b := range bs {
		fmt.Printf("%-22s %d hosts, set up in %.1f s; add-port to first answer: median %.0f ms (%s); add-port alone %s; TCP %.2f Gbit/s (%d retransmits), ping %.3f ms, mtu %s; ovsnet controller %d MiB, ovn-controller %d MiB\n",
			b.Name, b.Hosts, b.SetupSecs, b.ReachMedianMs, spread(b.ReachableMs), spread(b.AddPortMs), b.Gbps, b.Retrans, b.PingAvgMs, b.MTU, b.ControllerMiB, b.OVNControllerMB)
	}
	extra := map[string]any{"reps": *reps, "iperf3_seconds": *secs}
	if scale != nil {
		fmt.Printf("at %d ports over %d chassis: %+v\n", scale.Ports, *hosts, *scale)
		extra["scale"] = scale
	}
	check(measure.Write(*out, extra, bs))
}

// world is the sandbox hosts, their containers and the LAN between them.
type world struct {
	hs      []*sandbox.Sandbox
	cs      []string
	cleanup []func()
}

func newWorld(prefix string) *world {
	w := &world{}
	for i := 0; i < *hosts; i++ {
		h, err := sandbox.Start(fmt.Sprintf("%s%d", prefix, i), "")
		check(err)
		w.hs = append(w.hs, h)
		w.cleanup = append(w.cleanup, func() { h.Close() })
	}
	sw := prefix + "sw"
	check(sandbox.Join(sw, w.hs...))
	w.cleanup = append(w.cleanup, func() { sandbox.DelNetns(sw) })
	for i := range w.hs {
		c := fmt.Sprintf("%sc%d", prefix, i)
		check(sandbox.AddNetns(c))
		w.cs = append(w.cs, c)
		w.cleanup = append(w.cleanup, func() { sandbox.DelNetns(c) })
	}
	return w
}

func (w *world) close() {
	for i := len(w.cleanup) - 1; i >= 0; i-- {
		w.cleanup[i]()
	}
}

// attachAll attaches host 0's container, then each other host's, timing
// add-port and the first answer from the new container to host 0's.
func (w *world) attachAll(b *backend, network string) []string {
	addrs := []string{addPort(w.hs[0], network, w.cs[0])}
	for j := 1; j < len(w.hs); j++ {
		t := time.Now()
		a := addPort(w.hs[j], network, w.cs[j])
		b.AddPortMs = append(b.AddPortMs, ms(time.Since(t)))
		for !answers(w.cs[0], a) {
			if time.Since(t) > 30*time.Second {
				check(fmt.Errorf("%s: host %d's container %s not reachable from host 0 after 30 s", b.Name, j, a))
			}
		}
		b.ReachableMs = append(b.ReachableMs, ms(time.Since(t)))
		addrs = append(addrs, a)
	}
	b.ReachMedianMs = measure.Median(b.ReachableMs)
	return addrs
}

// traffic measures TCP and ping between host 0's and host 1's containers.
func (w *world) traffic(b *backend, addr string) {
	var gs, rs, ps []float64
	for i := 0; i < *reps; i++ {
		r, err := measure.TCPRun(w.cs[0], w.cs[1], addr, *secs)
		check(err)
		p, err := measure.PingAvgMs(w.cs[0], addr, 20)
		check(err)
		gs, rs, ps = append(gs, r.Gbps), append(rs, float64(r.Retransmits)), append(ps, p)
	}
	b.Gbps, b.Retrans, b.PingAvgMs, b.MTU = measure.Median(gs), int(measure.Median(rs)), measure.Median(ps), mtu(w.cs[0])
}

// controllerRSS starts ovsnet's controller on host 0, lets it converge,
// and returns its resident memory.
func (w *world) controllerRSS() int {
	c := w.hs[0].Command(*bin, "controller", "--listen", "127.0.0.1:19499", "--pool", "0")
	check(c.Start())
	defer func() { c.Process.Kill(); c.Wait() }()
	time.Sleep(5 * time.Second) // its first runs and a resync
	return rssMiB(c.Process.Pid)
}

func ovnRun() (backend, *scaleResult) {
	w := newWorld("ovsnet-ob")
	defer w.close()
	central, err := sandbox.StartCentral("ovsnet-obc", "")
	check(err)
	defer central.Close()
	b := backend{Name: "OVN (Geneve)", Hosts: *hosts}
	t := time.Now()
	for i, h := range w.hs {
		check(h.StartOVNController())
		run(h, "ovn", "join", "--sb", central.SB(), "--nb", central.NB(), "--encap-ip", sandbox.UnderlayAddr(i))
	}
	b.SetupSecs = time.Since(t).Seconds()
	run(w.hs[0], "network", "create", "lab", "--subnet", "10.95.0.0/16")
	addrs := w.attachAll(&b, "lab")
	w.traffic(&b, addrs[1])
	b.ControllerMiB = w.controllerRSS()
	b.OVNControllerMB = rssOfPidfile(filepath.Join(w.hs[0].Dir, "ovn-controller.pid"))
	if *ports == 0 {
		return b, nil
	}
	return b, w.scale(central)
}

// meshRun is the static mesh of VXLAN tunnels on device (kernel: the
// default, a kernel VXLAN device; ovs: OVS's own, userspace, VXLAN port as
// OVN's Geneve is).
func meshRun(device string) backend {
	w := newWorld("ovsnet-om")
	defer w.close()
	b := backend{Name: "mesh (" + device + " VXLAN)", Hosts: *hosts}
	var dev []string
	if device == "" {
		b.Name = "mesh (VXLAN vports)"
	} else {
		dev = []string{"--device", device}
	}
	t := time.Now()
	for i, h := range w.hs {
		run(h, "add-br", "br0", "--subnet", "10.96.0.0/16", "--ip-range", fmt.Sprintf("10.96.%d.0/24", i+1))
		for j := range w.hs {
			if i != j {
				run(h, append([]string{"tunnel", "add", "br0", sandbox.UnderlayAddr(j)}, dev...)...)
			}
		}
	}
	b.SetupSecs = time.Since(t).Seconds()
	addrs := w.attachAll(&b, "br0")
	w.traffic(&b, addrs[1])
	b.ControllerMiB = w.controllerRSS()
	return b
}

// scaleResult is the databases at Ports logical ports.
type scaleResult struct {
	Ports            int     `json:"ports"`
	AttachListSecs   float64 `json:"add_ports_seconds"` // all the lists, host after host
	NBFileKiB        int     `json:"nb_db_file_kib_compacted"`
	SBFileKiB        int     `json:"sb_db_file_kib_compacted"`
	LogicalFlows     int     `json:"sb_logical_flows"`
	NorthdSyncMs     float64 `json:"northd_nb_change_to_sb_ms"` // ovn-nbctl --wait=sb sync after one more port
	NorthdStopwatch  string  `json:"northd_stopwatch"`
	AddPortAtScaleMs float64 `json:"add_port_at_scale_ms"`
	ReachAtScaleMs   float64 `json:"add_port_to_first_answer_at_scale_ms"`
	OVNControllerMiB int     `json:"ovn_controller_rss_mib_at_scale"`
	NBServerMemory   string  `json:"nb_ovsdb_server_memory"`
	SBServerMemory   string  `json:"sb_ovsdb_server_memory"`
	ControllerMiBAt  int     `json:"ovsnet_controller_rss_mib_at_scale"`
}

// scale attaches veths from lists on every host until the network has
// -ports ports, then reads the databases' size and ovn-northd's time.
func (w *world) scale(c *sandbox.Central) *scaleResult {
	per := (*ports - len(w.hs)) / len(w.hs)
	r := &scaleResult{Ports: len(w.hs) + per*len(w.hs)}
	t := time.Now()
	for i, h := range w.hs {
		var lines []string
		for k := 0; k < per; k++ {
			c := fmt.Sprintf("ovsnet-os%d-%d", i, k)
			check(sandbox.AddNetns(c))
			w.cleanup = append(w.cleanup, func() { sandbox.DelNetns(c) })
			lines = append(lines, "eth1 "+c)
		}
		list := filepath.Join(h.Dir, "list")
		check(os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
		run(h, "add-ports", "lab", list, "--ip", "--type", "veth")
	}
	r.AttachListSecs = time.Since(t).Seconds()
	nbctl := func(args ...string) string {
		out, err := exec.Command("ovn-nbctl", append([]string{"--db=" + c.NB()}, args...)...).CombinedOutput()
		check(err)
		return string(out)
	}
	nbctl("--wait=sb", "sync")
	// One more attach at this size: add-port and first answer.
	extra := "ovsnet-osx"
	check(sandbox.AddNetns(extra))
	w.cleanup = append(w.cleanup, func() { sandbox.DelNetns(extra) })
	t = time.Now()
	a := addPort(w.hs[len(w.hs)-1], "lab", extra)
	r.AddPortAtScaleMs = ms(time.Since(t))
	for !answers(w.cs[0], a) && time.Since(t) < 30*time.Second {
	}
	r.ReachAtScaleMs = ms(time.Since(t))
	t = time.Now()
	nbctl("--wait=sb", "set", "logical_switch", "lab", "external_ids:ovsnet-bench=1")
	r.NorthdSyncMs = ms(time.Since(t))
	r.NorthdStopwatch = appctl(filepath.Join(c.Dir, "northd.ctl"), "stopwatch/show", "ovnnb_db_run")
	for _, db := range []struct {
		name string
		kib  *int
		mem  *string
	}{{"nb", &r.NBFileKiB, &r.NBServerMemory}, {"sb", &r.SBFileKiB, &r.SBServerMemory}} {
		ctl := filepath.Join(c.Dir, db.name+".ctl")
		appctl(ctl, "ovsdb-server/compact")
		st, err := os.Stat(filepath.Join(c.Dir, db.name+".db"))
		check(err)
		*db.kib, *db.mem = int(st.Size()/1024), strings.TrimSpace(appctl(ctl, "memory/show"))
	}
	out, err := exec.Command("ovn-sbctl", "--db="+c.SB(), "--bare", "--columns=_uuid", "list", "logical_flow").Output()
	check(err)
	r.LogicalFlows = len(strings.Fields(string(out)))
	r.OVNControllerMiB = rssOfPidfile(filepath.Join(w.hs[0].Dir, "ovn-controller.pid"))
	r.ControllerMiBAt = w.controllerRSS()
	return r
}

// answers says whether addr answers one ping from netns c within 0.2 s.
func answers(c, addr string) bool {
	return exec.Command("ip", "netns", "exec", c, "ping", "-c", "1", "-W", "0.2", addr).Run() == nil
}

func appctl(ctl string, args ...string) string {
	out, err := exec.Command("ovs-appctl", append([]string{"-t", ctl}, args...)...).CombinedOutput()
	check(err)
	return string(out)
}

// addPort attaches container c to network on h and returns its address.
func addPort(h *sandbox.Sandbox, network, c string) string {
	out, err := h.Run(*bin, "add-port", network, "eth1", c, "--ip", "-o", "json")
	check(err)
	var p struct{ Addresses []string }
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Addresses) == 0 {
		check(fmt.Errorf("add-port printed no address (%v): %s", err, out))
	}
	a, _, _ := strings.Cut(p.Addresses[0], "/")
	return a
}

func rssOfPidfile(path string) int {
	b, err := os.ReadFile(path)
	check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	check(err)
	return rssMiB(pid)
}

func rssMiB(pid int) int {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}

func mtu(c string) string {
	m, err := measure.LinkMTU(c, "eth1")
	check(err)
	return m
}

// spread is "min-max" of xs in ms.
func spread(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%.0f-%.0f ms", lo, hi)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func run(h *sandbox.Sandbox, args ...string) {
	_, err := h.Run(*bin, args...)
	check(err)
}

// check panics, so that the deferred clean-ups run.
func check(err error) {
	if err != nil {
		panic(fmt.Sprint("ovn bench: ", err))
	}
}
