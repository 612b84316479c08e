package kmod

import (
	"os"
	"path/filepath"
	"testing"
)

// A module is loaded (sys/module), built in (modules.builtin), installed
// (modules.dep, compressed or dashed) or absent; a name that is only a
// prefix of another module's, or named only as a dependency, is not that
// module.
func TestState(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sys/module/vxlan/refcnt", "1\n")
	write("lib/modules/6.1.0-1/modules.builtin", "kernel/net/sched/sch_tbf.ko\n")
	write("lib/modules/6.1.0-1/modules.dep",
		"kernel/net/ipv4/ip_gre.ko.xz: kernel/net/ipv4/gre.ko.xz kernel/net/ipv4/ip_tunnel.ko.xz\n"+
			"kernel/net/sched/sch-netem.ko:\n")
	for name, want := range map[string]State{
		"vxlan": Loaded, "sch_tbf": BuiltIn, "ip_gre": Installed, "gre": Absent, // only as a dependency: every module has its own line
		"sch_netem": Installed, "ip_tunnel": Absent, "ip": Absent, "geneve": Absent,
	} {
		if got := state(root, "6.1.0-1", name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if got := state(root, "", "ip_gre"); got != Absent {
		t.Errorf("no release: %v", got)
	}
	if Absent.Has() || !Installed.Has() {
		t.Error("Has")
	}
}
