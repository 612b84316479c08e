package network

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// openLock opens (or makes) a lock file that only its owner can open: mode
// 0600, not through a symbolic link, owned by this user. A lock file others
// could open is a lock others could hold, and block ovsnet with. A file
// left 0644 by an older ovsnet is tightened.
func openLock(path string) (*os.File, error) {
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

// lockHolders names the processes holding a lock on f's file, from
// /proc/locks: "pid 123 (ovsnet, uid 0)".
func lockHolders(f *os.File) string {
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
