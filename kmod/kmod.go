// Package kmod says whether the running kernel has a module: loaded,
// built in, or installed where the kernel loads it on first use. ovsnet
// asks before it picks a path that needs one (a kernel gretap device for
// GRE on the userspace datapath) and doctor reports the answer, so that a
// choice never depends on a request failing first.
package kmod

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// State is what the kernel has of a module.
type State int

const (
	Absent    State = iota // not loaded, built in or installed
	Installed              // a module file the kernel loads when first asked
	BuiltIn                // compiled into the kernel
	Loaded                 // in /sys/module now
)

// Has reports whether the state means the kernel can use the module.
func (s State) Has() bool { return s != Absent }

func (s State) String() string {
	return [...]string{"absent", "installed", "built in", "loaded"}[s]
}

// Of is the running kernel's state of module name (as modprobe names it,
// with underscores: ip_gre, sch_netem).
func Of(name string) State {
	var uts unix.Utsname
	release := ""
	if unix.Uname(&uts) == nil {
		release = unix.ByteSliceToString(uts.Release[:])
	}
	return state("/", release, name)
}

// state is Of under root for kernel release, for tests.
func state(root, release, name string) State {
	if _, err := os.Stat(filepath.Join(root, "sys/module", name)); err == nil {
		return Loaded
	}
	if release == "" {
		return Absent
	}
	dir := filepath.Join(root, "lib/modules", release)
	if listed(filepath.Join(dir, "modules.builtin"), name) {
		return BuiltIn
	}
	if listed(filepath.Join(dir, "modules.dep"), name) {
		return Installed
	}
	return Absent
}

// listed says whether a modules.builtin or modules.dep file names
// module name's file (kernel/.../NAME.ko, compressed or not; the file
// spells a module's underscores as underscores or dashes).
func listed(file, name string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		path, _, _ := strings.Cut(line, ":")
		base := filepath.Base(strings.TrimSpace(path))
		if i := strings.Index(base, ".ko"); i > 0 && strings.ReplaceAll(base[:i], "-", "_") == name {
			return true
		}
	}
	return false
}
