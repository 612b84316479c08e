package service

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/docker"
)

// DockerPluginDir is where Docker discovers plugins' sockets.
const DockerPluginDir = "/run/docker/plugins"

// serveDocker serves the Docker network plugin on DockerPluginDir/NAME.sock
// until the listener is closed (which removes the socket).
func (s *Service) serveDocker() (net.Listener, error) {
	if err := os.MkdirAll(DockerPluginDir, 0o755); err != nil {
		return nil, err
	}
	ln, err := listenPrivate(filepath.Join(DockerPluginDir, s.o.DockerPlugin+".sock"), "Docker plugin socket")
	if err != nil {
		return nil, err
	}
	netns := s.o.DockerNetns
	if netns == "" {
		netns = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	if !attach.IsOwnNetns(netns) {
		s.h.Pool.RuntimeNetns = netns // the pool's veths wait there for Docker's take
	}
	p := &docker.Plugin{Host: s.h, Netns: netns, Lock: s.sharedLock, Log: s.o.Log,
		Joined:  func(endpoint string) { s.requests.hold(endpoint, startWait) },
		Deleted: func(endpoint string) { s.requests.release(holdRemoved, endpoint) }}
	srv := newSocketServer(p.Handler(), s.o.Log)
	srv.ConnContext = docker.PeerContext // dockerd's pid: its view of a sandbox's namespace file
	go srv.Serve(ln)
	return ln, nil
}
