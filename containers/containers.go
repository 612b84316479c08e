// Package containers finds a container's network namespace, as a user or
// a runtime names it: a Docker or Podman container (the Engine API on
// DOCKER_HOST or /var/run/docker.sock, which also tells ovsnet of
// containers that come and go), a named netns, a pid, a netns file.
package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/attach"
)

// Target is a resolved container: where its network namespace is.
type Target struct {
	Ref   string // what the user typed
	Netns string // path of a netns file, e.g. /proc/123/ns/net
	How   string // how it was found, for messages: "docker container web1 (pid 123)"
	ID    string // Docker container ID, if any
	// Endpoints are the IDs of the container's endpoints on Docker
	// networks (those of ovsnet's network plugin name its ports), and Name
	// the container's name there.
	Endpoints []string
	Name      string
}

// ErrNotFound is wrapped by Resolve's error when nothing matches.
var ErrNotFound = errors.New("container not found")

// Resolve finds CONTAINER, trying in order: a Docker/Podman container name or
// ID (Engine API on DOCKER_HOST or /var/run/docker.sock), a named netns in
// /var/run/netns, pid:N or a bare PID, and a path to a netns file.
func Resolve(ctx context.Context, ref string) (*Target, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty container name")
	}
	var tried []string
	// Docker first: a container named like a netns is what users mean.
	if !strings.Contains(ref, "/") {
		t, err := dockerLookup(ctx, ref)
		switch {
		case err == nil:
			return t, nil
		case errors.Is(err, errDockerNoSuch):
			tried = append(tried, "no Docker container ("+dockerHostLabel()+")")
		case errors.Is(err, errDockerUnreachable):
			tried = append(tried, "no Docker engine ("+err.Error()+")")
		default:
			return nil, err // e.g. not running: a definite answer
		}
		p := filepath.Join(attach.NetnsDir, ref)
		if attach.NetnsExists(p) {
			return &Target{Ref: ref, Netns: p, How: "netns " + p}, nil
		}
		tried = append(tried, "no netns "+p)
		pidStr := strings.TrimPrefix(ref, "pid:")
		if pid, err := strconv.Atoi(pidStr); err == nil && pid > 0 {
			p := fmt.Sprintf("/proc/%d/ns/net", pid)
			if attach.NetnsExists(p) {
				return &Target{Ref: ref, Netns: p, How: fmt.Sprintf("pid %d", pid)}, nil
			}
			tried = append(tried, fmt.Sprintf("no process %d", pid))
		} else {
			tried = append(tried, "not a pid")
		}
	} else {
		if attach.NetnsExists(ref) {
			return &Target{Ref: ref, Netns: ref, How: "netns file " + ref}, nil
		}
		tried = append(tried, "no netns file at "+ref)
	}
	return nil, fmt.Errorf("%w: %q: %s", ErrNotFound, ref, strings.Join(tried, ", "))
}

var (
	errDockerNoSuch      = errors.New("no such container")
	errDockerUnreachable = errors.New("engine unreachable")
)

// dockerHost returns the Engine API address: DOCKER_HOST or the default socket.
func dockerHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

func dockerHostLabel() string { return "engine at " + dockerHost() }

func dockerClient() (*http.Client, string, error) {
	u, err := url.Parse(dockerHost())
	if err != nil {
		return nil, "", fmt.Errorf("%w: bad DOCKER_HOST %q", errDockerUnreachable, dockerHost())
	}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if _, err := os.Stat(sock); err != nil {
			return nil, "", fmt.Errorf("%w: no socket %s", errDockerUnreachable, sock)
		}
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}, "http://docker", nil
	case "tcp", "http":
		return &http.Client{Timeout: 5 * time.Second}, "http://" + u.Host, nil
	}
	return nil, "", fmt.Errorf("%w: unsupported DOCKER_HOST %q", errDockerUnreachable, dockerHost())
}

// DockerPing says whether the Engine API (DOCKER_HOST or the default
// socket) answers.
func DockerPing() error {
	hc, base, err := dockerClient()
	if err != nil {
		return err
	}
	hc.Timeout = 2 * time.Second
	r, err := hc.Get(base + "/_ping")
	if err != nil {
		return fmt.Errorf("%w: %v", errDockerUnreachable, err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: /_ping answered %s", errDockerUnreachable, r.Status)
	}
	return nil
}

// DockerContainer says whether the Engine API knows container ref, and,
// when it runs, where its network namespace is now (nil while it is
// stopped). An engine that cannot be reached is an error: nothing can be
// said of the container then.
func DockerContainer(ctx context.Context, ref string) (exists bool, running *Target, err error) {
	t, err := dockerLookup(ctx, ref)
	switch {
	case err == nil:
		return true, t, nil
	case errors.Is(err, errDockerNoSuch):
		return false, nil, nil
	case errors.Is(err, errNotRunning):
		return true, nil, nil
	case errors.Is(err, errDockerUnreachable) && !dockerPresent():
		return false, nil, nil // no Docker on this host: no Docker container
	}
	return false, nil, err
}

// dockerPresent says whether this host has a Docker engine to ask: one
// named by DOCKER_HOST, or the default socket.
func dockerPresent() bool {
	if os.Getenv("DOCKER_HOST") != "" {
		return true
	}
	_, err := os.Stat("/var/run/docker.sock")
	return err == nil
}

// errNotRunning is wrapped by dockerLookup's error for a container that
// exists but does not run.
var errNotRunning = errors.New("not running")

// notRunning is that error, saying what to do.
type notRunning struct{ msg string }

func (e notRunning) Error() string { return e.msg }
func (e notRunning) Unwrap() error { return errNotRunning }

// dockerLookup asks the Engine API for the container's State.Pid.
func dockerLookup(ctx context.Context, ref string) (*Target, error) {
	var c struct {
		ID    string `json:"Id"`
		Name  string
		State struct {
			Running bool
			Pid     int
			Status  string
		}
		NetworkSettings struct {
			Networks map[string]struct{ EndpointID string }
		}
	}
	if found, err := dockerGet(ctx, "/containers/"+url.PathEscape(ref)+"/json", &c); err != nil || !found {
		if err == nil {
			err = errDockerNoSuch
		}
		return nil, err
	}
	name := strings.TrimPrefix(c.Name, "/")
	if !c.State.Running || c.State.Pid == 0 {
		return nil, notRunning{fmt.Sprintf("container %q (%s) is not running (state %s): start it first", ref, name, c.State.Status)}
	}
	t := &Target{Ref: ref, Netns: fmt.Sprintf("/proc/%d/ns/net", c.State.Pid), ID: c.ID, Name: name,
		How: fmt.Sprintf("docker container %s (pid %d)", name, c.State.Pid)}
	for _, n := range c.NetworkSettings.Networks {
		if n.EndpointID != "" {
			t.Endpoints = append(t.Endpoints, n.EndpointID)
		}
	}
	return t, nil
}

// DockerEvents follows the Engine API's container events (Docker's and
// Podman's alike) until ctx ends or the stream breaks, calling on with each
// event's action ("start", "die", "destroy"...) and container ID.
func DockerEvents(ctx context.Context, on func(action, id string)) error {
	hc, base, err := dockerClient()
	if err != nil {
		return err
	}
	hc.Timeout = 0 // a stream: it lasts as long as ctx
	filters := url.QueryEscape(`{"type":["container"]}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?filters="+filters, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errDockerUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: /events answered %s", errDockerUnreachable, resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Action string
			Actor  struct{ ID string }
		}
		if err := dec.Decode(&ev); err != nil {
			return err
		}
		on(ev.Action, ev.Actor.ID)
	}
}

// DockerNet is a network as the Engine API reports it.
type DockerNet struct {
	ID, Name, Driver string
	Options          map[string]string // its -o options
}

// DockerNetwork asks the Engine API for network ref (a name, an ID or an
// ID's prefix); nil when the engine knows none, or this host has no
// engine to ask. An engine that cannot be reached is an error.
func DockerNetwork(ctx context.Context, ref string) (*DockerNet, error) {
	if !dockerPresent() {
		return nil, nil
	}
	var n DockerNet
	found, err := dockerGet(ctx, "/networks/"+url.PathEscape(ref), &struct {
		ID      *string `json:"Id"`
		Name    *string
		Driver  *string
		Options *map[string]string
	}{&n.ID, &n.Name, &n.Driver, &n.Options})
	if err != nil || !found {
		return nil, err
	}
	return &n, nil
}

// dockerGet asks the Engine API for path and decodes its answer into v;
// found is false when it answers 404.
func dockerGet(ctx context.Context, path string, v any) (found bool, err error) {
	hc, base, err := dockerClient()
	if err != nil {
		return false, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: %v", errDockerUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%w: %s answered %s", errDockerUnreachable, dockerHost(), resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return false, fmt.Errorf("%w: bad answer from %s: %v", errDockerUnreachable, dockerHost(), err)
	}
	return true, nil
}
