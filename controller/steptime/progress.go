package steptime

// Progress hears how far long work has got: Phase starts a step over
// total items, Add counts items done (from any goroutine). A nil
// Progress tells nobody; the CLI draws bars with it on a terminal.
type Progress interface {
	Phase(what string, total int)
	Add(n int)
}

// Teller tells a Progress, if there is one.
type Teller struct{ p Progress }

// Tell is a Teller of p (nil: tells nobody).
func Tell(p Progress) Teller { return Teller{p} }

// Phase starts a step of total items.
func (t Teller) Phase(what string, total int) {
	if t.p != nil {
		t.p.Phase(what, total)
	}
}

// Add counts n items done.
func (t Teller) Add(n int) {
	if t.p != nil {
		t.p.Add(n)
	}
}
