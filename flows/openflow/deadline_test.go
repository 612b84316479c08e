package openflow

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// peer is a fake ovs-vswitchd on a unix socket: it reads what is written
// to it at pace (a chunk per tick, or nothing when stalled) and answers
// the barrier that ends a bundle's adds.
func peer(t *testing.T, bridge string, stalled bool) {
	dir := t.TempDir()
	t.Setenv("OVS_RUNDIR", dir)
	l, err := net.Listen("unix", filepath.Join(dir, bridge+".mgmt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hello := header(nil, typeHello, 0)
		c.Write(finish(be32(append(hello, 0, 1, 0, 8), 1<<version)))
		if stalled {
			time.Sleep(10 * Timeout)
			return
		}
		pc := &Conn{c: c}
		for i := 1; ; i++ {
			if i%40 == 0 { // about a writeChunk per tick
				time.Sleep(Timeout / 4)
			}
			m, err := pc.read()
			if err != nil {
				return
			}
			if m.typ == typeBarrierReq || m.typ == typeBundleCtl {
				c.Write(finish(header(nil, m.typ+1, m.xid)))
			}
		}
	}()
}

// A bundle that takes several Timeouts to be read, but is read steadily,
// is committed; one that is not read at all fails after about a Timeout.
func TestTimeoutBoundsStallNotWork(t *testing.T) {
	old := Timeout
	Timeout = 200 * time.Millisecond
	defer func() { Timeout = old }()
	flows := make([]*Flow, 0, 400)
	for i := 0; i < cap(flows); i++ {
		flows = append(flows, &Flow{Table: 1, Priority: uint16(i), Actions: []Action{Drop()}})
	}
	t.Run("slow", func(t *testing.T) {
		peer(t, "slow", false)
		c, err := Dial("slow")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if err := c.Bundle(Change{Cookie: 1, Mask: ^uint64(0), Flows: flows}); err != nil {
			t.Fatalf("bundle read steadily over %s: %v", time.Since(start), err)
		}
		if took := time.Since(start); took < 2*Timeout {
			t.Fatalf("the fake peer read the bundle in %s, less than two Timeouts: the test proves nothing", took)
		}
	})
	t.Run("stalled", func(t *testing.T) {
		peer(t, "stalled", true)
		c, err := Dial("stalled")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var ce *ConnError
		if err := c.Bundle(Change{Cookie: 1, Mask: ^uint64(0), Flows: flows}); !errors.As(err, &ce) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("bundle to a peer that reads nothing: %v, want a deadline ConnError", err)
		}
	})
}
