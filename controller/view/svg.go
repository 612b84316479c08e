package view

import (
	"fmt"
	"html"
	"strings"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/show"
)

// Layout of the SVG picture, in pixels: drawn at its own size (the page
// scrolls rather than shrinks it), 13 px text, three cards a row so that
// a bridge fits a 1,000 px column.
const (
	cols     = 3   // container cards per row
	cardW    = 280 // a container card
	lineH    = 17  // a line of text
	gap      = 14  // between cards side by side
	rowGap   = 34  // between rows of cards: links run there
	bow      = 22  // how far below its cards a link bows
	pad      = 16  // inside a bridge's panel
	tunnelW  = 280 // the tunnel column
	maxChars = 38  // characters on a card's line
)

// SVG is the network laid out as a picture: a panel per bridge (its
// addresses and settings on top), container cards in rows grouped by
// VLAN, tunnels in a column on the right, links as blue arrows between
// cards. Broken containers and tunnels are red. Elements carry ids
// (bridge-, port-, tunnel-, link-) and data attributes that the
// controller's page uses to show a trace on the picture.
func SVG(bs []show.BridgeView) string {
	var body strings.Builder
	y, width := pad, 2*pad+cols*(cardW+gap)+gap
	for _, br := range bs {
		p := panelOf(br, pad, y)
		p.draw(&body)
		y += p.h + pad
		width = max(width, p.w+2*pad)
	}
	if len(bs) == 0 {
		fmt.Fprintf(&body, `<text x="%d" y="%d" class="note">no bridges</text>`+"\n", pad, pad+lineH)
		y += 2 * lineH
	} else {
		y = legend(&body, pad, y)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="13">`+"\n", width, y, width, y)
	b.WriteString(svgDefs)
	b.WriteString("<style>\n" + Style + "</style>\n")
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}

const svgDefs = `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f5fbf"/></marker></defs>
`

// Style is the picture's CSS: inside SVG's output, and served to the
// controller's page, whose policy allows no inline style.
const Style = `.panel{fill:#fbfcfe;stroke:#8aa4c8;stroke-width:1.5}
.title{font-size:16px;font-weight:bold}
.card{fill:#ffffff;stroke:#9aa9bd}
.broken .card{fill:#fde8e8;stroke:#c00000;stroke-width:2}
.broken text{fill:#800000}
.group{fill:#5a6b80;font-weight:bold}
.tunnel{fill:#eef7ee;stroke:#6a9f6a}
.tunnel.broken{fill:#fde8e8;stroke:#c00000}
.link{stroke:#1f5fbf;stroke-width:1.5;fill:none;marker-end:url(#arrow)}
.link.dangling{stroke:#c00000;stroke-dasharray:4 3}
.linklabel{fill:#1f5fbf;font-size:12px}
.note{fill:#5a6b80;font-size:12px}
.legend{fill:#5a6b80;font-size:12px}
.name{font-weight:bold}
`

// card is a drawn container (or a VLAN's count), where it is.
type card struct {
	x, y, h int
	port    *network.PortView
	lines   []string
	title   string
	broken  bool
}

// panel is one bridge laid out at x, y: w by h.
type panel struct {
	br         show.BridgeView
	x, y, w, h int
	header     []string
	labels     [][3]any // group titles: x, y, text
	cards      []card
	at         map[string]*card // by container, runtime name and address
	notes      []string         // links that have no card at an end
}

// panelOf lays out bridge br with its top left corner at x, y.
func panelOf(br show.BridgeView, x, y int) *panel {
	p := &panel{br: br, x: x, y: y, header: bridgeLines(br), at: map[string]*card{}}
	cy := y + pad + 18 + len(p.header)*lineH + gap
	for _, g := range groups(br) {
		p.labels = append(p.labels, [3]any{x + pad, cy + 10, fmt.Sprintf("%s (%d)", groupTitle(g.VLAN), len(g.Ports))})
		cy += lineH + 4
		cs := groupCards(g, summarised(br))
		for i := range cs {
			c := &cs[i]
			c.x, c.y = x+pad+(i%cols)*(cardW+gap), cy+(i/cols)*(c.h+rowGap)
		}
		if len(cs) > 0 {
			cy += ((len(cs)+cols-1)/cols)*(cs[0].h+rowGap) + 4
		}
		p.cards = append(p.cards, cs...)
	}
	for i := range p.cards {
		if c := &p.cards[i]; c.port != nil {
			for _, k := range endKeys(*c.port) {
				p.at[k] = c
			}
		}
	}
	for _, l := range br.Links {
		if p.at[l.Src] == nil || p.at[l.Dst] == nil || summarised(br) {
			p.notes = append(p.notes, fmt.Sprintf("link %s -> %s (%s)%s", l.Src, l.Dst, l.Ports, danglingNote(l)))
		}
	}
	p.w = 2*pad + cols*(cardW+gap)
	if len(br.Tunnels) > 0 {
		p.w += tunnelW + gap
		cy = max(cy, y+pad+18+len(p.header)*lineH+gap+len(br.Tunnels)*(3*lineH+gap))
	}
	p.h = cy - y + len(p.notes)*lineH + pad
	return p
}

// groupCards are the cards of one VLAN group: a card per container, or
// one with the counts.
func groupCards(g group, counts bool) []card {
	if counts {
		lines := []string{fmt.Sprintf("%d broken", countBroken(g.Ports))}
		return []card{{h: 2*lineH + 12, title: fmt.Sprintf("%d containers", len(g.Ports)), lines: lines, broken: countBroken(g.Ports) > 0}}
	}
	var cs []card
	for i := range g.Ports {
		pt := &g.Ports[i]
		ls := portLines(*pt)
		cs = append(cs, card{port: pt, title: portTitle(*pt), lines: ls, broken: Broken(*pt), h: (1+len(ls))*lineH + 12})
	}
	h := 0
	for _, c := range cs {
		h = max(h, c.h)
	}
	for i := range cs {
		cs[i].h = h
	}
	return cs
}

func danglingNote(l show.LinkView) string {
	if len(l.Dangling) == 0 {
		return ""
	}
	return ", dangling: " + strings.Join(l.Dangling, ", ") + " not attached"
}

// draw writes the panel.
func (p *panel) draw(b *strings.Builder) {
	cls := "bridge"
	if len(p.br.Errors) > 0 {
		cls += " broken"
	}
	fmt.Fprintf(b, `<g id="bridge-%s" class="%s">`+"\n", esc(p.br.Name), cls)
	fmt.Fprintf(b, `<rect class="panel" x="%d" y="%d" width="%d" height="%d" rx="8"/>`+"\n", p.x, p.y, p.w, p.h)
	fmt.Fprintf(b, `<text class="title" x="%d" y="%d">%s</text>`+"\n", p.x+pad, p.y+pad+12, esc(Title(p.br)))
	for i, l := range p.header {
		fmt.Fprintf(b, `<text class="note" x="%d" y="%d">%s</text>`+"\n", p.x+pad, p.y+pad+18+(i+1)*lineH, esc(l))
	}
	for _, l := range p.labels {
		fmt.Fprintf(b, `<text class="group" x="%d" y="%d">%s</text>`+"\n", l[0], l[1], esc(l[2].(string)))
	}
	for i := range p.cards {
		p.cards[i].draw(b)
	}
	p.drawTunnels(b)
	p.drawLinks(b)
	for i, n := range p.notes {
		fmt.Fprintf(b, `<text class="note" x="%d" y="%d">%s</text>`+"\n", p.x+pad, p.y+p.h-pad-(len(p.notes)-1-i)*lineH, esc(n))
	}
	b.WriteString("</g>\n")
}

// draw writes a card.
func (c *card) draw(b *strings.Builder) {
	cls, id, data := "port", "", ""
	if c.broken {
		cls += " broken"
	}
	if c.port != nil {
		var addrs []string
		for _, a := range c.port.Addresses {
			k, _, _ := strings.Cut(a, "/")
			addrs = append(addrs, k)
		}
		id = fmt.Sprintf(` id="port-%s"`, esc(c.port.OVSPort))
		data = fmt.Sprintf(` data-container="%s" data-name="%s" data-addrs="%s" data-ovsport="%s"`,
			esc(c.port.Container), esc(c.port.Name), esc(strings.Join(addrs, " ")), esc(c.port.OVSPort))
	}
	fmt.Fprintf(b, `<g%s class="%s"%s>`+"\n", id, cls, data)
	fmt.Fprintf(b, `<rect class="card" x="%d" y="%d" width="%d" height="%d" rx="5"/>`+"\n", c.x, c.y, cardW, c.h)
	fmt.Fprintf(b, `<text class="name" x="%d" y="%d">%s</text>`+"\n", c.x+8, c.y+lineH+2, esc(clip(c.title)))
	for i, l := range c.lines {
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", c.x+8, c.y+(i+2)*lineH+2, esc(clip(l)))
	}
	b.WriteString("</g>\n")
}

// drawTunnels writes the tunnel column.
func (p *panel) drawTunnels(b *strings.Builder) {
	x := p.x + 2*pad + cols*(cardW+gap) - pad
	y := p.y + pad + 18 + len(p.header)*lineH + gap
	for i, t := range p.br.Tunnels {
		cls := "tunnel"
		if t.State != "up" {
			cls += " broken"
		}
		ty := y + i*(3*lineH+gap)
		fmt.Fprintf(b, `<g id="tunnel-%s-%s"><rect class="%s" x="%d" y="%d" width="%d" height="%d" rx="12"/>`+"\n",
			esc(p.br.Name), esc(t.Remote), cls, x, ty, tunnelW, 3*lineH)
		fmt.Fprintf(b, `<text class="name" x="%d" y="%d">tunnel to %s</text>`+"\n", x+10, ty+lineH, esc(t.Remote))
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text></g>`+"\n", x+10, ty+2*lineH+2, esc(clip(tunnelLine(t))))
	}
}

// drawLinks writes the links whose ends both have cards.
func (p *panel) drawLinks(b *strings.Builder) {
	if summarised(p.br) {
		return
	}
	for _, l := range p.br.Links {
		s, d := p.at[l.Src], p.at[l.Dst]
		if s == nil || d == nil || s == d {
			continue
		}
		// From the bottom edge of one card to the bottom edge of the other,
		// bowing below them into the gap between rows: no text is crossed.
		x1, y1 := s.x+cardW/2-20, s.y+s.h
		x2, y2 := d.x+cardW/2+20, d.y+d.h
		mx, my := (x1+x2)/2, max(y1, y2)+2*bow
		cls := "link"
		if len(l.Dangling) > 0 {
			cls += " dangling"
		}
		fmt.Fprintf(b, `<g id="link-%s-%s"><path class="%s" d="M%d,%d Q%d,%d %d,%d"/>`, esc(l.Src), esc(l.Dst), cls, x1, y1, mx, my, x2, y2)
		// The label just above the bow's lowest point.
		fmt.Fprintf(b, `<text class="linklabel" text-anchor="middle" x="%d" y="%d">%s</text></g>`+"\n", mx, (y1+2*my+y2)/4-3, esc(l.Ports))
	}
}

// legend explains the picture's marks, below the panels at x, y; it
// returns the picture's new height.
func legend(b *strings.Builder, x, y int) int {
	ly := y + lineH
	items := []struct{ mark, text string }{
		{fmt.Sprintf(`<path class="link" d="M%d,%d h28"/>`, x, ly-4), "link: connections allowed from its start to its arrow (icc=false)"},
		{fmt.Sprintf(`<path class="link dangling" d="M%d,%d h28"/>`, x, ly+lineH-4), "dangling link: an end is not attached"},
		{fmt.Sprintf(`<g class="broken"><rect class="card" x="%d" y="%d" width="28" height="12" rx="3"/></g>`, x, ly+2*lineH-11), "broken: a port not up, or intent that does not decode"},
	}
	for i, it := range items {
		b.WriteString(it.mark)
		fmt.Fprintf(b, `<text class="legend" x="%d" y="%d">%s</text>`+"\n", x+36, ly+i*lineH, esc(it.text))
	}
	return y + (len(items)+1)*lineH
}

func clip(s string) string {
	if r := []rune(s); len(r) > maxChars {
		return string(r[:maxChars-1]) + "…"
	}
	return s
}

func esc(s string) string { return html.EscapeString(s) }
