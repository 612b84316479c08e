package appctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeVswitchd serves the control socket in a temporary OVS_RUNDIR,
// answering each request with answer(method) and recording the methods.
func fakeVswitchd(t *testing.T, answer func(string) (any, any)) func() string {
	dir := t.TempDir()
	t.Setenv("OVS_RUNDIR", dir)
	if err := os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte("4242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "ovs-vswitchd.4242.ctl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var calls []string
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req struct {
				ID     int      `json:"id"`
				Method string   `json:"method"`
				Params []string `json:"params"`
			}
			if json.NewDecoder(c).Decode(&req) == nil && req.Params != nil {
				mu.Lock()
				calls = append(calls, req.Method+" "+fmt.Sprint(req.Params))
				mu.Unlock()
				res, e := answer(req.Method)
				json.NewEncoder(c).Encode(map[string]any{"id": req.ID, "result": res, "error": e})
			}
			c.Close()
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(calls, ", ")
	}
}

func TestCall(t *testing.T) {
	calls := fakeVswitchd(t, func(m string) (any, any) {
		if m == "version" {
			return "ovs-vswitchd (Open vSwitch) 3.1.0\n", nil
		}
		return nil, `"` + m + `" is not a valid command`
	})
	out, err := Call(context.Background(), "version")
	if err != nil || out != "ovs-vswitchd (Open vSwitch) 3.1.0\n" {
		t.Fatalf("version: %q, %v", out, err)
	}
	_, err = Call(context.Background(), "nonsense", "a", "b")
	var e *Error
	if !errors.As(err, &e) || e.Msg != `"nonsense" is not a valid command` {
		t.Fatalf("refused command: %v", err)
	}
	if want := "version [], nonsense [a b]"; calls() != want {
		t.Fatalf("requests %s, want %s", calls(), want)
	}
}

func TestWaitRevalidatedWaitsTwice(t *testing.T) {
	calls := fakeVswitchd(t, func(string) (any, any) { return "", nil })
	if err := WaitRevalidated(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "revalidator/wait [], revalidator/wait []"; calls() != want {
		t.Fatalf("requests %s, want %s", calls(), want)
	}
}

func TestWaitRevalidatedPurgesWithTwoDatapaths(t *testing.T) {
	calls := fakeVswitchd(t, func(m string) (any, any) {
		if m == "revalidator/wait" {
			return nil, "can't wait on multiple udpifs."
		}
		return "", nil
	})
	if err := WaitRevalidated(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "revalidator/wait [], revalidator/purge []"; calls() != want {
		t.Fatalf("requests %s, want %s", calls(), want)
	}
}

func TestNoVswitchd(t *testing.T) {
	t.Setenv("OVS_RUNDIR", t.TempDir())
	if _, err := Call(context.Background(), "version"); err == nil {
		t.Fatal("no pid file, yet the call succeeded")
	}
}
