// Command plot draws bench/results/*.json as SVG bar charts beside them
// (no dependencies: plain SVG), so the README can show the figures the
// harnesses produced.
package main

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"

	"github.com/ovsnet/ovsnet/bench/measure"
)

type series struct {
	Name   string
	Values []float64
}

// bars writes a grouped bar chart: one group per label, one bar per series.
func bars(path, title, unit string, labels []string, ss []series) error {
	const w, h, left, bottom, top = 900, 380, 70, 80, 40
	max := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			if v > max {
				max = v
			}
		}
	}
	if max == 0 {
		max = 1
	}
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/><text x="%d" y="22" font-size="15">%s</text>`+"\n", w, h, left, html.EscapeString(title))
	plotH := float64(h - bottom - top)
	groupW := float64(w-left-20) / float64(len(labels))
	barW := groupW * 0.8 / float64(len(ss))
	for i := 0; i <= 4; i++ {
		y := float64(h-bottom) - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.3g</text>`+"\n",
			left, w-20, y, y, left-6, y+4, max*float64(i)/4)
	}
	fmt.Fprintf(&b, `<text x="14" y="%d" transform="rotate(-90 14 %d)">%s</text>`+"\n", h/2, h/2, html.EscapeString(unit))
	for g, l := range labels {
		x0 := float64(left) + groupW*float64(g) + groupW*0.1
		for i, s := range ss {
			if g >= len(s.Values) {
				continue
			}
			v := s.Values[g]
			bh := plotH * v / max
			x := x0 + barW*float64(i)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %.3g %s</title></rect>`+"\n",
				x, float64(h-bottom)-bh, barW-2, bh, colors[i%len(colors)], html.EscapeString(s.Name), v, html.EscapeString(unit))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.3g</text>`+"\n", x+barW/2, float64(h-bottom)-bh-3, v)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x0+groupW*0.4, h-bottom+16, html.EscapeString(l))
	}
	for i, s := range ss {
		// Four to a row of the legend.
		x, y := left+205*(i%4), h-44+16*(i/4)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y, colors[i%len(colors)], x+14, y+9, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func load(path string, v any) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func main() {
	dir := "bench/results"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	var at struct {
		Results []struct {
			Setup string  `json:"setup"`
			Gbps  float64 `json:"tcp_gbit_per_s"`
			Ping  float64 `json:"ping_avg_ms"`
		} `json:"results"`
	}
	if load(filepath.Join(dir, "attach-types.json"), &at) {
		var labels []string
		var g []float64
		for _, r := range at.Results {
			labels = append(labels, strings.NewReplacer("ovsnet ", "", ", userspace TSO", " TSO", "Linux bridge + veth", "Linux bridge").Replace(r.Setup))
			g = append(g, r.Gbps)
		}
		check(bars(filepath.Join(dir, "attach-types.svg"), "TCP between two containers by attach type (userspace datapath)", "Gbit/s", labels, []series{{"TCP Gbit/s", g}}))
	}
	var al struct {
		Results []struct {
			Ports  int     `json:"ports_on_bridge"`
			Ovsnet float64 `json:"ovsnet_median_ms"`
			Veth   float64 `json:"ovsnet_veth_median_ms"`
			Via    float64 `json:"ovsnet_via_controller_median_ms"`
			ViaV   float64 `json:"ovsnet_veth_via_controller_median_ms"`
			Docker float64 `json:"ovs_docker_median_ms"`
			Bridge float64 `json:"linux_bridge_median_ms"`
			Ofctl  float64 `json:"ovs_ofctl_round_trip_median_ms"`
			Move   float64 `json:"kernel_netns_move_median_ms"`
		} `json:"results"`
	}
	if load(filepath.Join(dir, "attach-latency.json"), &al) {
		var labels []string
		ss := []series{{Name: "ovsnet (internal)"}, {Name: "ovsnet --type veth"}, {Name: "ovsnet via controller (internal)"}, {Name: "ovsnet via controller, veth"},
			{Name: "ovs-docker (veth)"}, {Name: "Linux bridge (ip)"}, {Name: "ovs-ofctl round trip"},
			// The 10x goal beside the kernel's move that every internal
			// port pays: where the move is taller, the goal is out of reach.
			{Name: "ovs-docker / 10 (the goal)"}, {Name: "kernel netns move alone"}}
		for _, r := range al.Results {
			labels = append(labels, fmt.Sprintf("%d ports on the bridge", r.Ports))
			for i, v := range []float64{r.Ovsnet, r.Veth, r.Via, r.ViaV, r.Docker, r.Bridge, r.Ofctl, r.Docker / 10, r.Move} {
				ss[i].Values = append(ss[i].Values, v)
			}
		}
		check(bars(filepath.Join(dir, "attach-latency.svg"), "Attach latency, median wall time", "ms", labels, ss))
	}
	var pl struct {
		Results []struct {
			Setup string  `json:"setup"`
			Type  string  `json:"type"`
			Ports int     `json:"ports_on_bridge"`
			Gbps  float64 `json:"tcp_gbit_per_s"`
			Ping  float64 `json:"ping_avg_ms"`
		} `json:"results"`
	}
	if load(filepath.Join(dir, "pipeline.json"), &pl) {
		names := []string{}
		idx := map[string]int{}
		var labels []string
		seen := map[string]bool{}
		for _, r := range pl.Results {
			if _, ok := idx[r.Setup]; !ok {
				idx[r.Setup] = len(names)
				names = append(names, r.Setup)
			}
			l := fmt.Sprintf("%s, %d ports", r.Type, r.Ports)
			if r.Type == "" {
				l = fmt.Sprintf("%d ports", r.Ports) // results from before types were measured
			}
			if !seen[l] {
				seen[l] = true
				labels = append(labels, l)
			}
		}
		g := make([]series, len(names))
		p := make([]series, len(names))
		for i, n := range names {
			short := strings.NewReplacer("ovsnet pipeline, ", "ovsnet, ", " (icc=false + link)", "", "plain OVS bridge, NORMAL + conntrack", "NORMAL + ct", "plain OVS bridge, NORMAL action", "NORMAL").Replace(n)
			g[i].Name, p[i].Name = short, short
		}
		for _, r := range pl.Results {
			g[idx[r.Setup]].Values = append(g[idx[r.Setup]].Values, r.Gbps)
			p[idx[r.Setup]].Values = append(p[idx[r.Setup]].Values, r.Ping)
		}
		check(bars(filepath.Join(dir, "pipeline-tcp.svg"), "TCP: ovsnet's pipeline vs NORMAL", "Gbit/s", labels, g))
		check(bars(filepath.Join(dir, "pipeline-ping.svg"), "Ping: ovsnet's pipeline vs NORMAL", "ms", labels, p))
	}
	var sc struct {
		Results struct {
			Sequential []struct {
				Ports int     `json:"ports_on_bridge"`
				Wall  float64 `json:"wall_ms"`
				CPU   float64 `json:"ovsnet_cpu_ms"`
				RTT   float64 `json:"ovs_ofctl_round_trip_ms"`
			} `json:"sequential"`
		} `json:"results"`
	}
	if load(filepath.Join(dir, "scale.json"), &sc) && len(sc.Results.Sequential) > 0 {
		// Sliding medians over 25 attaches keep the lines readable.
		seq := sc.Results.Sequential
		var xs []float64
		ss := []series{{Name: "add-port wall time"}, {Name: "ovsnet CPU time (user+sys)"}, {Name: "bare ovs-ofctl round trip"}}
		for i := range seq {
			lo, hi := max(0, i-12), min(len(seq), i+13)
			var ws, cs []float64
			for _, p := range seq[lo:hi] {
				ws, cs = append(ws, p.Wall), append(cs, p.CPU)
			}
			xs = append(xs, float64(seq[i].Ports))
			ss[0].Values = append(ss[0].Values, measure.Median(ws))
			ss[1].Values = append(ss[1].Values, measure.Median(cs))
			ss[2].Values = append(ss[2].Values, seq[i].RTT)
		}
		check(lines(filepath.Join(dir, "scale-sequential.svg"), "One add-port at a time (sliding median of 25)", "ports on the bridge", "ms", xs, ss))
	}
}

// lines writes a line chart of ys against xs, one line per series.
func lines(path, title, xunit, yunit string, xs []float64, ss []series) error {
	const w, h, left, bottom, top = 900, 380, 70, 80, 40
	maxX, maxY := 1.0, 1.0
	for _, x := range xs {
		maxX = max(maxX, x)
	}
	for _, s := range ss {
		for _, v := range s.Values {
			maxY = max(maxY, v)
		}
	}
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/><text x="%d" y="22" font-size="15">%s</text>`+"\n", w, h, left, html.EscapeString(title))
	pw, ph := float64(w-left-20), float64(h-bottom-top)
	px := func(x float64) float64 { return float64(left) + pw*x/maxX }
	py := func(y float64) float64 { return float64(h-bottom) - ph*y/maxY }
	for i := 0; i <= 4; i++ {
		y := maxY * float64(i) / 4
		x := maxX * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.3g</text>`+"\n",
			left, w-20, py(y), py(y), left-6, py(y)+4, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`+"\n", px(x), h-bottom+16, x)
	}
	fmt.Fprintf(&b, `<text x="14" y="%d" transform="rotate(-90 14 %d)">%s</text>`+"\n", h/2, h/2, html.EscapeString(yunit))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", left+int(pw/2), h-bottom+32, html.EscapeString(xunit))
	for i, s := range ss {
		var pts []string
		for j, v := range s.Values {
			if j < len(xs) && v > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(v)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", colors[i%len(colors)], strings.Join(pts, " "))
		x := left + 190*i
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, h-20, colors[i%len(colors)], x+14, h-11, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}
