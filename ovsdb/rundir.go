package ovsdb

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RunDir is where OVS's tools find ovs-vswitchd's pid file and the
// database's socket.
func RunDir() string { return cmp.Or(os.Getenv("OVS_RUNDIR"), "/var/run/openvswitch") }

// VswitchdCPU is the CPU time ovs-vswitchd (found by its pidfile where
// OVS's tools find it) has used, or -1: how a caller waiting on it tells
// a busy ovs-vswitchd from a stuck one.
func VswitchdCPU() time.Duration {
	pid, err := VswitchdPid(RunDir())
	if err != nil {
		return -1
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name: state is 0, utime 11, stime 12.
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.Atoi(f[11])
	sy, _ := strconv.Atoi(f[12])
	return time.Duration(u+sy) * 10 * time.Millisecond // USER_HZ 100
}

// VswitchdPid is the pid in ovs-vswitchd's pid file in dir.
func VswitchdPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid <= 0 {
		err = fmt.Errorf("bad pid %d", pid)
	}
	return pid, err
}
