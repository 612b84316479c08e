package view

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/show"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func fixture(t *testing.T) []show.BridgeView {
	t.Helper()
	data, err := os.ReadFile("testdata/topology.json")
	if err != nil {
		t.Fatal(err)
	}
	var bs []show.BridgeView
	if err := json.Unmarshal(data, &bs); err != nil {
		t.Fatal(err)
	}
	return bs
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./controller/view -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from what is drawn now (go test ./controller/view -update, then look at the diff):\n%s", path, got)
	}
}

// The DOT of a fixed topology: containers grouped by VLAN, a broken port
// and a down one in red, links (one to a remote address, one dangling),
// tunnels with their state.
func TestDOTGolden(t *testing.T) {
	got := DOT(fixture(t))
	golden(t, "testdata/topology.dot", got)
	for _, want := range []string{
		`"cluster_br0_vlan10"`, `"port:on3333"`, // cache, in VLAN 10
		`"port:on1111" -> "port:on2222" [label="5432/tcp"`, // web -> db
		`"end:br0:10.97.2.2"`,                              // the remote end of a link
		`fillcolor="#f8d0d0", color="#c00000"`,             // broken ports
		`tunnel\nvxlan (kernel) to 192.0.2.2, key 5, up`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("DOT lacks %s", want)
		}
	}
	if n := strings.Count(got, `color="#c00000", fontcolor="#800000"`); n != 2 {
		t.Errorf("%d ports drawn broken, want 2 (the one whose intent does not decode, the one down)", n)
	}
}

// The SVG of the same topology is well-formed XML with a card per
// container, the broken ones marked, and the link between two cards drawn.
func TestSVGGolden(t *testing.T) {
	got := SVG(fixture(t))
	golden(t, "testdata/topology.svg", got)
	wellFormed(t, got)
	for _, p := range []string{"on1111", "on2222", "on3333", "on4444", "on5555"} {
		if !strings.Contains(got, fmt.Sprintf(`id="port-%s"`, p)) {
			t.Errorf("SVG has no card for port %s", p)
		}
	}
	if n := strings.Count(got, `class="port broken"`); n != 2 {
		t.Errorf("%d cards broken, want 2", n)
	}
	if !strings.Contains(got, `id="link-web-db"`) || !strings.Contains(got, "link 10.97.2.2 -&gt; web (all)") {
		t.Error("SVG lacks the web -> db arrow or the note for the remote link")
	}
	// The arrow leaves web's card at its bottom edge and bows below it,
	// crossing no card's text.
	card := regexp.MustCompile(`id="port-on1111"[^\n]*\n<rect class="card" x="\d+" y="(\d+)" width="\d+" height="(\d+)"`).FindStringSubmatch(got)
	link := regexp.MustCompile(`id="link-web-db"><path class="link" d="M\d+,(\d+) Q\d+,(\d+) `).FindStringSubmatch(got)
	if card == nil || link == nil {
		t.Fatal("no web card or web -> db arrow to measure")
	}
	y, h, start, ctl := atoi(t, card[1]), atoi(t, card[2]), atoi(t, link[1]), atoi(t, link[2])
	if start != y+h || ctl <= start {
		t.Errorf("the arrow starts at y %d (the card spans %d..%d) with its bow at %d: it crosses the card", start, y, y+h, ctl)
	}
	for _, want := range []string{"link: connections allowed", "dangling link: an end is not attached", "broken: a port not up"} {
		if !strings.Contains(got, want) {
			t.Errorf("the legend lacks %q", want)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Past MaxDrawn containers a bridge is drawn as counts per VLAN.
func TestSummarisesLargeBridges(t *testing.T) {
	br := show.BridgeView{Name: "big", Datapath: "netdev", ICC: true}
	for i := 0; i < 1000; i++ {
		p := network.PortView{Container: fmt.Sprintf("c%d", i), Iface: "eth1", OVSPort: fmt.Sprintf("on%d", i), State: "up", VLAN: i % 2 * 20}
		if i == 7 {
			p.State = "missing"
		}
		br.Ports = append(br.Ports, p)
	}
	br.Links = []show.LinkView{{}}
	dot, svg := DOT([]show.BridgeView{br}), SVG([]show.BridgeView{br})
	wellFormed(t, svg)
	if strings.Contains(dot, `"port:`) || strings.Contains(svg, `id="port-`) {
		t.Fatal("1,000 containers drawn one by one")
	}
	for _, want := range []string{"500 containers", "1 broken"} {
		if !strings.Contains(dot, want) || !strings.Contains(svg, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if len(svg) > 20000 {
		t.Errorf("summary SVG is %d bytes", len(svg))
	}
}

func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
}

// A bridge's warm pool is counted in its heading, not drawn as containers.
func TestPoolCounted(t *testing.T) {
	br := show.BridgeView{Name: "br0", Datapath: "netdev", ICC: true, Ovsnet: true,
		Pool: []network.PortView{{OVSPort: "on1"}, {OVSPort: "on2"}}}
	if ls := bridgeLines(br); !strings.Contains(strings.Join(ls, "\n"), "netdev, warm pool 2") {
		t.Fatalf("heading: %q", ls)
	}
	if svg := SVG([]show.BridgeView{br}); strings.Contains(svg, "on1") || !strings.Contains(svg, "warm pool 2") {
		t.Fatalf("the picture draws the pool's ports, or does not count them:\n%s", svg)
	}
}

// The lab tools show in the picture: a bridge's standing mirrors and
// default rate limit in its heading, a container's cap and impairment on
// its card.
func TestLabToolsDrawn(t *testing.T) {
	br := show.BridgeView{Name: "br0", Datapath: "netdev", ICC: true, Ovsnet: true, RateLimit: "out 30mbit",
		Mirrors: []intent.Mirror{{To: "ids", From: []string{"web", "db"}}, {To: "tap", All: true}},
		Ports: []network.PortView{{Container: "web", Iface: "eth1", OVSPort: "on1", State: "ready", Type: "veth",
			RateLimit: "in 20mbit, out 20mbit", Impaired: "delay 50ms, loss 1%"}}}
	routed := show.BridgeView{Name: "web", Datapath: show.DatapathOVN, Ovsnet: true, ICC: true, Router: "r1", Ports: []network.PortView{}}
	svg := SVG([]show.BridgeView{br, routed})
	for _, want := range []string{"router r1", "default rate out 30mbit", "mirror: web, db to ids", "mirror: every port to tap", "rate in 20mbit, out 20mbit", "impaired: delay 50ms, loss 1%"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the picture lacks %q:\n%s", want, svg)
		}
	}
}
