package main

import (
	"fmt"
	"time"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

// routed is TCP between containers on two chassis within one OVN
// network, and through a router from one network to another, measured in
// turns in one run.
type routed struct {
	Hosts       int       `json:"hosts"`
	WithinGbps  []float64 `json:"within_network_gbit_per_s"`
	RoutedGbps  []float64 `json:"through_router_gbit_per_s"`
	WithinMed   float64   `json:"within_network_median_gbit_per_s"`
	RoutedMed   float64   `json:"through_router_median_gbit_per_s"`
	Ratio       float64   `json:"router_to_within_ratio"`
	WithinPing  float64   `json:"within_network_ping_ms"`
	RoutedPing  float64   `json:"through_router_ping_ms"`
	RouterSetMs float64   `json:"router_create_and_attach_two_ms"`
	Service     balanced  `json:"service"`
}

// routerRun measures what a router costs: two chassis (of -router-hosts), a
// network whose containers talk within it, and two networks on a router
// with a link letting one container reach the other.
func routerRun() routed {
	*hosts = max(*routerHosts, 2)
	w := newWorld("ovsnet-or")
	defer w.close()
	central, err := sandbox.StartCentral("ovsnet-orc", "")
	check(err)
	defer central.Close()
	for i, h := range w.hs {
		check(h.StartOVNController())
		run(h, "ovn", "join", "--sb", central.SB(), "--nb", central.NB(), "--encap-ip", sandbox.UnderlayAddr(i))
	}
	r := routed{Hosts: *hosts}
	for _, n := range []string{"flat 10.97.0.0/24", "ra 10.97.1.0/24", "rb 10.97.2.0/24"} {
		var name, sub string
		fmt.Sscan(n, &name, &sub)
		run(w.hs[0], "network", "create", name, "--subnet", sub, "--nat=false")
	}
	t := time.Now()
	run(w.hs[0], "router", "create", "r")
	run(w.hs[0], "router", "attach", "r", "ra")
	run(w.hs[0], "router", "attach", "r", "rb")
	r.RouterSetMs = ms(time.Since(t))
	flat := addPort(w.hs[1], "flat", w.cs[1])
	addPort(w.hs[0], "flat", w.cs[0])
	src, dst := "ovsnet-or-src", "ovsnet-or-dst"
	for _, c := range []string{src, dst} {
		check(sandbox.AddNetns(c))
		w.cleanup = append(w.cleanup, func() { sandbox.DelNetns(c) })
	}
	addPort(w.hs[0], "ra", src)
	far := addPort(w.hs[1], "rb", dst)
	run(w.hs[0], "link", "rb", src, dst)
	for i := 2; i < len(w.hs); i++ {
		addPort(w.hs[i], "rb", w.cs[i])
	}
	for _, p := range []struct{ from, addr string }{{w.cs[0], flat}, {src, far}} {
		for t := time.Now(); !answers(p.from, p.addr); {
			if time.Since(t) > 30*time.Second {
				check(fmt.Errorf("%s does not reach %s", p.from, p.addr))
			}
		}
	}
	var wp, rp []float64
	for i := 0; i < *reps; i++ {
		a, err := measure.TCPRun(w.cs[0], w.cs[1], flat, *secs)
		check(err)
		b, err := measure.TCPRun(src, dst, far, *secs)
		check(err)
		r.WithinGbps, r.RoutedGbps = append(r.WithinGbps, a.Gbps), append(r.RoutedGbps, b.Gbps)
		p, err := measure.PingAvgMs(w.cs[0], flat, 20)
		check(err)
		q, err := measure.PingAvgMs(src, far, 20)
		check(err)
		wp, rp = append(wp, p), append(rp, q)
	}
	r.WithinMed, r.RoutedMed = measure.Median(r.WithinGbps), measure.Median(r.RoutedGbps)
	r.Ratio, r.WithinPing, r.RoutedPing = r.RoutedMed/r.WithinMed, measure.Median(wp), measure.Median(rp)
	r.Service = serviceRun(w, "rb", dst)
	return r
}
