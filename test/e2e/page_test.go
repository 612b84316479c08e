package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/containernetworking/plugins/pkg/ns"
)

// The controller's page in a real browser: the picture has every
// container, a port's counters move after a ping, a trace of an unlinked
// pair under icc=false says dropped and of a linked pair allowed (both
// marked on the picture), bad trace input gets a clear error. The page
// answers GET and the trace's POST only and sets no cookie. Screenshots go
// to the test's artifact directory (and to $OVSNET_SCREENSHOTS if set).
func TestPageInBrowser(t *testing.T) {
	notInVM(t, "a headless browser under emulation takes minutes")
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; deploy/deps.sh does): the page is not tested in a browser")
	}
	e := newEnv(t)
	e.must("add-br", "br0", "--subnet", "10.60.0.0/24", "--icc=false")
	web, db, other := e.container(), e.container(), e.container()
	for _, c := range []string{web, db, other} {
		e.must("add-port", "br0", "eth1", c, "--ip")
	}
	e.must("link", "br0", web, db)
	e.startController("127.0.0.1:19491")
	addr := forward(t, e.sb.Netns, "127.0.0.1:19491")
	eventually(t, 15*time.Second, "the controller's page", func() bool { return httpCode(t, e, "GET", "/", "") == "200" })
	pageAnswersOnlyReads(t, e)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1600, 1100))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	browse(t, ctx, chromedp.Navigate("http://"+addr+"/"))
	browse(t, ctx, chromedp.WaitVisible(chromedp.CSS("#topology svg")))
	for _, c := range []string{web, db, other} {
		if n := eval[int](t, ctx, `document.querySelectorAll('#topology g.port[data-container="`+c+`"]').length`); n != 1 {
			t.Fatalf("the picture has %d cards for container %s, want 1", n, c)
		}
	}
	// Drawn at its own size (the column scrolls, it does not shrink the
	// picture): a card's name is 13 px text, and the legend is there.
	if h := eval[float64](t, ctx, `document.querySelector('#topology g.port text.name').getBoundingClientRect().height`); h < 12 {
		t.Fatalf("a card's name is drawn %.1f px high: unreadable", h)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#topology text.legend').length`); n != 3 {
		t.Fatalf("the picture has %d legend lines, want 3", n)
	}
	countersMove(t, ctx, web, db)
	traceOnPage(t, ctx, other, web, "verdict: dropped")
	screenshot(t, ctx, "page-trace-dropped.png")
	traceOnPage(t, ctx, web, db, "verdict: allowed")
	if marked := eval[int](t, ctx, `document.querySelectorAll('.hl-allowed, .trace-path.allowed').length`); marked != 2 {
		t.Fatalf("an allowed trace marked %d things on the picture, want the destination and the path", marked)
	}
	screenshot(t, ctx, "page.png")
	traceOnPage(t, ctx, "nosuch", web, "nosuch")
	if !eval[bool](t, ctx, `!document.getElementById("trace-error").hidden`) {
		t.Fatal("a trace from a container that does not exist shows no error")
	}
	if svg := e.must("show", "-o", "svg"); !strings.Contains(svg, `data-container="`+web+`"`) {
		t.Fatalf("show -o svg lacks %s", web)
	} else {
		keep(t, "show.svg", []byte(svg))
	}
}

// countersMove pings from src to dst and waits for src's received packets
// to move on the page.
func countersMove(t *testing.T, ctx context.Context, src, dst string) {
	t.Helper()
	port := eval[string](t, ctx, `document.querySelector('#topology g.port[data-container="`+src+`"]').dataset.ovsport`)
	sel := "#counters-" + port + " td.rx-packets"
	browse(t, ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
	before := text(t, ctx, sel)
	ping(t, src, eval[string](t, ctx, `document.querySelector('#topology g.port[data-container="`+dst+`"]').dataset.addrs`))
	eventually(t, 15*time.Second, "the page's rx packets of "+src+" to move after a ping", func() bool {
		now := text(t, ctx, sel)
		return now != before && now != "–"
	})
}

// traceOnPage fills in the trace form and waits for want in the verdict
// or the error.
func traceOnPage(t *testing.T, ctx context.Context, from, to, want string) {
	t.Helper()
	browse(t, ctx,
		chromedp.SetValue(chromedp.CSS("#trace-from"), from),
		chromedp.SetValue(chromedp.CSS("#trace-to"), to),
		chromedp.Click(chromedp.CSS("#trace-go")))
	eventually(t, 15*time.Second, "trace "+from+" -> "+to+" to say "+want, func() bool {
		return strings.Contains(eval[string](t, ctx, `document.getElementById("trace-verdict").textContent + document.getElementById("trace-error").textContent`), want)
	})
}

// pageAnswersOnlyReads checks the page's methods, cookies and bad input.
func pageAnswersOnlyReads(t *testing.T, e *env) {
	t.Helper()
	for _, c := range []struct{ method, path, want string }{
		{"POST", "/", "405"}, {"PUT", "/api/trace", "405"}, {"DELETE", "/api/topology", "405"}, {"GET", "/api/trace", "405"},
		{"GET", "/api/topology", "200"}, {"GET", "/topology.svg", "200"},
	} {
		if got := httpCode(t, e, c.method, c.path, ""); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.method, c.path, got, c.want)
		}
	}
	if got := httpCode(t, e, "POST", "/api/trace", `{"bridge":"br0","from":"nosuch","to":"x"}`); got != "400" {
		t.Errorf("a trace from nowhere: %s, want 400", got)
	}
	if help := e.must("controller", "--help"); !strings.Contains(help, `"127.0.0.1:9476"`) {
		t.Errorf("the controller's default --listen is not loopback only:\n%s", help)
	}
	out := run(t, "ip", "netns", "exec", e.sb.Netns, "curl", "-s", "-i", "http://127.0.0.1:19491/api/topology")
	if strings.Contains(strings.ToLower(out), "set-cookie") {
		t.Error("the page sets a cookie")
	}
}

func httpCode(t *testing.T, e *env, method, path, body string) string {
	args := []string{"netns", "exec", e.sb.Netns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "-d", body)
	}
	out, _ := exec.Command("ip", append(args, "http://127.0.0.1:19491"+path)...).Output()
	return string(out)
}

// browse runs steps in the browser, each within 30 s.
func browse(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for _, s := range steps {
		if _, err := run1(ctx, s); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
}

// eval is the value of a JavaScript expression on the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := run1(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// text is the text of the element sel selects ("" while there is none),
// read in one evaluation in the page: the page redraws its tables as
// counters come in, and a node looked up first and read after may be gone.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, `(document.querySelector(`+strconv.Quote(sel)+`) || {innerText: ""}).innerText`)
}

// run1 runs one action within 30 s (the browser's first run has no limit:
// a limit on it would stop the browser).
func run1[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	if chromedp.FromContext(ctx).Browser != nil {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return chromedp.Run(c, a)
	}
	return chromedp.Run(ctx, a)
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := run1(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	keep(t, name, png)
}

// keep writes a file for a person to look at: in the test's artifact
// directory, and in $OVSNET_SCREENSHOTS if set (make screenshots).
func keep(t *testing.T, name string, data []byte) {
	t.Helper()
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("OVSNET_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(d, name))
	}
}

// forward listens on 127.0.0.1 of the test's own namespace and carries
// each connection to addr in netns: a browser here reaches a page there.
func forward(t *testing.T, netns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	target, err := ns.GetNS(nsPath(netns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var up net.Conn
			target.Do(func(ns.NetNS) (err error) { up, err = net.Dial("tcp", addr); return err })
			if up == nil {
				c.Close()
				continue
			}
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return ln.Addr().String()
}
