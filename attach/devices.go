package attach

import (
	"net"
	"net/netip"
)

// Devices is what the attach engine does to links, in the host and in
// containers' namespaces: this package's functions on the running system
// (System), or a stand-in that keeps links in memory for unit tests
// (attachtest.Devices).
type Devices interface {
	NetnsExists(nsPath string) bool
	IsOwnNetns(nsPath string) bool
	HasLink(nsPath, name string) (bool, error)
	CreateVeth(host, nsPath string, c Config) error
	CreatePoolVeth(host, nsPath string, c Config) error
	DeleteLink(name string) error
	DeleteLinks(names []string) error
	MoveIn(name, nsPath string) error
	RenameIn(nsPath, cur, name string) error
	ReturnLink(r Return) (bool, error)
	Configure(nsPath, cur string, c Config) error
	SetVethTxOffload(host, nsPath, name string, on bool) error
	DeleteInternal(nsPath, name string, mac net.HardwareAddr) error
	EnsureDefaultRoutes(nsPath, dev string, gws []netip.Addr) error
	BridgeTSO(bridge string) bool
	ShapeHostEnd(name string, s Shaper) error
}

// System is Devices on the running system: the functions of this package.
type System struct{}

var _ Devices = System{}

func (System) NetnsExists(p string) bool                     { return NetnsExists(p) }
func (System) IsOwnNetns(p string) bool                      { return IsOwnNetns(p) }
func (System) HasLink(p, name string) (bool, error)          { return HasLink(p, name) }
func (System) CreateVeth(host, p string, c Config) error     { return CreateVeth(host, p, c) }
func (System) CreatePoolVeth(host, p string, c Config) error { return CreatePoolVeth(host, p, c) }
func (System) DeleteLink(name string) error                  { return DeleteLink(name) }
func (System) DeleteLinks(names []string) error              { return DeleteLinks(names) }
func (System) MoveIn(name, p string) error                   { return MoveIn(name, p) }
func (System) RenameIn(p, cur, name string) error            { return RenameIn(p, cur, name) }
func (System) ReturnLink(r Return) (bool, error)             { return ReturnLink(r) }
func (System) Configure(p, cur string, c Config) error       { return Configure(p, cur, c) }
func (System) BridgeTSO(bridge string) bool                  { return BridgeTSO(bridge) }
func (System) ShapeHostEnd(name string, s Shaper) error {
	_, err := ShapeHostEnd(name, s)
	return err
}
func (System) SetVethTxOffload(host, p, name string, on bool) error {
	return SetVethTxOffload(host, p, name, on)
}
func (System) DeleteInternal(p, name string, mac net.HardwareAddr) error {
	return DeleteInternal(p, name, mac)
}
func (System) EnsureDefaultRoutes(p, dev string, gws []netip.Addr) error {
	return EnsureDefaultRoutes(p, dev, gws)
}
