package measure

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Launcher starts commands inside a network namespace without `ip netns
// exec` (about 2.5 ms a command here, a third of an ovsnet attach through
// the controller): a thread of this process is moved into the namespace for
// good and every command is forked from it, so children start there.
type Launcher struct {
	run chan func()
}

// NewLauncher returns a launcher for the named netns (/run/netns/NAME).
func NewLauncher(netns string) (*Launcher, error) {
	l := &Launcher{run: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread leaves with the netns it was given
		// when the goroutine ends, rather than going back to the pool.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", netns))
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		errc <- err
		if err != nil {
			return
		}
		for do := range l.run {
			do()
		}
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("enter netns %s: %w", netns, err)
	}
	return l, nil
}

// Start starts c from the namespace's thread.
func (l *Launcher) Start(c *exec.Cmd) error {
	errc := make(chan error)
	l.run <- func() { errc <- c.Start() }
	return <-errc
}

// Do runs f on the namespace's thread: netlink calls made there address the
// namespace's devices.
func (l *Launcher) Do(f func()) {
	done := make(chan struct{})
	l.run <- func() { f(); close(done) }
	<-done
}

// Timed runs c to completion and returns its wall time in ms, from just
// before the fork to the child's exit. Its output goes to the error, or
// where the caller pointed c.Stdout.
func (l *Launcher) Timed(c *exec.Cmd) (float64, error) {
	var out strings.Builder
	if c.Stdout == nil {
		c.Stdout = &out
	}
	c.Stderr = &out
	t := time.Now()
	if err := l.Start(c); err != nil {
		return 0, err
	}
	err := c.Wait()
	ms := float64(time.Since(t).Microseconds()) / 1000
	if err != nil {
		return ms, fmt.Errorf("%s: %v: %s", strings.Join(c.Args, " "), err, out.String())
	}
	return ms, nil
}

// Close ends the namespace's thread.
func (l *Launcher) Close() { close(l.run) }

// Notify is a systemd notify socket of a benchmark's own, on which the
// controller it starts (NOTIFY_SOCKET) reports its first convergence, as it
// does to systemd (its unit is Type=notify).
type Notify struct {
	ln   *net.UnixConn
	Path string
}

// NewNotify listens on notify-bench.sock in dir.
func NewNotify(dir string) (*Notify, error) {
	path := filepath.Join(dir, "notify-bench.sock")
	os.Remove(path)
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &Notify{ln: ln, Path: path}, nil
}

// WaitReady returns when READY=1 arrives, or fails after limit.
func (n *Notify) WaitReady(limit time.Duration) error {
	n.ln.SetReadDeadline(time.Now().Add(limit))
	for buf := make([]byte, 512); ; {
		k, err := n.ln.Read(buf)
		if err != nil {
			return fmt.Errorf("controller did not report READY=1: %w", err)
		}
		if strings.Contains(string(buf[:k]), "READY=1") {
			return nil
		}
	}
}

// Close removes the socket.
func (n *Notify) Close() { n.ln.Close() }

// StartController starts `ovsnet controller` (cmd, made by the caller with
// the sandbox's environment) and returns once it has reported its first
// convergence on a notify socket in dir. stop kills it.
func (l *Launcher) StartController(cmd *exec.Cmd, dir string) (stop func(), err error) {
	n, err := NewNotify(dir)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+n.Path)
	if err := l.Start(cmd); err != nil {
		return nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	if err := n.WaitReady(5 * time.Minute); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}
