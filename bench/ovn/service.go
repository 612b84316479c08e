package main

import (
	"io"
	"net"
	"os/exec"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/ovsnet/ovsnet/bench/measure"
	"github.com/ovsnet/ovsnet/test/sandbox"
)

// balanced is TCP through a service's address against straight to its
// one backend, and the time from add-backend to a connection the new
// backend serves.
type balanced struct {
	DirectGbps   []float64 `json:"direct_gbit_per_s"`
	ViaGbps      []float64 `json:"through_service_gbit_per_s"`
	DirectMed    float64   `json:"direct_median_gbit_per_s"`
	ViaMed       float64   `json:"through_service_median_gbit_per_s"`
	Ratio        float64   `json:"service_to_direct_ratio"`
	AddBackendMs []float64 `json:"add_backend_to_first_served_ms"`
	AddMedianMs  float64   `json:"add_backend_to_first_served_median_ms"`
}

// serviceRun measures a service on routed network net of world w: src
// (on host 1) sends to a backend on host 0, straight and through the
// service's address; then, reps times, a second backend (host 1) is added
// and connections are made until one reaches it.
func serviceRun(w *world, net, src string) balanced {
	var b balanced
	be, nb := "ovsnet-or-be", "ovsnet-or-nb"
	for _, c := range []string{be, nb} {
		check(sandbox.AddNetns(c))
		w.cleanup = append(w.cleanup, func() { sandbox.DelNetns(c) })
	}
	beAddr := addPort(w.hs[0], net, be)
	nbAddr := addPort(w.hs[1], net, nb)
	iperf := exec.Command("ip", "netns", "exec", be, "iperf3", "-s", "-B", beAddr)
	check(iperf.Start())
	defer func() { iperf.Process.Kill(); iperf.Wait() }()
	run(w.hs[0], "service", "create", "bench", "--network", net, "--vip", "172.31.0.10:5201", "--backend", be+":5201")
	waitServed(src, "172.31.0.10:5201", "")
	for i := 0; i < *reps; i++ {
		d, err := measure.TCPClient(src, beAddr, *secs)
		check(err)
		v, err := measure.TCPClient(src, "172.31.0.10", *secs)
		check(err)
		b.DirectGbps, b.ViaGbps = append(b.DirectGbps, d.Gbps), append(b.ViaGbps, v.Gbps)
	}
	b.DirectMed, b.ViaMed = measure.Median(b.DirectGbps), measure.Median(b.ViaGbps)
	b.Ratio = b.ViaMed / b.DirectMed
	// add-backend to first served: names served on 8080 by both.
	serve(be, beAddr+":8080", "old")
	serve(nb, nbAddr+":8080", "new")
	run(w.hs[0], "service", "create", "names", "--network", net, "--vip", "172.31.0.11:8080", "--backend", be+":8080")
	waitServed(src, "172.31.0.11:8080", "old")
	for i := 0; i < *reps; i++ {
		t := time.Now()
		run(w.hs[0], "service", "add-backend", "names", nb+":8080")
		waitServed(src, "172.31.0.11:8080", "new")
		b.AddBackendMs = append(b.AddBackendMs, ms(time.Since(t)))
		run(w.hs[0], "service", "del-backend", "names", nb+":8080")
		time.Sleep(2 * time.Second) // out of the rotation again
	}
	b.AddMedianMs = measure.Median(b.AddBackendMs)
	run(w.hs[0], "service", "rm", "names")
	run(w.hs[0], "service", "rm", "bench")
	return b
}

// serve answers every connection to addr in netns c with name.
func serve(c, addr, name string) {
	_, err := sandbox.ServeReply(c, addr, name)
	check(err)
}

// waitServed connects from netns c to addr, a new connection every few
// milliseconds, until one reads want ("": until one connects), for at
// most 30 s.
func waitServed(c, addr, want string) {
	n, err := ns.GetNS("/var/run/netns/" + c)
	check(err)
	defer n.Close()
	check(n.Do(func(ns.NetNS) error {
		for t := time.Now(); time.Since(t) < 30*time.Second; time.Sleep(5 * time.Millisecond) {
			k, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err != nil {
				continue
			}
			k.SetDeadline(time.Now().Add(200 * time.Millisecond))
			b, _ := io.ReadAll(k)
			k.Close()
			if want == "" || string(b) == want {
				return nil
			}
		}
		return io.ErrUnexpectedEOF
	}))
}
