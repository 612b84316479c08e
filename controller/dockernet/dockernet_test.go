package dockernet_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/controller/dockernet"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network/networktest"
)

// engine serves GET /networks/REF for nets, by name or ID, as the Engine
// API does; DOCKER_HOST points at it for the test.
func engine(t *testing.T, nets ...map[string]any) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ref := strings.TrimPrefix(r.URL.Path, "/networks/")
		for _, n := range nets {
			if n["Name"] == ref || n["Id"] == ref {
				json.NewEncoder(w).Encode(n)
				return
			}
		}
		http.Error(w, `{"message":"no such network"}`, http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_HOST", "tcp://"+strings.TrimPrefix(srv.URL, "http://"))
}

func TestLookupByDockerName(t *testing.T) {
	ctx := context.Background()
	id := strings.Repeat("ab", 32)
	h := networktest.Host(t, "10.9.0.0/24", intent.DockerNet{ID: id, Made: true}.Encode())
	engine(t, map[string]any{"Id": id, "Name": "web", "Driver": "ovsnet"},
		map[string]any{"Id": "cd", "Name": "plain", "Driver": "bridge"},
		map[string]any{"Id": "ef", "Name": "ovnweb", "Driver": "ovsnet", "Options": map[string]string{dockernet.OptOVN: "blue"}})

	if got, err := dockernet.Lookup(ctx, h.DB, "web"); err != nil || got != "br0" {
		t.Fatalf("web: %q, %v; want br0", got, err)
	}
	br, err := h.DB.GetBridge(ctx, "br0")
	if err != nil || br.ExternalIDs[intent.KeyDockerName] != "web" {
		t.Fatalf("the name is not recorded: %v %v", br, err)
	}
	engine(t) // Docker gone: the recorded name answers
	if got, err := dockernet.Lookup(ctx, h.DB, "web"); err != nil || got != "br0" {
		t.Fatalf("web, recorded: %q, %v", got, err)
	}
	engine(t, map[string]any{"Id": "cd", "Name": "plain", "Driver": "bridge"},
		map[string]any{"Id": "ef", "Name": "ovnweb", "Driver": "ovsnet", "Options": map[string]string{dockernet.OptOVN: "blue"}})
	if _, err := dockernet.Lookup(ctx, h.DB, "plain"); err == nil || !strings.Contains(err.Error(), "driver bridge") {
		t.Errorf("a bridge-driver network: %v", err)
	}
	if got, err := dockernet.Lookup(ctx, h.DB, "ovnweb"); err != nil || got != "blue" {
		t.Errorf("an OVN network's Docker name: %q, %v", got, err)
	}
	if got, err := dockernet.Lookup(ctx, h.DB, "nosuch"); err != nil || got != "" {
		t.Errorf("unknown: %q, %v", got, err)
	}
}

// Record waits for Docker to store the network it is making, then names
// the bridge.
func TestRecordWaitsForDocker(t *testing.T) {
	ctx := context.Background()
	id := strings.Repeat("12", 32)
	h := networktest.Host(t, "10.9.0.0/24", intent.DockerNet{ID: id, Made: true}.Encode())
	engine(t)
	if err := dockernet.Record(ctx, h.DB, id, 300*time.Millisecond); err == nil {
		t.Fatal("recorded a network Docker does not have")
	}
	engine(t, map[string]any{"Id": id, "Name": "db.tier", "Driver": "ovsnet"})
	if err := dockernet.Record(ctx, h.DB, id, time.Second); err != nil {
		t.Fatal(err)
	}
	br, _ := h.DB.GetBridge(ctx, "br0")
	if d := intent.DecodeBridge(br.Name, br.ExternalIDs).Docker; d.Name != "db.tier" {
		t.Errorf("recorded %+v", d)
	}
}
