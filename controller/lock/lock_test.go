package lock

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A run's zero Mode holds the lock shared; Exclusive alone.
func TestModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ovsnet.lock")
	hold := func(m Mode) *os.File {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := Take(f, m); err != nil {
			t.Fatal(err)
		}
		return f
	}
	try := func(how int) error {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	}
	var zero Mode
	a := hold(zero)
	if err := try(syscall.LOCK_SH); err != nil {
		t.Errorf("a second shared holder is refused: %v", err)
	}
	if err := try(syscall.LOCK_EX); err == nil {
		t.Error("an exclusive holder gets in beside a shared one")
	}
	a.Close()
	b := hold(Exclusive)
	if err := try(syscall.LOCK_SH); err == nil {
		t.Error("a shared holder gets in beside an exclusive one")
	}
	b.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, %v", st.Mode(), err)
	}
}
