package sandbox

import (
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
)

// ServeReply listens on addr in the named network namespace and writes
// reply to every connection, closing it, until the listener is closed:
// a backend that says who it is.
func ServeReply(netns, addr, reply string) (net.Listener, error) {
	n, err := ns.GetNS("/var/run/netns/" + netns)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	var ln net.Listener
	if err := n.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		return nil, err
	}
	go func() {
		for {
			k, err := ln.Accept()
			if err != nil {
				return
			}
			k.Write([]byte(reply))
			k.Close()
		}
	}()
	return ln, nil
}
