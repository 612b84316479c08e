// Command detach measures tearing down beside building up, in one run:
// `add-ports` of N containers (veth and internal ports) onto a bridge (in
// calls of -batch lines), `del-ports` of all N in one call, `add-ports` of
// the N again and `del-br`
// of the bridge, each size and type in a fresh sandbox host. It writes
// bench/results/detach.json.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

var (
	bin   = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	sizes = flag.String("sizes", "1000", "containers per run, comma-separated")
	out   = flag.String("out", "bench/results/detach.json", "result file")
	types = flag.String("types", "veth,internal", "port types, comma-separated")
	batch = flag.Int("batch", 1000, "lines per add-ports call (one call for 10,000 veths outlasts OpenFlow's write timeout here)")
)

type result struct {
	Containers   int     `json:"containers"`
	Type         string  `json:"type"`
	AddSecs      float64 `json:"add_ports_seconds"`
	DelPortsSecs float64 `json:"del_ports_seconds"`
	PortsRatio   float64 `json:"del_ports_over_add"`
	AddAgainSecs float64 `json:"add_ports_again_seconds"`
	DelBrSecs    float64 `json:"del_br_seconds"`
	Ratio        float64 `json:"del_br_over_add_again"`
}

func main() {
	defer func() {
		if err := recover(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/detach:", err)
			os.Exit(1)
		}
	}()
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	check(err)
	var rs []result
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(s)
		check(err)
		for _, typ := range strings.Split(*types, ",") {
			r := run(abs, n, typ)
			fmt.Printf("%d %s: add-ports %.1f s, del-ports %.1f s (%.2fx); add-ports %.1f s, del-br %.1f s (%.2fx)\n",
				n, typ, r.AddSecs, r.DelPortsSecs, r.PortsRatio, r.AddAgainSecs, r.DelBrSecs, r.Ratio)
			rs = append(rs, r)
		}
	}
	check(measure.Write(*out, map[string]any{"datapath": "netdev (userspace)"}, rs))
}

// run attaches n containers of type typ in one add-ports and detaches
// them in one del-ports, then attaches them again and deletes the bridge,
// timing each.
func run(bin string, n int, typ string) result {
	h, err := sandbox.Start("ovsnet-bdetach", "")
	check(err)
	defer h.Close()
	var lines, cs []string
	for i := 0; i < n; i++ {
		c := "/var/run/netns/" + fmt.Sprintf("bd-%d", i)
		check(sandbox.AddNetns(filepath.Base(c)))
		defer sandbox.DelNetns(filepath.Base(c))
		lines, cs = append(lines, "eth1 "+c), append(cs, c)
	}
	_, err = h.Run(bin, "add-br", "br0", "--subnet", "10.88.0.0/16")
	check(err)
	r := result{Containers: n, Type: typ, AddSecs: addPorts(h, bin, lines, typ)}
	r.DelPortsSecs = timed(h, "", bin, append([]string{"del-ports", "br0", "-o", "json"}, cs...)...)
	if left, err := h.Vsctl("list-ports", "br0"); err != nil || strings.TrimSpace(left) != "" {
		check(fmt.Errorf("del-ports left ports on br0: %v %.200s", err, left))
	}
	r.AddAgainSecs = addPorts(h, bin, lines, typ)
	r.DelBrSecs = timed(h, "", bin, "del-br", "br0")
	r.PortsRatio, r.Ratio = r.DelPortsSecs/r.AddSecs, r.DelBrSecs/r.AddAgainSecs
	return r
}

// addPorts attaches lines with add-ports, -batch lines per call, and
// returns the seconds it took in all.
func addPorts(h *sandbox.Sandbox, bin string, lines []string, typ string) float64 {
	secs := 0.0
	for i := 0; i < len(lines); i += *batch {
		part := lines[i:min(i+*batch, len(lines))]
		secs += timed(h, strings.Join(part, "\n"), bin, "add-ports", "br0", "-", "--ip", "--type", typ)
	}
	return secs
}

// timed runs name with args on host h, stdin as its input, and returns
// the seconds it took.
func timed(h *sandbox.Sandbox, stdin, name string, args ...string) float64 {
	c := h.Command(name, args...)
	c.Stdin = strings.NewReader(stdin)
	t := time.Now()
	if o, err := c.CombinedOutput(); err != nil {
		check(fmt.Errorf("%s: %v: %s", args[0], err, o))
	}
	return time.Since(t).Seconds()
}

// check stops the run on err, after the deferred clean-ups (main recovers).
func check(err error) {
	if err != nil {
		panic(err)
	}
}
