package network

import "github.com/ovsnet/ovsnet/controller/steptime"

// Tell is the host's Teller of its Progress.
func (h *Host) Tell() steptime.Teller { return steptime.Tell(h.Progress) }
