package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// OVN's schemas, where Debian's ovn-common keeps them.
var (
	NBSchema = "/usr/share/ovn/ovn-nb.ovsschema"
	SBSchema = "/usr/share/ovn/ovn-sb.ovsschema"
)

// Central is a hermetic OVN central node: the northbound and southbound
// ovsdb-servers and ovn-northd in a namespace of their own, on unix
// sockets in Dir (namespaces share the file system, so sandbox hosts reach
// them there).
type Central struct {
	Netns, Dir string
}

// NB is the northbound database's endpoint.
func (c *Central) NB() string { return "unix:" + filepath.Join(c.Dir, "nb.sock") }

// SB is the southbound database's endpoint.
func (c *Central) SB() string { return "unix:" + filepath.Join(c.Dir, "sb.sock") }

// StartCentral creates the namespace name and starts OVN's central
// daemons in it; Dir is created under base (os.TempDir() if empty).
func StartCentral(name, base string) (*Central, error) {
	if _, err := exec.LookPath("ovn-northd"); err != nil {
		return nil, fmt.Errorf("ovn-northd not installed: apt-get install ovn-central ovn-host")
	}
	dir, err := os.MkdirTemp(base, "ovn-"+name+"-")
	if err != nil {
		return nil, err
	}
	c := &Central{Netns: name, Dir: dir}
	if err := AddNetns(name); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.start(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Central) start() error {
	in := func(args ...string) error {
		_, err := output(exec.Command("ip", append([]string{"netns", "exec", c.Netns}, args...)...))
		return err
	}
	// As Debian's ovn-ctl starts them: also listening where the database's
	// own Connection rows say (ovn-nbctl/ovn-sbctl set-connection).
	for _, db := range []struct{ name, schema, conns string }{{"nb", NBSchema, "db:OVN_Northbound,NB_Global,connections"},
		{"sb", SBSchema, "db:OVN_Southbound,SB_Global,connections"}} {
		file := filepath.Join(c.Dir, db.name+".db")
		if _, err := output(exec.Command("ovsdb-tool", "create", file, db.schema)); err != nil {
			return err
		}
		if err := in("ovsdb-server", file, "--remote=punix:"+filepath.Join(c.Dir, db.name+".sock"), "--remote="+db.conns, c.daemon(db.name), "--detach",
			"--log-file="+filepath.Join(c.Dir, db.name+".log"), "--unixctl="+filepath.Join(c.Dir, db.name+".ctl")); err != nil {
			return err
		}
	}
	return in("ovn-northd", "--ovnnb-db="+c.NB(), "--ovnsb-db="+c.SB(), c.daemon("northd"), "--detach",
		"--log-file="+filepath.Join(c.Dir, "northd.log"), "--unixctl="+filepath.Join(c.Dir, "northd.ctl"))
}

func (c *Central) daemon(name string) string { return "--pidfile=" + filepath.Join(c.Dir, name+".pid") }

// RestartNorthd stops ovn-northd and starts it again.
func (c *Central) RestartNorthd() error {
	killPidfile(filepath.Join(c.Dir, "northd.pid"))
	_, err := output(exec.Command("ip", "netns", "exec", c.Netns, "ovn-northd", "--ovnnb-db="+c.NB(), "--ovnsb-db="+c.SB(),
		c.daemon("northd"), "--detach", "--log-file="+filepath.Join(c.Dir, "northd.log"), "--unixctl="+filepath.Join(c.Dir, "northd.ctl")))
	return err
}

// Close stops the daemons and deletes the namespace and the directory.
func (c *Central) Close() error {
	for _, d := range []string{"northd", "sb", "nb"} {
		killPidfile(filepath.Join(c.Dir, d+".pid"))
	}
	errs := []error{DelNetns(c.Netns)}
	if os.Getenv("OVSNET_KEEP_SANDBOX") == "" {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	return errors.Join(errs...)
}

// StartOVNController runs ovn-controller on the sandbox host (its pid file
// and control socket in Dir, which the sandbox's environment names as
// OVN_RUNDIR); Close stops it.
func (s *Sandbox) StartOVNController() error {
	_, err := s.Run("ovn-controller", s.DB(), "--pidfile="+filepath.Join(s.Dir, "ovn-controller.pid"),
		"--log-file="+filepath.Join(s.Dir, "ovn-controller.log"), "--detach")
	return err
}

// StopOVNController stops ovn-controller and waits until it is gone.
func (s *Sandbox) StopOVNController() error { return s.kill("ovn-controller") }

// Crash kills the daemons (SIGKILL: no clean exit, as when a host dies)
// and waits until each is gone.
func (s *Sandbox) Crash(daemons ...string) error {
	for _, d := range daemons {
		path := filepath.Join(s.Dir, d+".pid")
		pid, err := readPid(path)
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		for alive(pid) {
			time.Sleep(10 * time.Millisecond)
		}
		os.Remove(path)
	}
	return nil
}

// alive says whether pid runs (a zombie, killed but not yet reaped by a
// PID 1 that may never reap it, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
