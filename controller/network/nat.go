package network

import (
	"github.com/ovsnet/ovsnet/controller/hostnat"
	"github.com/ovsnet/ovsnet/nat"
)

// NAT is the host's NAT (package hostnat) on its OVSDB and firewall
// (Host.Firewall, or the system's, opened once on first use).
func (h *Host) NAT() *hostnat.NAT {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Firewall == nil {
		h.Firewall = &nat.System{}
	}
	return &hostnat.NAT{DB: h.DB, Firewall: h.Firewall}
}
