// Package appctl sends commands to ovs-vswitchd's control socket, as
// ovs-appctl does: JSON-RPC over $OVS_RUNDIR/ovs-vswitchd.PID.ctl, one
// request and one reply per call, no process started.
package appctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovsnet/ovsnet/ovsdb"
)

// Socket is ovs-vswitchd's control socket in dir (its pid file names it).
func Socket(dir string) (string, error) {
	pid, err := ovsdb.VswitchdPid(dir)
	if err != nil {
		return "", fmt.Errorf("ovs-vswitchd is not running (no pid file in %s: %v)", dir, err)
	}
	return filepath.Join(dir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid)), nil
}

type request struct {
	ID     int      `json:"id"`
	Method string   `json:"method"`
	Params []string `json:"params"`
}

type reply struct {
	ID     int              `json:"id"`
	Result *string          `json:"result"`
	Error  *json.RawMessage `json:"error"`
}

// Call runs command with args on ovs-vswitchd (found in ovsdb.RunDir) and
// returns its text. The context bounds the whole exchange.
func Call(ctx context.Context, command string, args ...string) (string, error) {
	sock, err := Socket(ovsdb.RunDir())
	if err != nil {
		return "", err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return "", fmt.Errorf("ovs-vswitchd does not answer on %s: %w", sock, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if args == nil {
		args = []string{}
	}
	if err := json.NewEncoder(c).Encode(request{Method: command, Params: args}); err != nil {
		return "", fmt.Errorf("ovs-vswitchd %s: %w", command, err)
	}
	var r reply
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("ovs-vswitchd %s: no reply: %w", command, err)
	}
	if r.Error != nil && string(*r.Error) != "null" {
		var msg string
		if json.Unmarshal(*r.Error, &msg) != nil {
			msg = string(*r.Error)
		}
		return "", &Error{Command: command, Msg: strings.TrimSpace(msg)}
	}
	if r.Result == nil {
		return "", nil
	}
	return *r.Result, nil
}

// Error is a command ovs-vswitchd refused, with its reason.
type Error struct{ Command, Msg string }

func (e *Error) Error() string { return "ovs-vswitchd " + e.Command + ": " + e.Msg }

// WaitRevalidated returns once ovs-vswitchd's revalidators have finished a
// full round that began after the call. A flow change takes effect in the
// OpenFlow tables at once, but packets keep matching the datapath's cached
// flows until a revalidator rechecks them, so a change that takes access
// away (an unlink) waits here before it reports done.
//
// revalidator/wait answers when the round in progress ends, and that round
// may have begun before the change; the second wait covers a round that
// began after it. Cost: up to one revalidation interval (500 ms).
func WaitRevalidated(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for range 2 {
		if _, err := Call(ctx, "revalidator/wait"); err != nil {
			var e *Error
			if errors.As(err, &e) && strings.Contains(e.Msg, "multiple udpifs") {
				// Bridges on both datapaths (one set of revalidators
				// each; the command waits on one only): drop every
				// cached flow instead, so packets are translated anew.
				_, err = Call(ctx, "revalidator/purge")
			}
			return err
		}
	}
	return nil
}
