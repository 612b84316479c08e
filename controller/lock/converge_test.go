package lock

import (
	"errors"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestConvergeLockOutlivesGC: the convergence lock a CLI or CNI run takes
// lasts until the process exits: no garbage collection closes its file
// (an unreferenced *os.File is closed by its finalizer, and its flock goes
// with it, in the middle of the change it guards).
func TestConvergeLockOutlivesGC(t *testing.T) {
	endpoint := "unix:" + filepath.Join(t.TempDir(), "db.sock")
	if err := Converge(endpoint, Shared); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // finalizers run on their own goroutine
	}
	other, err := Open(ConvergePath(endpoint))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("an exclusive lock while the run holds it shared: %v, want EWOULDBLOCK", err)
	}
}
