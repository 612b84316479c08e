package network

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/attach/attachtest"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/intent/intenttest"
	"github.com/ovsnet/ovsnet/controller/network/links"
	"github.com/ovsnet/ovsnet/controller/network/poolstate"
	"github.com/ovsnet/ovsnet/flows"
	"github.com/ovsnet/ovsnet/flows/flowstest"
	"github.com/ovsnet/ovsnet/nat/nattest"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovsdbtest"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// engineHost is a Host on an in-memory OVSDB holding br0 (10.1.0.0/24,
// on the userspace datapath) with container c10.1.0.2 attached (port 10), whose flows, NAT, devices (network
// namespaces /ns/a, /ns/b and /ns/c) and ovs-vswitchd are stand-ins.
func engineHost(t *testing.T) (*Host, *flowstest.Recorder, *attachtest.Devices) {
	t.Helper()
	ep := ovsdbtest.Serve(t)
	h, err := Open(context.Background(), ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	intenttest.BridgeOn(t, h.DB, datapath.Netdev, "10.1.0.0/24", nil, "10.1.0.2")
	rec, dev := &flowstest.Recorder{}, attachtest.New("/ns/a", "/ns/b", "/ns/c")
	h.Flows, h.Firewall, h.Devices, h.Vswitchd = rec, &nattest.Recorder{}, dev, ovsdbtest.NewVswitchd(t, ep)
	return h, rec, dev
}

// eth1Of is add-port of container c's eth1 (in /ns/c) on br0 as a port of
// type typ, its address automatic.
func eth1Of(c, typ string) PortOptions {
	return PortOptions{Bridge: "br0", Iface: "eth1", Container: c, Netns: "/ns/" + c, Type: typ, Addresses: []string{"auto"}}
}

// rowsOf are the interface rows of container c on br0.
func rowsOf(t *testing.T, h *Host, c string) []intent.Ref {
	t.Helper()
	ifs, err := h.DB.FindInterfaces(context.Background(), intent.OfContainer(c, ""))
	if err != nil {
		t.Fatal(err)
	}
	var out []intent.Ref
	for _, i := range ifs {
		out = append(out, intent.RefOf(i.ExternalIDs))
	}
	return out
}

// portFlows are the flows of OVS port name in rec.
func portFlows(rec *flowstest.Recorder, name string) []string {
	return slices.DeleteFunc(rec.Flows("br0"), func(f string) bool {
		return !strings.Contains(f, fmt.Sprintf("cookie=%#016x", flows.PortCookie(name)))
	})
}

// TestAttachAndDetach: add-port of a veth writes a ready row with the
// lowest free address, makes the veth with its container end configured
// with that address, and installs the port's flows; del-port takes all of
// it away.
func TestAttachAndDetach(t *testing.T) {
	ctx := context.Background()
	h, rec, dev := engineHost(t)
	p, err := h.AddPort(ctx, eth1Of("a", "veth"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Addresses) != 1 || p.Addresses[0] != "10.1.0.3/24" || p.Ofport <= 0 || p.Ofport == 10 {
		t.Fatalf("attached %+v: want 10.1.0.3/24 (.2 is held) on a port of its own", p)
	}
	if rs := rowsOf(t, h, "a"); len(rs) != 1 || rs[0].State != intent.StateReady {
		t.Fatalf("rows %+v, want one ready", rs)
	}
	cfg, ok := dev.Config("/ns/a", "eth1")
	if !ok || len(cfg.Addrs) != 1 || cfg.Addrs[0].String() != "10.1.0.3/24" || !slices.Contains(dev.Links(attachtest.Host), p.OVSPort) {
		t.Fatalf("container end %+v (%v), host links %v", cfg, ok, dev.Links(attachtest.Host))
	}
	if len(portFlows(rec, p.OVSPort)) == 0 {
		t.Fatalf("no flows for %s: %q", p.OVSPort, rec.Flows("br0"))
	}
	if _, err := h.AddPort(ctx, PortOptions{Bridge: "br0", Iface: "eth1", Container: "a", Netns: "/ns/a", Type: "veth"}); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Fatalf("the same interface again: %v", err)
	}

	if err := h.DelPort(ctx, "br0", "eth1", "a"); err != nil {
		t.Fatal(err)
	}
	if rs := rowsOf(t, h, "a"); len(rs) != 0 || len(dev.Links("/ns/a")) != 0 || slices.Contains(dev.Links(attachtest.Host), p.OVSPort) || len(portFlows(rec, p.OVSPort)) != 0 {
		t.Fatalf("after del-port: rows %+v, container links %v, host links %v, flows %q", rs, dev.Links("/ns/a"), dev.Links(attachtest.Host), portFlows(rec, p.OVSPort))
	}
	again, err := h.AddPort(ctx, eth1Of("b", "veth"))
	if err != nil || again.Addresses[0] != "10.1.0.3/24" {
		t.Fatalf("after the detach: %+v, %v; want the freed 10.1.0.3 again", again, err)
	}
}

// TestAttachRollsBack: an attach whose container side fails leaves no
// row, no link and no flows, and its address is free again.
func TestAttachRollsBack(t *testing.T) {
	ctx := context.Background()
	h, rec, dev := engineHost(t)
	dev.Fail["Configure"] = errors.New("injected")
	if _, err := h.AddPort(ctx, eth1Of("a", "veth")); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("attach with a failing configure: %v", err)
	}
	if !slices.ContainsFunc(dev.Calls(), func(c string) bool { return strings.HasPrefix(c, "Configure") }) {
		t.Fatalf("the fault did not happen: calls %v", dev.Calls())
	}
	host := attach.HostName("br0", "a", "eth1")
	if rs := rowsOf(t, h, "a"); len(rs) != 0 || len(dev.Links("/ns/a")) != 0 || slices.Contains(dev.Links(attachtest.Host), host) || len(portFlows(rec, host)) != 0 {
		t.Fatalf("after the rollback: rows %+v, container links %v, host links %v, flows %q", rs, dev.Links("/ns/a"), dev.Links(attachtest.Host), portFlows(rec, host))
	}
	delete(dev.Fail, "Configure")
	p, err := h.AddPort(ctx, eth1Of("a", "veth"))
	if err != nil || p.Addresses[0] != "10.1.0.3/24" {
		t.Fatalf("after the rollback: %+v, %v; want 10.1.0.3 again", p, err)
	}
}

// TestAttachInternalAndBulk: an internal port is moved into its container
// and configured there; add-ports attaches a list in one run, each with
// its own address and port number.
func TestAttachInternalAndBulk(t *testing.T) {
	ctx := context.Background()
	h, _, dev := engineHost(t)
	p, err := h.AddPort(ctx, eth1Of("a", "internal"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, ok := dev.Config("/ns/a", "eth1"); !ok || cfg.MAC.String() != p.MAC || !slices.Contains(dev.Calls(), "MoveIn "+p.OVSPort+" /ns/a") {
		t.Fatalf("internal port: config %+v (%v), calls %v", cfg, ok, dev.Calls())
	}
	ps, err := h.AddPorts(ctx, "br0", []PortOptions{
		{Iface: "eth1", Container: "b", Netns: "/ns/b", Type: "veth", Addresses: []string{"auto"}},
		{Iface: "eth2", Container: "b", Netns: "/ns/b", Type: "veth", Addresses: []string{"auto"}},
		{Iface: "eth1", Container: "c", Netns: "/ns/c", Type: "veth", Addresses: []string{"10.1.0.9"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{p.Addresses[0]: true, "10.1.0.2/24": true}
	ports := map[int]bool{p.Ofport: true}
	for _, q := range ps {
		if len(q.Addresses) != 1 || seen[q.Addresses[0]] || ports[q.Ofport] {
			t.Fatalf("bulk attach %+v: addresses or port numbers repeat (%v)", q, seen)
		}
		seen[q.Addresses[0]], ports[q.Ofport] = true, true
	}
	if ps[2].Addresses[0] != "10.1.0.9/24" || len(dev.Links("/ns/b")) != 2 {
		t.Fatalf("bulk: %+v, links in b %v", ps, dev.Links("/ns/b"))
	}
}

// TestAttachTakesFromPool: with a warm pool, an attach asking for nothing
// of its own takes a pool's port (its row, address and device) instead of
// making one, and the pool's row becomes the container's.
func TestAttachTakesFromPool(t *testing.T) {
	ctx := context.Background()
	h, _, dev := engineHost(t)
	h.Pool = poolstate.New(2, []string{"veth"})
	if err := h.FillPool(ctx, "br0", "veth", 2, ""); err != nil {
		t.Fatal(err)
	}
	pooled, err := h.DB.FindInterfaces(ctx, intent.OfPool("br0", "veth"))
	if err != nil || len(pooled) != 2 {
		t.Fatalf("pool's rows: %d, %v", len(pooled), err)
	}
	o := eth1Of("a", "veth")
	o.Name = "ns1/a" // recorded on the pool's row as it becomes the container's
	p, err := h.AddPort(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(pooled, func(i vswitchd.Interface) bool { return i.Name == p.OVSPort }) {
		t.Fatalf("attached on %s, not a pool's port (%v)", p.OVSPort, pooled)
	}
	if _, ok := dev.Config("/ns/a", "eth1"); !ok {
		t.Fatalf("the pool's veth end was not configured in the container: %v", dev.Calls())
	}
	if rs := rowsOf(t, h, "a"); len(rs) != 1 || rs[0].State != intent.StateReady || rs[0].Pooled || rs[0].RuntimeName != "ns1/a" {
		t.Fatalf("rows %+v, want one ready, named, and no longer the pool's", rs)
	}
}

// TestDetachMarksFirst: a detach marks its rows detaching before it takes
// anything away, so one that fails at the devices leaves the row marked
// (for reconcile to finish) with its flows and address still in place;
// finishing it then takes everything.
func TestDetachMarksFirst(t *testing.T) {
	ctx := context.Background()
	h, rec, dev := engineHost(t)
	p, err := h.AddPort(ctx, eth1Of("a", "veth"))
	if err != nil {
		t.Fatal(err)
	}
	dev.Fail["DeleteLinks"] = errors.New("injected")
	if err := h.DelPort(ctx, "br0", "eth1", "a"); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("del-port with failing device deletion: %v", err)
	}
	rs := rowsOf(t, h, "a")
	if len(rs) != 1 || rs[0].State != intent.StateDetaching || len(portFlows(rec, p.OVSPort)) == 0 {
		t.Fatalf("after a detach cut short: rows %+v, flows %q; want the row marked detaching, its flows kept", rs, portFlows(rec, p.OVSPort))
	}
	delete(dev.Fail, "DeleteLinks")
	ifs, err := h.DB.FindInterfaces(ctx, intent.OfContainer("a", "eth1"))
	if err != nil || len(ifs) != 1 {
		t.Fatalf("the marked row: %v, %v", ifs, err)
	}
	port, err := h.DB.PortOn(ctx, "br0", ifs[0].UUID)
	if err != nil || port == nil {
		t.Fatalf("its port: %v, %v", port, err)
	}
	if _, err := h.FinishDetach(ctx, "br0", ifs[0], *port); err != nil {
		t.Fatal(err)
	}
	if rs := rowsOf(t, h, "a"); len(rs) != 0 || len(portFlows(rec, p.OVSPort)) != 0 || slices.Contains(dev.Links(attachtest.Host), p.OVSPort) {
		t.Fatalf("after finishing: rows %+v, flows %q, host links %v", rs, portFlows(rec, p.OVSPort), dev.Links(attachtest.Host))
	}
}

// TestAttachRecordsName: a runtime's name for the container (a pod's
// NAMESPACE/NAME from CNI_ARGS) is recorded on its row and reported, and
// the port is found by it as a link's end would be; a name that could
// not be one is refused before anything is made.
func TestAttachRecordsName(t *testing.T) {
	ctx := context.Background()
	h, _, dev := engineHost(t)
	o := eth1Of("a", "veth")
	o.Name = "ns1/web"
	p, err := h.AddPort(ctx, o)
	if err != nil || p.Name != "ns1/web" {
		t.Fatalf("attached %+v, %v: want it named ns1/web", p, err)
	}
	if rs := rowsOf(t, h, "a"); len(rs) != 1 || rs[0].RuntimeName != "ns1/web" {
		t.Fatalf("rows %+v, want ns1/web recorded", rs)
	}
	if ps, err := links.ContainerPorts(ctx, h.DB, "br0", "ns1/web"); err != nil || len(ps) != 1 {
		t.Fatalf("found by its name: %d ports, %v", len(ps), err)
	}
	bad := eth1Of("b", "veth")
	bad.Name = "web>db"
	if _, err := h.AddPort(ctx, bad); err == nil || !strings.Contains(err.Error(), "container name") || len(dev.Links("/ns/b")) != 0 {
		t.Fatalf("a name with '>': %v, links %v", err, dev.Links("/ns/b"))
	}
}

// TestDetachReturnsToPool: with a pool, a lone detach of a port like the
// pool's (a runtime's DEL, del-port) moves its link back to the host and
// makes its row the pool's, keeping its name, address and flows; the next
// attach takes it. A link that cannot be moved back (the container's
// namespace gone) leaves the port to the detach, which removes it.
func TestDetachReturnsToPool(t *testing.T) {
	ctx := context.Background()
	h, rec, dev := engineHost(t)
	h.Pool = poolstate.New(2, []string{"veth"})
	p, err := h.AddPort(ctx, eth1Of("a", "veth"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.DelPort(ctx, "br0", "eth1", "a"); err != nil {
		t.Fatal(err)
	}
	pooled, err := h.DB.FindInterfaces(ctx, intent.OfPool("br0", "veth"))
	if err != nil || len(pooled) != 1 || pooled[0].Name != p.OVSPort || intent.LowestHeld(pooled[0].ExternalIDs).String() != "10.1.0.3" {
		t.Fatalf("pool's rows after del-port: %+v, %v; want %s at 10.1.0.3", pooled, err, p.OVSPort)
	}
	if rowsOf(t, h, "a") != nil || len(portFlows(rec, p.OVSPort)) == 0 || !slices.Contains(dev.Links(attachtest.Host), attach.PoolPeer(p.OVSPort)) {
		t.Fatalf("after the return: rows %+v, flows %q, host links %v; want no container row, the flows kept, the end in the host",
			rowsOf(t, h, "a"), portFlows(rec, p.OVSPort), dev.Links(attachtest.Host))
	}
	q, err := h.AddPort(ctx, eth1Of("b", "veth"))
	if err != nil || q.OVSPort != p.OVSPort || q.Addresses[0] != "10.1.0.3/24" {
		t.Fatalf("the next attach: %+v, %v; want %s at 10.1.0.3", q, err, p.OVSPort)
	}
	dev.Fail["ReturnLink"] = errors.New("injected")
	if err := h.DelPort(ctx, "br0", "eth1", "b"); err != nil {
		t.Fatal(err)
	}
	if pooled, _ := h.DB.FindInterfaces(ctx, intent.OfBridgePool("br0")); len(pooled) != 0 || len(portFlows(rec, p.OVSPort)) != 0 {
		t.Fatalf("a port that could not go back: pool's rows %+v, flows %q; want it removed", pooled, portFlows(rec, p.OVSPort))
	}
}

// TestPoolWaitsInRuntime: a pool filled for a runtime whose namespace is
// not the host's makes its veths' container ends there; that runtime's
// handoff takes one with a rename in place (no move), and an attach of
// ovsnet's own (into a container) leaves those ports alone.
func TestPoolWaitsInRuntime(t *testing.T) {
	ctx := context.Background()
	h, _, dev := engineHost(t)
	h.Pool = poolstate.New(1, []string{"veth"})
	if err := h.FillPool(ctx, "br0", "veth", 1, "/ns/b"); err != nil {
		t.Fatal(err)
	}
	pooled, err := h.DB.FindInterfaces(ctx, intent.OfPool("br0", "veth"))
	if err != nil || len(pooled) != 1 || pooled[0].ExternalIDs[intent.KeyPoolNetns] != "/ns/b" || !slices.Contains(dev.Links("/ns/b"), attach.PoolPeer(pooled[0].Name)) {
		t.Fatalf("pool's rows %+v (%v), links in /ns/b %v: want one waiting in /ns/b", pooled, err, dev.Links("/ns/b"))
	}
	if p, err := h.AddPort(ctx, eth1Of("a", "veth")); err != nil || p.OVSPort == pooled[0].Name {
		t.Fatalf("an attach into a container took the runtime's pool port: %+v, %v", p, err)
	}
	o := PortOptions{Bridge: "br0", Iface: "docker", Container: "ep1", Type: "veth", Addresses: []string{intent.LowestHeld(pooled[0].ExternalIDs).String() + "/24"},
		Handoff: &Handoff{Runtime: "docker", Netns: "/ns/b", Name: "ovdep1"}}
	before := len(dev.Calls())
	p, err := h.AddPort(ctx, o)
	if err != nil || p.OVSPort != pooled[0].Name || !slices.Contains(dev.Links("/ns/b"), "ovdep1") {
		t.Fatalf("the handoff: %+v, %v, links in /ns/b %v; want %s's end renamed ovdep1", p, err, dev.Links("/ns/b"), pooled[0].Name)
	}
	if calls := dev.Calls()[before:]; slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "MoveIn") }) {
		t.Fatalf("the take moved a link: %v", calls)
	}
}

// TestHandoffReturnsToPool: a runtime's port (a Docker endpoint's) goes
// back to the pool from where the runtime left its link (the handoff the
// delete names), not from a container; without that, it is detached.
func TestHandoffReturnsToPool(t *testing.T) {
	ctx := context.Background()
	h, _, dev := engineHost(t)
	h.Pool = poolstate.New(2, []string{"veth"})
	ho := &Handoff{Runtime: "docker", Netns: "/ns/b", Name: "ovdep1"}
	o := PortOptions{Bridge: "br0", Iface: "docker", Container: "ep1", Type: "veth", Addresses: []string{"10.1.0.7/24"}, Handoff: ho}
	p, err := h.AddPort(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.DelPortIfAttached(ctx, PortOptions{Bridge: "br0", Iface: "docker", Container: "ep1", Handoff: ho}); err != nil {
		t.Fatal(err)
	}
	pooled, err := h.DB.FindInterfaces(ctx, intent.OfPool("br0", "veth"))
	if err != nil || len(pooled) != 1 || pooled[0].Name != p.OVSPort || pooled[0].ExternalIDs[intent.KeyRuntime] != "" ||
		!slices.Contains(dev.Links(attachtest.Host), attach.PoolPeer(p.OVSPort)) {
		t.Fatalf("after the endpoint's delete: pool's rows %+v (%v), host links %v; want %s the pool's, its end in the host",
			pooled, err, dev.Links(attachtest.Host), p.OVSPort)
	}
	o.Container, o.Handoff = "ep2", &Handoff{Runtime: "docker", Netns: "/ns/b", Name: "ovdep2"}
	if _, err := h.AddPort(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := h.DelPortIfAttached(ctx, PortOptions{Bridge: "br0", Iface: "docker", Container: "ep2"}); err != nil {
		t.Fatal(err)
	}
	if rs := rowsOf(t, h, "ep2"); len(rs) != 0 {
		t.Fatalf("a delete that does not say where the runtime's link is left rows %+v", rs)
	}
}

// TestAttachRates: an attach's own cap, else its bridge's default, is
// written with its row and set by the attach (the container side through
// Configure, a veth's host end by the run); an ingress cap makes a typeless
// interface a veth and refuses an internal one; a failing host-end shaper
// rolls the attach back; a default that does not decode refuses.
func TestAttachRates(t *testing.T) {
	ctx := context.Background()
	h, _, dev := engineHost(t)
	own := eth1Of("a", "")
	own.Rate = intent.RateLimit{IngressRate: 20_000_000, EgressRate: 10_000_000}
	p, err := h.AddPort(ctx, own)
	if err != nil || p.Type != attach.TypeVeth || p.RateLimit != "in 20mbit, out 10mbit" {
		t.Fatalf("attach with its own cap: %+v, %v", p, err)
	}
	if cfg, _ := dev.Config("/ns/a", "eth1"); cfg.Egress.Rate != 10_000_000 || cfg.Egress.Burst != 1_000_000 {
		t.Fatalf("container side's shaper %+v", cfg.Egress)
	}
	if !slices.Contains(dev.Calls(), fmt.Sprintf("ShapeHostEnd %s 20000000", p.OVSPort)) {
		t.Fatalf("no host-end shaper: %v", dev.Calls())
	}
	intl := eth1Of("b", attach.TypeInternal)
	intl.Rate = intent.RateLimit{IngressRate: 20_000_000}
	if _, err := h.AddPort(ctx, intl); err == nil || !strings.Contains(err.Error(), "needs a veth") {
		t.Fatalf("internal port with an ingress cap: %v", err)
	}
	dev.Fail["ShapeHostEnd"] = errors.New("injected")
	if _, err := h.AddPort(ctx, own.with("b")); err == nil || !strings.Contains(err.Error(), "injected") || len(rowsOf(t, h, "b")) != 0 {
		t.Fatalf("failing shaper: %v, rows %v", err, rowsOf(t, h, "b"))
	}
	delete(dev.Fail, "ShapeHostEnd")

	setDefault := func(v string) {
		if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetBridgeExternalIDs("br0", map[string]string{intent.KeyRate: v}) }); err != nil {
			t.Fatal(err)
		}
	}
	setDefault("egress=30000000/3000000")
	p, err = h.AddPort(ctx, eth1Of("b", ""))
	if err != nil || p.Type != attach.TypeInternal || p.RateLimit != "out 30mbit" {
		t.Fatalf("attach under the bridge's default: %+v, %v", p, err)
	}
	setDefault("fast")
	if _, err := h.AddPort(ctx, eth1Of("c", "")); err == nil || !strings.Contains(err.Error(), "default rate limit") {
		t.Fatalf("attach under a default that does not decode: %v", err)
	}
	withOwn := eth1Of("c", "")
	withOwn.Rate = intent.RateLimit{EgressRate: 5_000_000}
	if _, err := h.AddPort(ctx, withOwn); err != nil {
		t.Fatalf("its own cap under a default that does not decode: %v", err)
	}
}

// with is o for container c (in /ns/c).
func (o PortOptions) with(c string) PortOptions {
	o.Container, o.Netns = c, "/ns/"+c
	return o
}
