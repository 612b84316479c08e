package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
)

// floorDriver is the least a Docker remote network driver can do, served
// in this process: its own IPAM (the next address), a veth made in
// CreateEndpoint and handed over in Join, deleted in DeleteEndpoint; no
// switch, no rules. A start on its network is what any remote driver
// pays for Docker's remote protocol (an HTTP request per step, remote
// IPAM), the floor under ovsnet's driver, timed beside it.
type floorDriver struct {
	mu   sync.Mutex
	next netip.Addr
	sock string
	srv  *http.Server
}

// startFloor serves the driver as name on Docker's plugin directory.
func startFloor(name string) (*floorDriver, error) {
	f := &floorDriver{next: netip.MustParseAddr("10.93.0.2"), sock: filepath.Join("/run/docker/plugins", name+".sock")}
	os.Remove(f.sock)
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		return nil, err
	}
	f.srv = &http.Server{Handler: f.handler()}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *floorDriver) close() {
	f.srv.Close()
	os.Remove(f.sock)
}

type floorRequest struct {
	EndpointID string
}

func (f *floorDriver) handler() http.Handler {
	mux := http.NewServeMux()
	answer := func(path string, h func(floorRequest) (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			var req floorRequest
			json.NewDecoder(r.Body).Decode(&req)
			out, err := h(req)
			if err != nil {
				out = map[string]string{"Err": err.Error()}
			}
			w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
			json.NewEncoder(w).Encode(out)
		})
	}
	empty := func(floorRequest) (any, error) { return struct{}{}, nil }
	fixed := func(v any) func(floorRequest) (any, error) { return func(floorRequest) (any, error) { return v, nil } }
	answer("/Plugin.Activate", fixed(map[string][]string{"Implements": {"NetworkDriver", "IpamDriver"}}))
	answer("/IpamDriver.GetCapabilities", fixed(map[string]bool{}))
	answer("/IpamDriver.GetDefaultAddressSpaces", fixed(map[string]string{"LocalDefaultAddressSpace": "floor", "GlobalDefaultAddressSpace": "floor-global"}))
	answer("/IpamDriver.RequestPool", fixed(map[string]string{"PoolID": "floor", "Pool": "10.93.0.0/16"}))
	answer("/IpamDriver.RequestAddress", f.requestAddress)
	answer("/NetworkDriver.GetCapabilities", fixed(map[string]string{"Scope": "local", "ConnectivityScope": "local"}))
	answer("/NetworkDriver.CreateEndpoint", f.createEndpoint)
	answer("/NetworkDriver.DeleteEndpoint", f.deleteEndpoint)
	answer("/NetworkDriver.Join", func(req floorRequest) (any, error) {
		// A gateway, or Docker joins the container to docker_gwbridge too.
		return map[string]any{"InterfaceName": map[string]string{"SrcName": floorLink(req.EndpointID, "c"), "DstPrefix": "eth"},
			"Gateway": "10.93.0.1"}, nil
	})
	answer("/NetworkDriver.EndpointOperInfo", fixed(map[string]any{"Value": map[string]string{}}))
	for _, p := range []string{"/IpamDriver.ReleasePool", "/IpamDriver.ReleaseAddress", "/NetworkDriver.CreateNetwork", "/NetworkDriver.DeleteNetwork",
		"/NetworkDriver.Leave", "/NetworkDriver.ProgramExternalConnectivity", "/NetworkDriver.RevokeExternalConnectivity",
		"/NetworkDriver.DiscoverNew", "/NetworkDriver.DiscoverDelete"} {
		answer(p, empty)
	}
	return mux
}

func (f *floorDriver) requestAddress(floorRequest) (any, error) {
	f.mu.Lock()
	a := f.next
	f.next = a.Next()
	f.mu.Unlock()
	return map[string]string{"Address": netip.PrefixFrom(a, 16).String()}, nil
}

// floorLink is an endpoint's veth end: h in this namespace, c for the
// container.
func floorLink(endpoint, end string) string { return "flr" + end + endpoint[:11] }

func (f *floorDriver) createEndpoint(req floorRequest) (any, error) {
	if len(req.EndpointID) < 11 {
		return nil, fmt.Errorf("endpoint ID %q", req.EndpointID)
	}
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: floorLink(req.EndpointID, "h")}, PeerName: floorLink(req.EndpointID, "c")}
	if err := netlink.LinkAdd(v); err != nil {
		return nil, err
	}
	return struct{}{}, netlink.LinkSetUp(v)
}

func (f *floorDriver) deleteEndpoint(req floorRequest) (any, error) {
	if l, err := netlink.LinkByName(floorLink(req.EndpointID, "h")); err == nil {
		netlink.LinkDel(l)
	}
	return struct{}{}, nil
}
