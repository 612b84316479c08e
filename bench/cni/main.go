// Command cni measures ovsnet's CNI plugin side by side with the reference
// chain (Debian's bridge with host-local, and portmap where ports are
// published) through cnitool, in one run: ADD and DEL latency of a fresh
// namespace, the two networks' samples interleaved, at 10 and at 1,000
// attachments on each network, with the plugin working alone and with
// the controller serving it. OVS runs in a sandbox host, and so does the
// reference's Linux bridge. It writes bench/results/cni.json;
// BENCH_CONTROLLER_LOG=FILE keeps the controller's log there, with
// OVSNET_TRACE's step times of each attach.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var (
	bin     = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	samples = flag.Int("samples", 15, "ADD/DEL pairs measured per network, level, mode and variant")
	levels  = flag.String("levels", "10,1000", "attachments on each network while measuring")
	out     = flag.String("out", "bench/results/cni.json", "result file")
	ptype   = flag.String("port-type", "", "ovsnet's portType (veth|internal; default: the datapath's)")
	pool    = flag.Int("pool", 8, "the controller's warm pool (--pool; 8 is its default, 0 none)")
	cnitool = flag.String("cnitool", "", "cnitool binary (default: built with go install)")
)

type result struct {
	Attached   int     `json:"attachments"`
	Controller bool    `json:"controller"`
	Ports      bool    `json:"published_port"`
	OvsAddMs   float64 `json:"ovsnet_add_median_ms"`
	RefAddMs   float64 `json:"reference_add_median_ms"`
	AddRatio   float64 `json:"ovsnet_over_reference_add"`
	OvsDelMs   float64 `json:"ovsnet_del_median_ms"`
	RefDelMs   float64 `json:"reference_del_median_ms"`
	Reference  string  `json:"reference"`
}

// bench is one run's sandbox, tools and networks.
type bench struct {
	sb      *sandbox.Sandbox
	l       *measure.Launcher
	cnitool string
	env     []string
	made    []string // namespaces, removed at the end
	port    int      // the next host port to publish
}

func main() {
	defer func() {
		if err := recover(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/cni:", err)
			os.Exit(1)
		}
	}()
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	check(err)
	sb, err := sandbox.Start("ovsnet-benchcni", "")
	check(err)
	defer sb.Close()
	b := &bench{sb: sb, port: 20000}
	defer b.cleanup()
	b.l, err = measure.NewLauncher(sb.Netns)
	check(err)
	b.setup(abs)
	var rs []result
	attached := 0
	for _, level := range strings.Split(*levels, ",") {
		var n int
		fmt.Sscan(level, &n)
		b.fill(attached, n)
		attached = n
		for _, ctl := range []bool{false, true} {
			stop := func() {}
			if ctl {
				c := exec.Command(abs, "controller", "--listen", "127.0.0.1:19491", "--resync", "1h", "--pool", fmt.Sprint(*pool))
				c.Env = sb.Env()
				logPath := filepath.Join(sb.Dir, "controller.log")
				if path := os.Getenv("BENCH_CONTROLLER_LOG"); path != "" {
					logPath = path
					c.Env = append(c.Env, "OVSNET_TRACE=1")
				}
				log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				check(err)
				c.Stderr = log
				stop, err = b.l.StartController(c, sb.Dir)
				check(err)
			}
			for _, ports := range []bool{false, true} {
				r := b.measure(n, ctl, ports)
				fmt.Printf("%d attached, controller %v, port %v: ADD ovsnet %.1f ms, reference %.1f ms (%.2fx); DEL %.1f vs %.1f ms\n",
					n, ctl, ports, r.OvsAddMs, r.RefAddMs, r.AddRatio, r.OvsDelMs, r.RefDelMs)
				rs = append(rs, r)
			}
			stop()
		}
	}
	check(measure.Write(*out, map[string]any{"datapath": measure.Datapath(), "samples": *samples, "port_type": *ptype, "controller_pool": *pool}, rs))
}

// setup builds cnitool and writes the four networks: ovsnet and the
// reference, each plain and publishing a port.
func (b *bench) setup(abs string) {
	dir, err := os.MkdirTemp("", "ovsnet-benchcni-")
	check(err)
	b.made = append(b.made, "dir:"+dir)
	plugins := filepath.Join(dir, "plugins")
	check(os.MkdirAll(plugins, 0o755))
	check(os.Link(abs, filepath.Join(plugins, "ovsnet")))
	b.cnitool = *cnitool
	if b.cnitool == "" {
		c := exec.Command("go", "install", "github.com/containernetworking/cni/cnitool@v1.3.1")
		c.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
		if o, err := c.CombinedOutput(); err != nil {
			check(fmt.Errorf("build cnitool: %v: %s", err, o))
		}
		b.cnitool = filepath.Join(dir, "cnitool")
	}
	confs := filepath.Join(dir, "net.d")
	check(os.MkdirAll(confs, 0o755))
	ovs := fmt.Sprintf(`{"type":"ovsnet","bridge":"br-bench","subnet":"10.80.0.0/20","portType":%q,"ovsdb":%q%%s}`, *ptype, b.sb.DB())
	ref := `{"type":"bridge","bridge":"cni-bench","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.81.0.0/20","rangeStart":%q,"rangeEnd":%q}]],"dataDir":%q}}`
	portmap := `{"type":"portmap","capabilities":{"portMappings":true}}`
	data := filepath.Join(dir, "host-local")
	for name, plugins := range map[string]string{
		"ovs":       fmt.Sprintf(ovs, ""),
		"ovs-ports": fmt.Sprintf(ovs, `,"capabilities":{"portMappings":true}`),
		"ref":       fmt.Sprintf(ref, "10.81.0.2", "10.81.7.254", data),
		"ref-ports": fmt.Sprintf(ref, "10.81.8.1", "10.81.15.254", data) + "," + portmap,
	} {
		conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[%s]}`, name, plugins)
		check(os.WriteFile(filepath.Join(confs, name+".conflist"), []byte(conf), 0o644))
	}
	b.env = append(b.sb.Env(), "NETCONFPATH="+confs, "CNI_PATH="+plugins+":/usr/lib/cni")
}

// fill attaches namespaces to the plain networks until each holds n, 8 at
// a time.
func (b *bench) fill(from, n int) {
	next := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range next {
				net, ns, _ := strings.Cut(job, " ")
				if _, err := b.l.Timed(b.cmd(nil, "add", net, "/run/netns/"+ns)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := from; i < n; i++ {
		for _, net := range []string{"ovs", "ref"} {
			next <- net + " " + b.netns(fmt.Sprintf("bf-%s-%d", net, i))
		}
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		check(errs[0])
	}
}

// measure times ADD and DEL of fresh namespaces on ovsnet's network and
// the reference's, alternating.
func (b *bench) measure(n int, ctl, ports bool) result {
	r := result{Attached: n, Controller: ctl, Ports: ports, Reference: "bridge + host-local"}
	ovs, ref := "ovs", "ref"
	if ports {
		ovs, ref, r.Reference = "ovs-ports", "ref-ports", "bridge + host-local + portmap"
	}
	var oa, ra, od, rd []float64
	for i := 0; i < *samples; i++ {
		for _, net := range []string{ovs, ref} {
			ns := "/run/netns/" + b.netns(fmt.Sprintf("bs-%d-%v-%v-%s-%d", n, ctl, ports, net, i))
			var env []string
			if ports {
				b.port++
				env = []string{fmt.Sprintf(`CAP_ARGS={"portMappings":[{"hostPort":%d,"containerPort":80,"protocol":"tcp"}]}`, b.port)}
			}
			add, err := b.l.Timed(b.cmd(env, "add", net, ns))
			check(err)
			del, err := b.l.Timed(b.cmd(env, "del", net, ns))
			check(err)
			if net == ovs {
				oa, od = append(oa, add), append(od, del)
			} else {
				ra, rd = append(ra, add), append(rd, del)
			}
		}
	}
	r.OvsAddMs, r.RefAddMs, r.OvsDelMs, r.RefDelMs = measure.Median(oa), measure.Median(ra), measure.Median(od), measure.Median(rd)
	r.AddRatio = r.OvsAddMs / r.RefAddMs
	return r
}

func (b *bench) cmd(env []string, args ...string) *exec.Cmd {
	c := exec.Command(b.cnitool, args...)
	c.Env = append(append([]string{}, b.env...), env...)
	return c
}

// netns makes a named network namespace, removed at the end.
func (b *bench) netns(name string) string {
	check(sandbox.AddNetns(name))
	b.made = append(b.made, name)
	return name
}

func (b *bench) cleanup() {
	for _, m := range b.made {
		if dir, ok := strings.CutPrefix(m, "dir:"); ok {
			os.RemoveAll(dir)
		} else {
			sandbox.DelNetns(m)
		}
	}
}

// check stops the run on err, after the deferred clean-ups (main recovers).
func check(err error) {
	if err != nil {
		panic(err)
	}
}
