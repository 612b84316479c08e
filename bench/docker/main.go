// Command docker measures ovsnet as a Docker network side by side with
// Docker's own bridge driver in one run: container start (`docker run -d`)
// on an ovsnet network, on a Docker bridge network and on the least remote
// driver's (floor.go: what Docker's remote protocol itself costs),
// interleaved (after -fill containers started on each); the
// time from `docker restart` to the first ping over the ovsnet interface,
// for a container on the ovsnet network and one attached with the CLI; and
// many containers on one ovsnet network (more than a Linux bridge's 1,023
// ports), with the time to start them, the memory they took and random
// pairs reaching each other. OVS runs in a sandbox host; its controller
// serves the driver and leaves links in this (dockerd's) namespace. It
// writes bench/results/docker.json; BENCH_CONTROLLER_LOG=FILE keeps the
// controller's log there, with OVSNET_TRACE's step times of each attach.
package main

import (
	"flag"
	"fmt"
	"math/rand"
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
	bin    = flag.String("ovsnet", "bin/ovsnet", "ovsnet binary")
	image  = flag.String("image", "ovsnet-test/busybox:latest", "image with sleep and ping (make test imports it)")
	starts = flag.Int("starts", 20, "container starts measured per network")
	many   = flag.Int("many", 1100, "containers on one ovsnet network (0: skip)")
	fill   = flag.Int("fill", 0, "containers started on each network before the starts are timed")
	pool   = flag.Int("pool", 8, "the controller's warm pool (--pool; 8 is its default, 0 none)")
	floor  = flag.Bool("floor", true, "time a third network, on the least remote driver (floor.go), beside the two")
	gap    = flag.Duration("gap", time.Second, "pause before each timed start, so that what a driver does after one start (the controller's pool refill and convergence) is not timed in the next network's")
	out    = flag.String("out", "bench/results/docker.json", "result file")
)

type result struct {
	Fill            int     `json:"containers_on_each_network"`
	OvsnetStartMs   float64 `json:"ovsnet_run_median_ms"`
	BridgeStartMs   float64 `json:"docker_bridge_run_median_ms"`
	StartRatio      float64 `json:"ovsnet_over_docker_bridge"`
	FloorStartMs    float64 `json:"floor_driver_run_median_ms,omitempty"`
	FloorRatio      float64 `json:"floor_driver_over_docker_bridge,omitempty"`
	RestartPluginMs float64 `json:"restart_to_ping_plugin_median_ms"`
	RestartCLIMs    float64 `json:"restart_to_ping_cli_median_ms"`
	Many            int     `json:"many_containers"`
	ManySeconds     float64 `json:"many_start_seconds"`
	ManyMemMB       float64 `json:"many_memory_mb"`
	PairsReached    string  `json:"random_pairs_reached"`
}

func main() {
	defer func() {
		if err := recover(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/docker:", err)
			os.Exit(1)
		}
	}()
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	check(err)
	sb, err := sandbox.Start("ovsnet-benchd", "")
	check(err)
	defer sb.Close()
	driver := fmt.Sprintf("ovsnet-bench%d", os.Getpid())
	ctl := sb.Command(abs, "controller", "--listen", "127.0.0.1:19490", "--resync", "1h", "--pool", fmt.Sprint(*pool), "--docker-plugin", driver,
		"--docker-netns", fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))
	if path := os.Getenv("BENCH_CONTROLLER_LOG"); path != "" {
		f, err := os.Create(path)
		check(err)
		ctl.Stdout, ctl.Stderr = f, f
		ctl.Env = append(ctl.Env, "OVSNET_TRACE=1")
	}
	check(ctl.Start())
	sock := filepath.Join("/run/docker/plugins", driver+".sock")
	defer os.Remove(sock) // killed, the controller leaves it
	defer func() { ctl.Process.Kill(); ctl.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	floorName := fmt.Sprintf("ovsnet-floor%d", os.Getpid())
	if *floor {
		f, err := startFloor(floorName)
		check(err)
		defer f.close() // after the clean-up, which deletes its endpoints
	}
	var made []string
	defer func() { cleanup(made) }()
	ovs, bridge := "bench-ovs", "bench-bridge"
	docker("network", "rm", ovs, bridge)
	docker("network", "create", "-d", driver, "--ipam-driver", driver, "--subnet", "10.90.0.0/16", ovs)
	docker("network", "create", "-d", "bridge", "--subnet", "10.91.0.0/16", bridge)
	made = append(made, "net:"+ovs, "net:"+bridge)
	nets := []string{ovs, bridge}
	if *floor {
		docker("network", "rm", "bench-floor")
		docker("network", "create", "-d", floorName, "--ipam-driver", floorName, "--subnet", "10.93.0.0/16", "bench-floor")
		made = append(made, "net:bench-floor")
		nets = append(nets, "bench-floor")
	}

	var r result
	r.Fill = *fill
	for i := 0; i < *fill; i++ {
		for _, n := range nets {
			name := fmt.Sprintf("bench-f%d-%s", i, n)
			docker("run", "-d", "--name", name, "--network", n, *image, "sleep", "36000")
			made = append(made, name)
		}
	}
	ms := startTimes(&made, nets)
	r.OvsnetStartMs, r.BridgeStartMs = ms[0], ms[1]
	r.StartRatio = r.OvsnetStartMs / r.BridgeStartMs
	fmt.Printf("docker run -d with %d containers on each network: ovsnet %.1f ms, Docker bridge %.1f ms (%.2fx), medians of %d\n", *fill, r.OvsnetStartMs, r.BridgeStartMs, r.StartRatio, *starts)
	if *floor {
		r.FloorStartMs, r.FloorRatio = ms[2], ms[2]/r.BridgeStartMs
		fmt.Printf("  the least remote driver: %.1f ms (%.2fx)\n", r.FloorStartMs, r.FloorRatio)
	}
	r.RestartPluginMs, r.RestartCLIMs = restartTimes(sb, abs, &made, ovs)
	fmt.Printf("docker restart to first ping: plugin %.1f ms, CLI-attached %.1f ms\n", r.RestartPluginMs, r.RestartCLIMs)
	if *many > 0 {
		r.Many = *many
		r.ManySeconds, r.ManyMemMB, r.PairsReached = manyOn(&made, ovs, *many)
		fmt.Printf("%d containers on one ovsnet network: %.0f s, %.0f MB, pairs reached %s\n", *many, r.ManySeconds, r.ManyMemMB, r.PairsReached)
	}
	check(measure.Write(*out, map[string]any{"datapath": "netdev (userspace)", "starts": *starts, "controller_pool": *pool, "gap_ms": gap.Milliseconds()}, []result{r}))
}

// startTimes times docker run -d on each network, in turn, and returns
// their medians in the networks' order.
func startTimes(made *[]string, nets []string) []float64 {
	times := make([][]float64, len(nets))
	for i := 0; i < *starts; i++ {
		for k, n := range nets {
			name := fmt.Sprintf("bench-s%d-%s", i, n)
			time.Sleep(*gap)
			t := time.Now()
			docker("run", "-d", "--name", name, "--network", n, *image, "sleep", "3600")
			times[k] = append(times[k], float64(time.Since(t).Microseconds())/1000)
			*made = append(*made, name)
		}
	}
	var medians []float64
	for _, ts := range times {
		medians = append(medians, measure.Median(ts))
	}
	return medians
}

// restartTimes restarts a container on the ovsnet network and one attached
// with the CLI, five times each, timing until a peer's ping gets through.
func restartTimes(sb *sandbox.Sandbox, bin string, made *[]string, ovs string) (float64, float64) {
	peer, plug, cli := "bench-peer", "bench-plug", "bench-cli"
	docker("run", "-d", "--name", peer, "--network", ovs, *image, "sleep", "3600")
	docker("run", "-d", "--name", plug, "--network", ovs, *image, "sleep", "3600")
	docker("run", "-d", "--name", cli, "--network", "none", *image, "sleep", "3600")
	*made = append(*made, peer, plug, cli)
	_, err := sb.Run(bin, "add-br", "bench-cli", "--subnet", "10.92.0.0/24")
	check(err)
	_, err = sb.Run(bin, "add-port", "bench-cli", "eth1", cli, "--ip")
	check(err)
	plugAddr := strings.TrimSpace(docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", plug))
	var p, c []float64
	for i := 0; i < 5; i++ {
		p = append(p, untilPing(plug, peer, plugAddr))
		c = append(c, untilPing(cli, "", "10.92.0.1"))
	}
	return measure.Median(p), measure.Median(c)
}

// untilPing restarts container c and times until from (c itself when "")
// pings addr.
func untilPing(c, from, addr string) float64 {
	if from == "" {
		from = c
	}
	t := time.Now()
	docker("restart", "-t", "0", c)
	for time.Since(t) < 30*time.Second {
		if exec.Command("docker", "exec", from, "ping", "-c", "1", "-W", "1", addr).Run() == nil {
			return float64(time.Since(t).Microseconds()) / 1000
		}
	}
	return -1
}

// manyOn starts n containers on network net and reports the time, the
// memory they took (MemAvailable before and after) and how many of 20
// random pairs reach each other.
func manyOn(made *[]string, net string, n int) (float64, float64, string) {
	before := memAvailableMB()
	t := time.Now()
	var names []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("bench-m%d", i)
		docker("run", "-d", "--name", name, "--network", net, *image, "sleep", "36000")
		*made = append(*made, name)
		names = append(names, name)
	}
	secs := time.Since(t).Seconds()
	mem := before - memAvailableMB()
	ok := 0
	for i := 0; i < 20; i++ {
		a, b := names[rand.Intn(n)], names[rand.Intn(n)]
		if exec.Command("docker", "exec", a, "ping", "-c", "1", "-W", "2", b).Run() == nil {
			ok++
		}
	}
	return secs, mem, fmt.Sprintf("%d/20", ok)
}

func memAvailableMB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// cleanup removes the containers and networks made.
func cleanup(made []string) {
	var cs []string
	for _, m := range made {
		if !strings.HasPrefix(m, "net:") {
			cs = append(cs, m)
		}
	}
	for len(cs) > 0 {
		k := min(len(cs), 100)
		exec.Command("docker", append([]string{"rm", "-f"}, cs[:k]...)...).Run()
		cs = cs[k:]
	}
	// Docker may still be deleting the endpoints of many containers just
	// removed ("has active endpoints"): try again for a while.
	for _, m := range made {
		if n, ok := strings.CutPrefix(m, "net:"); ok {
			for try := 0; try < 60 && exec.Command("docker", "network", "rm", n).Run() != nil; try++ {
				time.Sleep(time.Second)
			}
		}
	}
}

func docker(args ...string) string {
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil && !(args[0] == "network" && args[1] == "rm") {
		check(fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out))
	}
	return string(out)
}

// check stops the run on err, after the deferred clean-ups (main recovers).
func check(err error) {
	if err != nil {
		panic(err)
	}
}
