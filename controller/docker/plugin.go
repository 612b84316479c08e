// Package docker is ovsnet as a Docker network: libnetwork's remote network
// driver API, which the controller serves on a unix socket Docker discovers
// (/run/docker/plugins/NAME.sock). It translates Docker's networks and
// endpoints into ovsnet's bridges and attaches (package network) and keeps
// no state of its own: a network is the bridge whose external_ids name it,
// an endpoint the interface attached for it, so a restart of the
// controller or of dockerd loses nothing.
//
// Its own small handlers, not github.com/docker/go-plugins-helpers: one
// socket answers Plugin.Activate for the whole plugin, which the helpers'
// per-driver handlers each answer for themselves, and the helpers' SDK
// pulls in a second go-systemd for socket activation the controller does
// not use.
package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/publish"
	"github.com/ovsnet/ovsnet/controller/steptime"
)

// Runtime is how ports the plugin attached are marked (intent.KeyRuntime).
const Runtime = "docker"

// Plugin serves one ovsnet network driver.
type Plugin struct {
	Host *network.Host
	// Netns is the network namespace dockerd takes an endpoint's link
	// from: its own. The controller and OVS usually share it; a test
	// sandbox keeps OVS in another.
	Netns string
	// Lock holds the host's convergence lock shared while a request
	// changes the network, as every CLI change does (a request arriving
	// while the controller converges waits for it).
	Lock func() (unlock func(), err error)
	// Joined, when set, is told of each endpoint handed to Docker for a
	// container it is about to start (the controller holds back its own
	// work on the host until the container's start event).
	Joined func(endpoint string)
	// Deleted, when set, is told of each endpoint Docker deleted.
	Deleted func(endpoint string)
	// Log takes what goes wrong outside a request (nil: nowhere).
	Log *slog.Logger

	pending pending // addresses the IPAM driver handed out, not attached yet
}

// peerKey is the context key of the pid of the process at the other end of
// a request's connection (dockerd).
type peerKey struct{}

// PeerContext records the pid of the process at the other end of c, a
// unix socket connection, for the requests on it (an http.Server's
// ConnContext).
func PeerContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, int(cred.Pid))
}

// inDockerd is path as dockerd sees it: through its root (its mount
// namespace: a sandbox's namespace file is mounted there, and may not be
// in this process's), when the request's peer is known. The directory's
// symbolic links are resolved first (/var/run is one to /run): an absolute
// link under /proc/PID/root would lead back to this process's root.
func inDockerd(ctx context.Context, path string) string {
	pid, ok := ctx.Value(peerKey{}).(int)
	if !ok || pid <= 0 {
		return path
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
		path = filepath.Join(dir, filepath.Base(path))
	}
	return fmt.Sprintf("/proc/%d/root%s", pid, path)
}

// Handler is the plugin's HTTP API.
func (p *Plugin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/Plugin.Activate", reply(func(context.Context, *struct{}) (any, error) {
		return map[string][]string{"Implements": {"NetworkDriver", "IpamDriver"}}, nil
	}))
	mux.HandleFunc("/IpamDriver.GetCapabilities", reply(func(context.Context, *struct{}) (any, error) {
		return map[string]bool{"RequiresMACAddress": false, "RequiresRequestReplay": false}, nil
	}))
	mux.HandleFunc("/IpamDriver.GetDefaultAddressSpaces", reply(func(context.Context, *struct{}) (any, error) {
		return map[string]string{"LocalDefaultAddressSpace": "ovsnet", "GlobalDefaultAddressSpace": "ovsnet-global"}, nil
	}))
	mux.HandleFunc("/IpamDriver.RequestPool", reply(p.requestPool))
	mux.HandleFunc("/IpamDriver.ReleasePool", reply(noop[map[string]any]))
	mux.HandleFunc("/IpamDriver.RequestAddress", locked(p, p.requestAddress))
	mux.HandleFunc("/IpamDriver.ReleaseAddress", reply(p.releaseAddress))
	mux.HandleFunc("/NetworkDriver.GetCapabilities", reply(func(context.Context, *struct{}) (any, error) {
		return map[string]string{"Scope": "local", "ConnectivityScope": "local"}, nil
	}))
	mux.HandleFunc("/NetworkDriver.CreateNetwork", locked(p, p.createNetwork))
	mux.HandleFunc("/NetworkDriver.DeleteNetwork", locked(p, p.deleteNetwork))
	mux.HandleFunc("/NetworkDriver.CreateEndpoint", locked(p, p.createEndpoint))
	mux.HandleFunc("/NetworkDriver.DeleteEndpoint", locked(p, p.deleteEndpoint))
	mux.HandleFunc("/NetworkDriver.EndpointOperInfo", reply(func(context.Context, *endpointRequest) (any, error) {
		return map[string]any{"Value": map[string]string{}}, nil
	}))
	mux.HandleFunc("/NetworkDriver.Join", locked(p, p.join))
	mux.HandleFunc("/NetworkDriver.Leave", reply(noop[endpointRequest]))
	mux.HandleFunc("/NetworkDriver.ProgramExternalConnectivity", locked(p, p.programExternal))
	mux.HandleFunc("/NetworkDriver.RevokeExternalConnectivity", reply(noop[endpointRequest]))
	mux.HandleFunc("/NetworkDriver.DiscoverNew", reply(noop[map[string]any]))
	mux.HandleFunc("/NetworkDriver.DiscoverDelete", reply(noop[map[string]any]))
	return mux
}

func noop[T any](context.Context, *T) (any, error) { return struct{}{}, nil }

// reply decodes a request into a T, runs f and answers its result, or
// {"Err": ...}, which Docker shows its user.
func reply[T any](f func(context.Context, *T) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := steptime.New()
		defer t.Done("docker " + r.URL.Path)
		var req T
		if r.ContentLength != 0 {
			body, err := io.ReadAll(r.Body) // bounded by the server (newSocketServer)
			if err == nil {
				err = json.Unmarshal(body, &req)
			}
			if err == nil {
				err = checkIDs(body)
			}
			if err != nil {
				http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		t.Step("read")
		out, err := f(r.Context(), &req)
		t.Step("handle")
		if err != nil {
			out = map[string]string{"Err": err.Error()}
		}
		w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
		json.NewEncoder(w).Encode(out)
	}
}

// dockerID is how Docker names networks and endpoints: 64 hex digits.
var dockerID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkIDs refuses a request whose network or endpoint ID is not Docker's
// form: they become bridge names, OVSDB keys and rule comments.
func checkIDs(body []byte) error {
	var ids struct{ NetworkID, EndpointID string }
	json.Unmarshal(body, &ids) // the request itself decoded; absent IDs stay ""
	for what, id := range map[string]string{"network": ids.NetworkID, "endpoint": ids.EndpointID} {
		if id != "" && !dockerID.MatchString(id) {
			return fmt.Errorf("%s ID %.80q is not Docker's (64 hex digits)", what, id)
		}
	}
	return nil
}

// locked is reply holding the host's convergence lock shared.
func locked[T any](p *Plugin, f func(context.Context, *T) (any, error)) http.HandlerFunc {
	return reply(func(ctx context.Context, req *T) (any, error) {
		unlock, err := p.Lock()
		if err != nil {
			return nil, err
		}
		defer unlock()
		return f(ctx, req)
	})
}

// programExternal publishes the endpoint's -p ports with ovsnet's NAT
// (its chains, OVSNET-USER, hairpin; a host port taken is refused). They
// go with the endpoint (DeleteEndpoint).
func (p *Plugin) programExternal(ctx context.Context, req *externalRequest) (any, error) {
	specs, err := portSpecs(req.Options)
	if err != nil || len(specs) == 0 {
		return struct{}{}, err
	}
	b, err := p.network(ctx, req.NetworkID)
	if err != nil || b.Docker.Internal {
		return struct{}{}, err // internal: nothing published, as on Docker's bridge
	}
	if _, err := publish.Add(ctx, p.Host, b.Name, req.EndpointID, specs); err != nil {
		return nil, errorf("%v", err)
	}
	return struct{}{}, nil
}

type externalRequest struct {
	NetworkID, EndpointID string
	Options               map[string]any
}

// portBinding is one -p of Docker's: IP protocol number, container port,
// host address and port (0: any free one).
type portBinding struct {
	Proto    int
	Port     uint16
	HostIP   string
	HostPort uint16
}

// portSpecs turns Docker's port bindings into ovsnet publish specs
// (HOST_IP:HOST_PORT:PORT/PROTO).
func portSpecs(options map[string]any) ([]string, error) {
	raw, ok := options["com.docker.network.portmap"]
	if !ok || raw == nil {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var pbs []portBinding
	if err := json.Unmarshal(b, &pbs); err != nil {
		return nil, errorf("port bindings Docker sent do not decode: %v", err)
	}
	var specs []string
	for _, pb := range pbs {
		proto := map[int]string{6: "tcp", 17: "udp"}[pb.Proto]
		if proto == "" {
			return nil, errorf("-p with IP protocol %d: ovsnet publishes tcp and udp", pb.Proto)
		}
		host := pb.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		hp := ""
		if pb.HostPort != 0 {
			hp = strconv.Itoa(int(pb.HostPort))
		}
		specs = append(specs, fmt.Sprintf("%s:%s:%d/%s", host, hp, pb.Port, proto))
	}
	return specs, nil
}

// errorf is an error Docker shows as ovsnet's.
func errorf(format string, args ...any) error { return fmt.Errorf("ovsnet: "+format, args...) }
