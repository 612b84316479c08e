package intent

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Service is an OVN load balancer ovsnet made (`ovsnet service`): its
// address, spread over containers of one network by name. Its
// Load_Balancer row's vips are derived from it and the backends' ports.
type Service struct {
	Name     string
	Network  string
	VIP      netip.AddrPort
	Proto    string // "tcp" or "udp"
	Backends []Backend
}

// Backend is one container of a service, and the port it serves on.
type Backend struct {
	Container string
	Port      uint16
}

func (b Backend) String() string { return b.Container + ":" + strconv.Itoa(int(b.Port)) }

const (
	// KeyService marks a Load_Balancer as service NAME's (with
	// KeyOVNNetwork, its network).
	KeyService = "ovsnet-service"
	// KeyServiceVIP is its address: "A:PORT/tcp" or "/udp".
	KeyServiceVIP = "ovsnet-service-vip"
	// KeyBackends is its backends: "CONTAINER:PORT,..." ("": none yet).
	KeyBackends = "ovsnet-backends"
)

// Encode is the service's keys.
func (s Service) Encode() map[string]string {
	m := Ownership("")
	m[KeyService], m[KeyOVNNetwork] = s.Name, s.Network
	m[KeyServiceVIP] = s.VIP.String() + "/" + s.Proto
	var bs []string
	for _, b := range s.Backends {
		bs = append(bs, b.String())
	}
	m[KeyBackends] = strings.Join(bs, ",")
	return m
}

// ParseVIP reads "A:PORT[/tcp|udp]" (IPv4; tcp unless given).
func ParseVIP(v string) (netip.AddrPort, string, error) {
	ap, proto, _ := strings.Cut(v, "/")
	if proto == "" {
		proto = "tcp"
	}
	a, err := netip.ParseAddrPort(ap)
	if err != nil || !a.Addr().Is4() || a.Port() == 0 || (proto != "tcp" && proto != "udp") {
		return netip.AddrPort{}, "", fmt.Errorf("service address %q: want IPV4:PORT, /tcp (the default) or /udp", v)
	}
	return a, proto, nil
}

// ParseBackend reads "CONTAINER:PORT".
func ParseBackend(v string) (Backend, error) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return Backend{}, fmt.Errorf("backend %q: want CONTAINER:PORT", v)
	}
	p, err := strconv.ParseUint(v[i+1:], 10, 16)
	if err != nil || p == 0 {
		return Backend{}, fmt.Errorf("backend %q: want CONTAINER:PORT, the port in 1..65535", v)
	}
	return Backend{Container: v[:i], Port: uint16(p)}, nil
}

// DecodeService reads a Load_Balancer's keys; ok is false for one that is
// no ovsnet service. Keys that do not decode are an error, and the
// service has no backends: its address answers nothing until they are
// set again (ovsnet service add-backend).
func DecodeService(row string, ext map[string]string) (s Service, ok bool, err error) {
	name, ok := ext[KeyService]
	if !ok || !Owned(ext) {
		return s, false, nil
	}
	s.Name, s.Network = name, ext[KeyOVNNetwork]
	bad := func(key, want string) error {
		return &Error{Row: row, Key: key, Value: ext[key], Want: want, Then: "its address answers nothing until then (ovsnet service add-backend, or rm and create)"}
	}
	if s.VIP, s.Proto, err = ParseVIP(ext[KeyServiceVIP]); err != nil {
		return s, true, bad(KeyServiceVIP, "IPV4:PORT/tcp or /udp")
	}
	if v := ext[KeyBackends]; v != "" {
		for _, f := range strings.Split(v, ",") {
			b, err := ParseBackend(f)
			if err != nil {
				s.Backends = nil
				return s, true, bad(KeyBackends, "CONTAINER:PORT,...")
			}
			s.Backends = append(s.Backends, b)
		}
	}
	return s, true, nil
}
