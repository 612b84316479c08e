package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ovsnet/ovsnet/controller/steptime"
)

// minBar is the fewest items a phase has for a bar to be drawn: shorter
// work would only flicker.
const minBar = 50

// bars is steptime.Progress on a terminal: a bar per phase on stderr with
// the count, the rate and the time left.
type bars struct {
	mu  sync.Mutex
	cur *progressbar.ProgressBar
}

// progress is the listener for long work: bars when stdout and stderr
// are terminals and the output is text; else nothing at all.
func (g *globals) progress() steptime.Progress {
	if g.output != "text" || !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	g.bars = &bars{}
	return g.bars
}

// Phase ends the bar of the phase before and starts one for this.
func (b *bars) Phase(what string, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finish()
	if total < minBar {
		return
	}
	b.cur = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("ports"),
		progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetWidth(30))
}

// Add moves the bar on.
func (b *bars) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.Add(n)
	}
}

// Finish ends the bar being drawn, if any.
func (b *bars) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finish()
}

func (b *bars) finish() {
	if b.cur != nil {
		b.cur.Finish()
		fmt.Fprintln(os.Stderr)
		b.cur = nil
	}
}
