package ovsdb

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RunDir is where OVS's tools find ovs-vswitchd's pid file and the
// database's socket.
func RunDir() string { return cmp.Or(os.Getenv("OVS_RUNDIR"), "/var/run/openvswitch") }

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
