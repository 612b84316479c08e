package service

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

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
	path := filepath.Join(DockerPluginDir, s.o.DockerPlugin+".sock")
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("Docker plugin socket %s: %w", path, err)
	}
	// dockerd runs as root: nobody else needs it.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	netns := s.o.DockerNetns
	if netns == "" {
		netns = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	p := &docker.Plugin{Host: s.h, Netns: netns, Lock: s.sharedLock}
	go (&http.Server{Handler: p.Handler()}).Serve(ln)
	return ln, nil
}
