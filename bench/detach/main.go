// Command detach measures tearing down beside building up, in one run:
// `add-ports` of N containers (veth and internal ports) onto a bridge,
// then `del-br` of that bridge, each in a fresh sandbox host. It writes
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
)

type result struct {
	Containers int     `json:"containers"`
	Type       string  `json:"type"`
	AddSecs    float64 `json:"add_ports_seconds"`
	DelBrSecs  float64 `json:"del_br_seconds"`
	Ratio      float64 `json:"del_over_add"`
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
			fmt.Printf("%d %s: add-ports %.1f s, del-br %.1f s (%.2fx)\n", n, typ, r.AddSecs, r.DelBrSecs, r.Ratio)
			rs = append(rs, r)
		}
	}
	check(measure.Write(*out, map[string]any{"datapath": "netdev (userspace)"}, rs))
}

// run attaches n containers of type typ in one add-ports and deletes the
// bridge, timing both.
func run(bin string, n int, typ string) result {
	h, err := sandbox.Start("ovsnet-bdetach", "")
	check(err)
	defer h.Close()
	var lines []string
	for i := 0; i < n; i++ {
		c := fmt.Sprintf("bd-%d", i)
		check(sandbox.AddNetns(c))
		defer sandbox.DelNetns(c)
		lines = append(lines, "eth1 /var/run/netns/"+c)
	}
	_, err = h.Run(bin, "add-br", "br0", "--subnet", "10.88.0.0/16")
	check(err)
	c := h.Command(bin, "add-ports", "br0", "-", "--ip", "--type", typ)
	c.Stdin = strings.NewReader(strings.Join(lines, "\n"))
	t := time.Now()
	if o, err := c.CombinedOutput(); err != nil {
		check(fmt.Errorf("add-ports: %v: %s", err, o))
	}
	r := result{Containers: n, Type: typ, AddSecs: time.Since(t).Seconds()}
	t = time.Now()
	_, err = h.Run(bin, "del-br", "br0")
	check(err)
	r.DelBrSecs = time.Since(t).Seconds()
	r.Ratio = r.DelBrSecs / r.AddSecs
	return r
}

// check stops the run on err, after the deferred clean-ups (main recovers).
func check(err error) {
	if err != nil {
		panic(err)
	}
}
