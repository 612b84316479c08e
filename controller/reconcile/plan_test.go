package reconcile

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

func ifaceWith(name, typ, state, netns string) vswitchd.Interface {
	ext := map[string]string{intent.KeyOwner: intent.OwnerOvsnet, intent.KeyContainerID: "c-" + name, intent.KeyContainerIface: "eth1",
		intent.KeyState: state, intent.KeyNetns: netns}
	return vswitchd.Interface{UUID: "u-" + name, Name: name, Type: typ, ExternalIDs: ext}
}

func docker(i vswitchd.Interface) vswitchd.Interface {
	i.ExternalIDs[intent.KeyRuntime] = "docker"
	return i
}

func cni(i vswitchd.Interface) vswitchd.Interface {
	i.ExternalIDs[intent.KeyCNINetwork] = "net1"
	return i
}

func pooled(i vswitchd.Interface) vswitchd.Interface {
	i.ExternalIDs[intent.KeyPool] = "true"
	delete(i.ExternalIDs, intent.KeyContainerID)
	delete(i.ExternalIDs, intent.KeyContainerIface)
	delete(i.ExternalIDs, intent.KeyNetns)
	return i
}

// A pool's port is checked for its devices, removed when its making died
// half-way, detached when its detach did; a container's row that also
// says pooled (tampered) is a container's, never the pool's to remove.
func TestPlanPooled(t *testing.T) {
	tampered := ifaceWith("t", "", intent.StateReady, "/n")
	tampered.ExternalIDs[intent.KeyPool] = "true"
	for _, c := range []struct {
		ifc  vswitchd.Interface
		want portStep
	}{
		{pooled(ifaceWith("p", "", intent.StateReady, "")), checkPooled},
		{pooled(ifaceWith("q", "internal", intent.StateReady, "")), checkPooled},
		{pooled(ifaceWith("r", "", intent.StateAttaching, "")), finishDetach},
		{pooled(ifaceWith("s", "internal", intent.StateDetaching, "")), finishDetach},
		{tampered, checkVeth},
	} {
		if got := planPort(c.ifc); got != c.want {
			t.Errorf("%s: planPort = %d, want %d", c.ifc.Name, got, c.want)
		}
	}
}

func TestPlanPort(t *testing.T) {
	for _, c := range []struct {
		ifc  vswitchd.Interface
		want portStep
	}{
		{vswitchd.Interface{Name: "eth0"}, leave}, // not ovsnet's
		{ifaceWith("a", "", intent.StateDetaching, "/n"), finishDetach},
		{ifaceWith("b", "internal", intent.StateAttaching, "/n"), finishAttach},
		{ifaceWith("c", "internal", intent.StateReady, "/n"), reattachInternal},
		{ifaceWith("d", "", intent.StateReady, "/n"), checkVeth},
		{ifaceWith("e", "vxlan", intent.StateReady, ""), leave}, // a tunnel port
		{docker(ifaceWith("f", "", intent.StateAttaching, "")), finishDetach},
		{docker(ifaceWith("g", "", intent.StateReady, "")), checkVeth},
		{cni(ifaceWith("h", "internal", intent.StateAttaching, "/n")), finishDetach}, // the runtime was told ADD failed
		{cni(ifaceWith("i", "internal", intent.StateReady, "/n")), reattachInternal},
	} {
		if got := planPort(c.ifc); got != c.want {
			t.Errorf("%s (%q, %q): %v, want %v", c.ifc.Name, c.ifc.Type, c.ifc.ExternalIDs[intent.KeyState], got, c.want)
		}
	}
}

// topology is one bridge holding ifs, one port each.
func topology(bridge map[string]string, ifs ...vswitchd.Interface) *ovsdb.Topology {
	topo := &ovsdb.Topology{Ports: map[string]vswitchd.Port{}, Interfaces: map[string]vswitchd.Interface{}}
	b := vswitchd.Bridge{UUID: "br", Name: "br1", ExternalIDs: bridge}
	for _, i := range ifs {
		p := vswitchd.Port{UUID: "p-" + i.Name, Name: i.Name, Interfaces: []string{i.UUID}}
		topo.Ports[p.UUID], topo.Interfaces[i.UUID] = p, i
		b.Ports = append(b.Ports, p.UUID)
	}
	topo.Bridges = []vswitchd.Bridge{b}
	return topo
}

func TestVanished(t *testing.T) {
	topo := topology(intent.NewBridge(), ifaceWith("a", "", intent.StateReady, "/gone"), ifaceWith("b", "", intent.StateReady, "/here"),
		ifaceWith("c", "internal", intent.StateReady, ""), vswitchd.Interface{UUID: "u-x", Name: "x"})
	exists := func(ns string) bool { return ns == "/here" }
	got := vanished(topo, exists)
	if len(got) != 1 || got[0].ifc.Name != "a" || got[0].bridge != "br1" || got[0].port.Name != "a" {
		t.Fatalf("vanished: %+v", got)
	}
}

func TestUnfinishedDeletes(t *testing.T) {
	deleting := intent.NewBridge()
	for k, v := range intent.Deleting() {
		deleting[k] = v
	}
	if got := unfinishedDeletes(topology(deleting)); !reflect.DeepEqual(got, []string{"br1"}) {
		t.Errorf("marked deleting: %v", got)
	}
	if got := unfinishedDeletes(topology(intent.NewBridge())); got != nil {
		t.Errorf("not marked: %v", got)
	}
	if got := unfinishedDeletes(topology(intent.Deleting())); got != nil { // not ovsnet's
		t.Errorf("not ovsnet's: %v", got)
	}
}

func TestOrphanStep(t *testing.T) {
	o := orphan{bridge: "br1", ifc: ifaceWith("a", "", intent.StateReady, "/proc/10/ns/net")}
	for _, c := range []struct {
		name    string
		exists  bool
		running *containers.Target
		err     error
		want    orphanAction
	}{
		{"removed", false, nil, nil, remove},
		{"stopped", true, nil, nil, keep},
		{"started again", true, &containers.Target{Netns: "/proc/20/ns/net"}, nil, reattach},
		{"still in its namespace", true, &containers.Target{Netns: "/proc/10/ns/net"}, nil, keep},
		{"engine down", false, nil, errors.New("unreachable"), keep},
	} {
		lookup := func(_ context.Context, ref string) (bool, *containers.Target, error) {
			if ref != "c-a" {
				t.Fatalf("looked up %q", ref)
			}
			return c.exists, c.running, c.err
		}
		if got, err := orphanStep(context.Background(), o, lookup); got != c.want || (err != nil) != (c.err != nil) {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
	// A CNI attachment's namespace gone is its end: no runtime is asked.
	o.ifc = cni(o.ifc)
	if got, err := orphanStep(context.Background(), o, nil); got != remove || err != nil {
		t.Errorf("CNI attachment: %v %v, want remove", got, err)
	}
}

// TestSettledReadsTheDatabase: a run's topology (the monitor's cache) may
// show a CNI attach half-made whose mark "ready" is already committed; the
// run plans from the row as the database holds it, so the working port is
// left alone; a row still half-made there is finished, a gone one left.
func TestSettledReadsTheDatabase(t *testing.T) {
	ctx := context.Background()
	c, _ := seeded(t)
	topo, err := c.host.DB.ReadAllFresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ifs, ports := topo.BridgeInterfaces(topo.Bridge("br0"))
	a := slices.IndexFunc(ifs, func(i vswitchd.Interface) bool { return i.Name == "on-a" })
	stale := ifs[a]
	stale.ExternalIDs = maps.Clone(stale.ExternalIDs)
	stale.ExternalIDs[intent.KeyState] = intent.StateAttaching
	stale.ExternalIDs[intent.KeyCNINetwork] = "net1"
	if planPort(stale) != finishDetach {
		t.Fatalf("the stale row plans %v, not finishDetach: the test proves nothing", planPort(stale))
	}
	now, step, err := c.settled(ctx, stale)
	if err != nil || step != checkVeth || intent.RefOf(now.ExternalIDs).State != intent.StateReady {
		t.Fatalf("settled(stale) = %v %v %v, want the ready row and checkVeth", now.ExternalIDs, step, err)
	}

	set := map[string]string{intent.KeyState: intent.StateAttaching, intent.KeyCNINetwork: "net1"}
	if _, err := c.host.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetInterfaceExternalIDs(stale.UUID, set) }); err != nil {
		t.Fatal(err)
	}
	if _, step, err := c.settled(ctx, ifs[a]); err != nil || step != finishDetach {
		t.Fatalf("settled(a row half-made in the database) = %v %v, want finishDetach", step, err)
	}

	if _, err := c.host.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.DeletePorts("br0", ports[a].UUID) }); err != nil {
		t.Fatal(err)
	}
	if _, step, err := c.settled(ctx, stale); err != nil || step != leave {
		t.Fatalf("settled(a gone row) = %v %v, want leave", step, err)
	}
}
