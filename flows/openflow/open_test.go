package openflow

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// Open tells a connection whose peer closed it (its ovs-vswitchd went
// away) from an idle one or one with a message waiting, without reading.
func TestOpen(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "br.mgmt"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, _ := ln.Accept()
		accepted <- s
	}()
	cl, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	c := &Conn{bridge: "br", c: cl}
	if !c.Open() {
		t.Fatal("idle connection not open")
	}
	if _, err := peer.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if !c.Open() {
		t.Fatal("connection with a message waiting not open")
	}
	var b [1]byte
	cl.SetReadDeadline(time.Now().Add(5 * time.Second)) // had Open read it, this would wait forever
	if _, err := cl.Read(b[:]); err != nil {
		t.Fatalf("the waiting byte, after Open looked: %v", err)
	}
	peer.Close()
	if c.Open() {
		t.Fatal("connection whose peer closed reported open")
	}
	cl.Close()
	if c.Open() {
		t.Fatal("closed connection reported open")
	}
}
