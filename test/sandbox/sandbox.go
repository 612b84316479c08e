// Package sandbox runs a private Open vSwitch (ovsdb-server and ovs-vswitchd
// on the userspace datapath) inside a network namespace that acts as a
// host, with its own OVS_RUNDIR, and tears it all down. End-to-end tests,
// the demo and benchmarks use it; it never touches the machine's own
// namespace, firewall or OVS.
package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// Schema is where Debian's openvswitch-common keeps the database schema.
var Schema = "/usr/share/openvswitch/vswitch.ovsschema"

// Sandbox is one hermetic OVS host.
type Sandbox struct {
	Netns string // network namespace of the host
	Dir   string // OVS_RUNDIR, OVS_LOGDIR and the database
}

// DB is the OVSDB endpoint of the sandbox.
func (s *Sandbox) DB() string { return "unix:" + filepath.Join(s.Dir, "db.sock") }

// Env is the environment OVS tools and ovsnet need to find this sandbox.
func (s *Sandbox) Env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+s.Dir, "OVS_LOGDIR="+s.Dir, "OVS_DBDIR="+s.Dir, "OVSNET_DB="+s.DB(),
		"OVN_RUNDIR="+s.Dir, "OVN_LOGDIR="+s.Dir)
}

// Command returns a command that runs inside the sandbox host's netns with
// the sandbox's environment.
func (s *Sandbox) Command(name string, args ...string) *exec.Cmd {
	c := exec.Command("ip", append([]string{"netns", "exec", s.Netns, name}, args...)...)
	c.Env = s.Env()
	return c
}

// Run runs a command in the sandbox and returns its stdout, or an error with
// its stderr.
func (s *Sandbox) Run(name string, args ...string) (string, error) {
	return output(s.Command(name, args...))
}

// Vsctl runs ovs-vsctl against the sandbox's database.
func (s *Sandbox) Vsctl(args ...string) (string, error) {
	return s.Run("ovs-vsctl", append([]string{"--db=" + s.DB(), "--timeout=10"}, args...)...)
}

func output(c *exec.Cmd) (string, error) {
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(c.Args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// AddNetns creates a named network namespace with loopback up.
func AddNetns(name string) error {
	if _, err := output(exec.Command("ip", "netns", "add", name)); err != nil {
		return err
	}
	_, err := output(exec.Command("ip", "-n", name, "link", "set", "lo", "up"))
	return err
}

// DelNetns deletes a named network namespace (and every link in it).
func DelNetns(name string) error {
	_, err := output(exec.Command("ip", "netns", "del", name))
	return err
}

// Options tune a sandbox.
type Options struct {
	// NoUserspaceTSO leaves other_config:userspace-tso-enable unset. By
	// default a sandbox enables it, as a tuned userspace-datapath host
	// would: it lifts TCP between internal ports from ~0.9 to ~11 Gbit/s here.
	NoUserspaceTSO bool
}

// Start creates the namespace name and starts OVS in it with default
// options. Dir is created under base (os.TempDir() if empty).
func Start(name, base string) (*Sandbox, error) { return StartWith(name, base, Options{}) }

// StartWith is Start with options.
func StartWith(name, base string, o Options) (*Sandbox, error) {
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		return nil, fmt.Errorf("ovs-vswitchd not installed: apt-get install openvswitch-switch")
	}
	dir, err := os.MkdirTemp(base, "ovs-"+name+"-")
	if err != nil {
		return nil, err
	}
	s := &Sandbox{Netns: name, Dir: dir}
	if err := AddNetns(name); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sandbox) start(o Options) error {
	if _, err := output(exec.Command("ovsdb-tool", "create", filepath.Join(s.Dir, "conf.db"), Schema)); err != nil {
		return err
	}
	if err := s.startOVSDB(); err != nil {
		return err
	}
	if _, err := s.Vsctl("--no-wait", "init"); err != nil {
		return err
	}
	if !o.NoUserspaceTSO {
		// Read by ovs-vswitchd at start only.
		if _, err := s.Vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:userspace-tso-enable=true"); err != nil {
			return err
		}
	}
	return s.StartVswitchd()
}

func (s *Sandbox) startOVSDB() error {
	_, err := s.Run("ovsdb-server", filepath.Join(s.Dir, "conf.db"), "--remote=punix:"+filepath.Join(s.Dir, "db.sock"),
		"--pidfile="+filepath.Join(s.Dir, "ovsdb-server.pid"), "--log-file="+filepath.Join(s.Dir, "ovsdb-server.log"),
		"--detach")
	return err
}

// RestartOVSDB stops and starts ovsdb-server on the same database.
func (s *Sandbox) RestartOVSDB() error {
	if err := s.kill("ovsdb-server"); err != nil {
		return err
	}
	return s.startOVSDB()
}

// StartVswitchd starts ovs-vswitchd (again, after StopVswitchd). Its
// control socket keeps OVS's default name in Dir, so that ovs-appctl finds
// it through OVS_RUNDIR as on a real host.
//
// On the kernel datapath it also waits until ovs-vswitchd handles upcalls:
// for its first seconds (its CPU count not yet read; seen in test/vm's VM,
// ~5 s) it runs no handler threads, and packets that miss the datapath's
// flow cache are lost.
func (s *Sandbox) StartVswitchd() error {
	log := filepath.Join(s.Dir, "ovs-vswitchd.log")
	if _, err := s.Run("ovs-vswitchd", s.DB(), "--pidfile="+filepath.Join(s.Dir, "ovs-vswitchd.pid"),
		"--log-file="+log, "-vconsole:off", "--detach"); err != nil {
		return err
	}
	if _, err := netlink.GenlFamilyGet("ovs_datapath"); err != nil {
		return nil // the userspace datapath: its PMD and main threads take every packet
	}
	return s.waitHandlers(log)
}

var handlersRE = regexp.MustCompile(`n-handler-threads to ([0-9]+)`)

// waitHandlers makes the kernel datapath exist (a bridge, deleted after)
// and waits, up to 30 s, until ovs-vswitchd's log says it has handler
// threads for it.
func (s *Sandbox) waitHandlers(log string) error {
	const probe = "ovs-sbprobe"
	if _, err := s.Vsctl("add-br", probe, "--", "set", "bridge", probe, "datapath_type=system"); err != nil {
		return err
	}
	defer s.Vsctl("--if-exists", "del-br", probe)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(log)
		if m := handlersRE.FindAllSubmatch(b, -1); len(m) > 0 && string(m[len(m)-1][1]) != "0" {
			return nil
		}
	}
	return fmt.Errorf("ovs-vswitchd in %s started no upcall handler threads within 30 s (see %s)", s.Netns, log)
}

// StopVswitchd kills ovs-vswitchd and waits until it is gone.
func (s *Sandbox) StopVswitchd() error { return s.kill("ovs-vswitchd") }

// VswitchdPid is the pid ovs-vswitchd wrote to its pidfile (0 if none).
func (s *Sandbox) VswitchdPid() int {
	pid, _ := readPid(filepath.Join(s.Dir, "ovs-vswitchd.pid"))
	return pid
}

// readPid is the pid in pid file path.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (s *Sandbox) kill(daemon string) error { return killPidfile(filepath.Join(s.Dir, daemon+".pid")) }

// killPidfile stops the daemon whose pid file is path (TERM, then KILL
// after 5 s) and waits until it is gone.
func killPidfile(path string) error {
	pid, err := readPid(path)
	var garbled *strconv.NumError
	switch {
	case errors.As(err, &garbled):
		return err
	case err != nil:
		return nil // no pid file: not running
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil
	}
	for i := 0; i < 500; i++ {
		if syscall.Kill(pid, 0) != nil {
			os.Remove(path)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return nil
}

// Close stops OVS, deletes the namespace (and the links in it) and the
// directory.
func (s *Sandbox) Close() error {
	errs := []error{s.kill("ovn-controller"), s.kill("ovs-vswitchd"), s.kill("ovsdb-server"), DelNetns(s.Netns)}
	if os.Getenv("OVSNET_KEEP_SANDBOX") == "" {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	return errors.Join(errs...)
}

// UnderlayAddr is the underlay address of the i-th host Join connects:
// 192.0.2.(i+1) (TEST-NET-1, documentation addresses).
func UnderlayAddr(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }

// Join connects sandbox hosts as machines on one LAN: a Linux bridge in a
// namespace of its own (the switch, named sw) and, on host i, a veth "ul0"
// with UnderlayAddr(i)/24. Deleting sw (DelNetns) unplugs them all.
func Join(sw string, hosts ...*Sandbox) error { return lan(sw, "", "ul0", UnderlayAddr, hosts) }

// UplinkAddr is the outside's address on the segment JoinUplinks makes:
// 198.51.100.1 (TEST-NET-2), the next hop of routers leaving through it.
const UplinkAddr = "198.51.100.1"

// JoinUplinks connects hosts to an outside segment, apart from their
// underlay: a Linux bridge in namespace sw, which is also the outside
// machine itself (UplinkAddr/24 on the bridge), and on each host a veth
// "up0" with no address, for an OVN uplink to take. Deleting sw unplugs
// them all.
//
// The outside finishes its TCP checksums itself (TX checksum offload off
// on its bridge), as a machine behind a NIC does: a veth would hand its
// segments on with the checksum left for hardware that is not there, and
// OVS's userspace datapath forwards them unfinished (receivers drop them;
// ping, checksummed in software, would pass).
func JoinUplinks(sw string, hosts ...*Sandbox) error {
	if err := lan(sw, UplinkAddr+"/24", "up0", nil, hosts); err != nil {
		return err
	}
	if _, err := output(exec.Command("ip", "netns", "exec", sw, "ethtool", "-K", "sw", "tx", "off")); err != nil {
		DelNetns(sw)
		return err
	}
	return nil
}

// lan is a Linux bridge "sw" in namespace sw (with address swAddr unless
// empty) and a veth dev on each host plugged into it, with addr(i)/24
// unless addr is nil.
func lan(sw, swAddr, dev string, addr func(int) string, hosts []*Sandbox) error {
	if err := AddNetns(sw); err != nil {
		return err
	}
	cmds := [][]string{{"-n", sw, "link", "add", "sw", "type", "bridge"}, {"-n", sw, "link", "set", "sw", "up"}}
	if swAddr != "" {
		cmds = append(cmds, []string{"-n", sw, "addr", "add", swAddr, "dev", "sw"})
	}
	for i, h := range hosts {
		port := fmt.Sprintf("p%d", i)
		cmds = append(cmds, []string{"-n", h.Netns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", sw})
		if addr != nil {
			cmds = append(cmds, []string{"-n", h.Netns, "addr", "add", addr(i) + "/24", "dev", dev})
		}
		cmds = append(cmds, []string{"-n", h.Netns, "link", "set", dev, "up"}, []string{"-n", sw, "link", "set", port, "master", "sw", "up"})
	}
	for _, c := range cmds {
		if _, err := output(exec.Command("ip", c...)); err != nil {
			DelNetns(sw)
			return err
		}
	}
	return nil
}
