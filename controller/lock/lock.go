// Package lock owns ovsnet's host locks: the controller lock (one
// controller per host) and the convergence lock that keeps CLI changes
// (shared) and convergence runs (exclusive) apart. Lock files are the
// owner's only, and a lock held elsewhere is reported with its holder.
package lock

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open opens (or makes) a lock file that only its owner can open: mode
// 0600, not through a symbolic link, owned by this user. A lock file others
// could open is a lock others could hold, and block ovsnet with. A file
// left 0644 by an older ovsnet is tightened.
func Open(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w (it must be a regular file, not a link)", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() {
		f.Close()
		return nil, fmt.Errorf("lock file %s is not a regular file owned by uid %d: remove it", path, os.Geteuid())
	}
	if st.Mode&0o077 != 0 {
		if err := unix.Fchmod(fd, 0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock file %s: %w", path, err)
		}
	}
	return f, nil
}

// Holders names the processes holding a lock on f's file, from
// /proc/locks: "pid 123 (ovsnet, uid 0)".
func Holders(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "unknown"
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	pl, err := os.Open("/proc/locks")
	if err != nil {
		return "unknown"
	}
	defer pl.Close()
	var who []string
	sc := bufio.NewScanner(pl)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked waiters have "->".
		if len(fs) < 6 || fs[1] == "->" || fs[5] != id {
			continue
		}
		who = append(who, describePid(fs[4]))
	}
	if len(who) == 0 {
		return "no process any more"
	}
	return strings.Join(who, ", ")
}

func describePid(pid string) string {
	comm, _ := os.ReadFile("/proc/" + pid + "/comm")
	var st syscall.Stat_t
	uid := "?"
	if syscall.Stat("/proc/"+pid, &st) == nil {
		uid = strconv.Itoa(int(st.Uid))
	}
	return fmt.Sprintf("pid %s (%s, uid %s)", pid, strings.TrimSpace(string(comm)), uid)
}

// ControllerPath is the per-host controller lock: next to the OVSDB
// socket, as OVS's own pid files are.
func ControllerPath(endpoint string) string {
	if p, ok := strings.CutPrefix(endpoint, "unix:"); ok {
		return filepath.Join(filepath.Dir(p), "ovsnet-controller.lock")
	}
	return "/var/run/openvswitch/ovsnet-controller.lock"
}

// ConvergePath is the lock that keeps CLI changes and the controller's
// convergence apart: the CLI holds it shared for its whole run (so CLI
// commands still run in parallel), a convergence run holds it exclusively.
// Without it, a resync computed from an older read could remove the flows
// of a port attached meanwhile.
func ConvergePath(endpoint string) string {
	return strings.TrimSuffix(ControllerPath(endpoint), "-controller.lock") + ".lock"
}

// Mode is how a run holds the convergence lock; the zero value is Shared.
type Mode int

const (
	Shared    Mode = iota // changes: they may run side by side
	Exclusive             // reconcile and convergence runs: must not see an attach half-way
	// Unlocked: a run that changes nothing convergence computes (a
	// capture's port and mirror) and may last hours, which must not
	// hold convergence off.
	Unlocked
)

// how is m as a flock operation.
func (m Mode) how() int {
	if m == Exclusive {
		return syscall.LOCK_EX
	}
	return syscall.LOCK_SH
}

// Converge takes the convergence lock for a CLI run; it is released when
// the process exits. No run directory here (a remote OVSDB) means no
// controller to race with; a lock file others could hold is an error.
func Converge(endpoint string, m Mode) error {
	if m == Unlocked {
		return nil
	}
	f, err := Open(ConvergePath(endpoint))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil // no run directory here, or not root: nothing to race with
	}
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), m.how()); err != nil {
		f.Close()
		return fmt.Errorf("take the convergence lock %s: %w", f.Name(), err)
	}
	heldMu.Lock()
	held = append(held, f) // open until exit, and the lock with it
	heldMu.Unlock()
	return nil
}

// held are the lock files Converge took for this process's run. They are
// referenced here for as long as the process lives: an *os.File nothing
// references is closed by its finalizer at a garbage collection, and its
// flock goes with it, in the middle of the change the lock guards (a
// convergence run then saw a CNI ADD half made and undid it).
var (
	heldMu sync.Mutex
	held   []*os.File
)

// Take holds the lock file f in mode m until f is closed.
func Take(f *os.File, m Mode) error {
	if err := syscall.Flock(int(f.Fd()), m.how()); err != nil {
		return fmt.Errorf("take the lock %s: %w", f.Name(), err)
	}
	return nil
}

// Release lets go of a lock Take took, keeping f open.
func Release(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// Controller takes the host's controller lock, or says who holds it.
func Controller(endpoint string) (*os.File, error) {
	path := ControllerPath(endpoint)
	f, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("controller lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		who := Holders(f)
		f.Close()
		return nil, fmt.Errorf("the controller lock %s is held by %s: another ovsnet controller is running on this host, stop it first", path, who)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}
