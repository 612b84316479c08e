package intent

import (
	"fmt"
	"strconv"
	"strings"
)

// Capture is a port `ovsnet capture` made to copy one container
// interface's traffic to (an OVS mirror's output), for as long as the
// process that made it runs. The process names itself by its PID, the
// PID's start time (clock ticks since boot, /proc/PID/stat's 22nd field:
// a reused PID has another) and its PID namespace: a reconcile in the
// same PID namespace that finds no such process removes the port.
type Capture struct {
	PID    int
	Start  uint64 // the process' start time, in clock ticks since boot
	PIDNS  string // the process' PID namespace ("pid:[4026531836]")
	Of     string // the captured interface's OVS name
	Bridge string // the bridge of both ports
}

const (
	// KeyCapture marks an interface (and its port) as a capture's:
	// "pid=PID,start=TICKS,pidns=NS".
	KeyCapture = "ovsnet-capture"
	// KeyCaptureOf is the OVS name of the interface a capture copies.
	KeyCaptureOf = "ovsnet-capture-of"
	// KeyCaptureBridge is the bridge of the capture's ports.
	KeyCaptureBridge = "ovsnet-capture-bridge"
)

// Encode is the capture port's keys. They carry no ovsnet-owner: a
// capture's port is no container's; capture, reconcile's sweep of
// captures and the capture's flow in the drop table (flowmodel) read them.
func (c Capture) Encode() map[string]string {
	return map[string]string{
		KeyCapture:       fmt.Sprintf("pid=%d,start=%d,pidns=%s", c.PID, c.Start, c.PIDNS),
		KeyCaptureOf:     c.Of,
		KeyCaptureBridge: c.Bridge,
	}
}

// DecodeCapture reads a capture port's keys; ok is false for any other
// row. One whose owner does not decode is an error: such a port has no
// process to wait for, and reconcile removes it.
func DecodeCapture(row string, ext map[string]string) (c Capture, ok bool, err error) {
	v, ok := ext[KeyCapture]
	if !ok {
		return c, false, nil
	}
	c.Of, c.Bridge = ext[KeyCaptureOf], ext[KeyCaptureBridge]
	bad := &Error{Row: row, Key: KeyCapture, Value: v, Want: "pid=PID,start=TICKS,pidns=NS",
		Then: "reconcile removes the capture port"}
	fields := strings.Split(v, ",")
	got := map[string]bool{}
	for _, f := range fields {
		k, val, _ := strings.Cut(f, "=")
		var perr error
		switch k {
		case "pid":
			c.PID, perr = strconv.Atoi(val)
			if perr == nil && c.PID <= 0 {
				perr = fmt.Errorf("pid %d", c.PID)
			}
		case "start":
			c.Start, perr = strconv.ParseUint(val, 10, 64)
		case "pidns":
			c.PIDNS = val
			if val == "" {
				perr = fmt.Errorf("empty pidns")
			}
		default:
			perr = fmt.Errorf("unknown field %q", k)
		}
		if perr != nil {
			return c, true, bad
		}
		got[k] = true
	}
	if len(got) != 3 || len(fields) != 3 {
		return c, true, bad
	}
	return c, true, nil
}
