package e2e

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovsnet/ovsnet/attach"
)

// soakOp is one attach or detach a soak round ran, through one front end.
type soakOp struct {
	via       string // cli, bulk, cni; "del" and "cni-del" detach
	bridge    string
	container string // the netns
	id, iface string // as the row records them
	ok        bool
	err       string
}

// A bounded concurrency and fault soak: each round attaches and detaches
// through every front end at once (add-port through the controller's API,
// add-ports, CNI ADD and DEL through cnitool, del-port) while one daemon
// is killed with -9 (the controller, ovs-vswitchd) or restarted
// (ovsdb-server) and started again; then reconcile, and the invariants:
// no address, MAC or OVS port on two interfaces; every attach that said
// it succeeded has its one row, ready, its interface in its container,
// reaches its gateway and a peer, and not the other bridge; every one that
// failed and every detach left no row, no host link and no interface.
func TestSoak(t *testing.T) {
	e := newEnv(t)
	e.must("add-br", "bra", "--subnet", "10.93.0.0/24")
	e.must("add-br", "brb", "--subnet", "10.94.0.0/24")
	const addr = "127.0.0.1:19493"
	// Debug: every API request in the logs a failure prints.
	ctl := e.startController(addr, "--pool", "4", "--log-level", "debug")
	eventually(t, 15*time.Second, "healthz 200", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })
	cniDir := e.cniNet("soak", "1.1.0", fmt.Sprintf(`{"type":"ovsnet","bridge":"bra","subnet":"10.93.0.0/24","ovsdb":%q}`, e.sb.DB()))
	var live []soakOp
	for round, fault := range []string{"controller", "ovs-vswitchd", "ovsdb-server"} {
		ops := e.soakOps(live, cniDir)
		var wg sync.WaitGroup
		for i := range ops {
			wg.Add(1)
			go func() { defer wg.Done(); e.soakRun(&ops[i], cniDir) }()
		}
		time.Sleep(300 * time.Millisecond) // the faults land mid-round
		ctl = e.soakFault(fault, ctl, addr)
		wg.Wait()
		if fault == "controller" {
			eventually(t, 15*time.Second, "healthz after the restart", func() bool { code, _ := e.httpGet(addr, "/healthz"); return code == 200 })
		}
		first := e.must("reconcile")
		if out := e.must("reconcile"); !strings.Contains(out, "nothing to change") {
			t.Fatalf("round %d: a second reconcile still changes things: %q\ncontroller logs:\n%s", round+1, out, e.controllerLogs())
		}
		live = e.soakCheck(round+1, fault, live, ops, first)
	}
}

// soakOps are a round's operations: attaches of new containers through
// each front end, and detaches of some that are attached.
func (e *env) soakOps(live []soakOp, cniDir string) []soakOp {
	var ops []soakOp
	for i := 0; i < 6; i++ {
		c := e.container()
		ops = append(ops, soakOp{via: "cli", bridge: []string{"bra", "brb"}[i%2], container: c, id: c, iface: "eth1"})
	}
	for i := 0; i < 4; i++ {
		c := e.container()
		ops = append(ops, soakOp{via: "bulk", bridge: "brb", container: c, id: c, iface: "eth2"})
	}
	for i := 0; i < 4; i++ {
		c := e.container()
		ops = append(ops, soakOp{via: "cni", bridge: "bra", container: c, id: cnitoolID(c), iface: "eth0"})
	}
	dels := 0
	for _, l := range live {
		if dels < 3 && (l.via == "cli" || l.via == "cni") {
			d := l
			d.via = map[string]string{"cli": "del", "cni": "cni-del"}[l.via]
			ops = append(ops, d)
			dels++
		}
	}
	return ops
}

// cnitoolID is the container ID cnitool gives a namespace.
func cnitoolID(netns string) string {
	s := sha512.Sum512([]byte(nsPath(netns)))
	return fmt.Sprintf("cnitool-%x", s[:10])
}

// soakRun runs one operation; the bulk ones go together, once.
func (e *env) soakRun(op *soakOp, cniDir string) {
	var r result
	switch op.via {
	case "cli":
		r = e.ovsnet("add-port", op.bridge, op.iface, op.container, "--ip")
	case "del":
		r = e.ovsnet("del-port", op.bridge, op.iface, op.container)
	case "bulk":
		f := filepath.Join(e.sb.Dir, "bulk-"+op.container)
		os.WriteFile(f, []byte(op.iface+" "+op.container+"\n"), 0o644)
		r = e.ovsnet("add-ports", op.bridge, f, "--ip")
	case "cni", "cni-del":
		cmd := map[string]string{"cni": "add", "cni-del": "del"}[op.via]
		// Traced: a failed round prints what the plugin did, step by step.
		out, err := e.cnitool(cniDir, []string{"OVSNET_TRACE=1"}, cmd, "soak", nsPath(op.container))
		r = result{err: out}
		if err != nil {
			r.code = 1
		}
	}
	op.ok, op.err = r.code == 0, strings.TrimSpace(r.err)
}

// soakFault kills (or restarts) daemon and starts it again, having seen it
// gone; it returns the controller running after.
func (e *env) soakFault(daemon string, ctl *exec.Cmd, addr string) *exec.Cmd {
	t := e.t
	switch daemon {
	case "controller":
		ctl.Process.Signal(syscall.SIGKILL)
		ctl.Wait()
		if syscall.Kill(ctl.Process.Pid, 0) == nil {
			t.Fatal("the controller outlived kill -9")
		}
		return e.startController(addr, "--pool", "4", "--log-level", "debug")
	case "ovs-vswitchd":
		b, err := os.ReadFile(filepath.Join(e.sb.Dir, "ovs-vswitchd.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		syscall.Kill(pid, syscall.SIGKILL)
		for syscall.Kill(pid, 0) == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if err := e.sb.StartVswitchd(); err != nil {
			t.Fatal(err)
		}
	case "ovsdb-server":
		if err := e.sb.RestartOVSDB(); err != nil {
			t.Fatal(err)
		}
	}
	return ctl
}

// soakRow is an ovsnet interface row as the invariants read it.
type soakRow struct {
	name, bridge, container, iface, ipv4, mac, state string
	pool                                             bool
}

func (e *env) soakRows() []soakRow {
	e.t.Helper()
	out, err := e.sb.Vsctl("--format=json", "--data=json", "--columns=name,external_ids", "find", "interface", "external_ids:ovsnet-bridge!=\"\"")
	if err != nil {
		e.t.Fatal(err)
	}
	var tbl struct{ Data [][]any }
	if err := json.Unmarshal([]byte(out), &tbl); err != nil {
		e.t.Fatalf("interfaces: %v", err)
	}
	var rows []soakRow
	for _, d := range tbl.Data {
		ext := map[string]string{}
		for _, kv := range d[1].([]any)[1].([]any) {
			p := kv.([]any)
			ext[p[0].(string)] = p[1].(string)
		}
		rows = append(rows, soakRow{name: d[0].(string), bridge: ext["ovsnet-bridge"], container: ext["container_id"], iface: ext["container_iface"],
			ipv4: ext["ovsnet-ipv4"], mac: ext["ovsnet-mac"], state: ext["ovsnet-state"], pool: ext["ovsnet-pool"] == "true"})
	}
	return rows
}

// soakCheck checks the invariants after a round and returns what is
// attached now.
func (e *env) soakCheck(round int, fault string, live, ops []soakOp, reconciled string) []soakOp {
	t := e.t
	rows := e.soakRows()
	seen := map[string]string{}
	for _, r := range rows {
		for _, k := range []string{r.bridge + " address " + strings.Split(r.ipv4, "/")[0], r.bridge + " MAC " + r.mac} {
			if r.ipv4 == "" || r.mac == "" {
				continue
			}
			if other, dup := seen[k]; dup {
				t.Fatalf("round %d: %s on %s and %s", round, k, other, r.name)
			}
			seen[k] = r.name
		}
	}
	rowsOf := func(op soakOp) []soakRow {
		return slices.DeleteFunc(slices.Clone(rows), func(r soakRow) bool { return r.container != op.id || r.iface != op.iface })
	}
	var now []soakOp
	gone := map[string]bool{}
	okN, failedN, delN := 0, 0, 0
	for _, op := range ops {
		switch {
		case strings.HasSuffix(op.via, "del"):
			// A detach cut off by the fault either marked its rows (and
			// reconcile finished it) or changed nothing (it is still
			// attached, and checked as such below).
			if !op.ok {
				t.Logf("round %d: %s of %s failed (%s): %s", round, op.via, op.container, fault, op.err)
				if len(rowsOf(op)) > 0 {
					continue
				}
			}
			gone[op.container] = true
			delN++
			e.soakNothingOf(round, op, rowsOf(op))
		case op.ok:
			okN++
			now = append(now, op)
		default:
			failedN++
			t.Logf("round %d: %s attach of %s failed (%s killed): %s", round, op.via, op.container, fault, op.err)
			e.soakNothingOf(round, op, rowsOf(op))
		}
	}
	for _, l := range live {
		if !gone[l.container] {
			now = append(now, l)
		}
	}
	peer := map[string]string{}
	for _, op := range now {
		rs := rowsOf(op)
		if len(rs) != 1 || rs[0].state != "ready" || rs[0].bridge != op.bridge {
			t.Fatalf("round %d: %s attach of %s said ok, rows %+v\nit printed:\n%s\nreconcile after the round: %s\ncontroller logs:\n%s", round, op.via, op.container, rs, op.err, reconciled, e.controllerLogs())
		}
		if !slices.Contains(links(t, op.container), op.iface) {
			t.Fatalf("round %d: %s has no %s", round, op.container, op.iface)
		}
		if _, ok := peer[op.bridge]; !ok {
			peer[op.bridge] = strings.Split(rs[0].ipv4, "/")[0]
		}
	}
	e.soakReach(round, now, peer)
	t.Logf("round %d, %s killed mid-round: %d attaches ok, %d failed and left nothing, %d detaches left nothing; %d attached, each with one ready row, its interface, its gateway and a peer reached, bridges isolated; %d addresses and MACs unique; reconcile had nothing left to do",
		round, fault, okN, failedN, delN, len(now), len(seen))
	return now
}

// soakNothingOf fails unless op's container interface left nothing: no
// row, no host link (but one the warm pool holds again: a detached port
// goes back to it), no interface in the container.
func (e *env) soakNothingOf(round int, op soakOp, rows []soakRow) {
	t := e.t
	if len(rows) > 0 {
		t.Fatalf("round %d: %s of %s (%s) left rows %+v", round, op.via, op.container, op.err, rows)
	}
	if name := attach.HostName(op.bridge, op.id, op.iface); slices.Contains(links(t, e.sb.Netns), name) {
		out, _ := exec.Command("ip", "-n", e.sb.Netns, "-d", "link", "show", name).CombinedOutput()
		rows, _ := e.sb.Vsctl("--columns=name,ofport,external_ids", "find", "interface", "name="+name)
		if pooled, _ := e.sb.Vsctl("--bare", "--columns=name", "find", "interface", "name="+name, "external_ids:ovsnet-pool=true", "external_ids:ovsnet-state=ready"); strings.TrimSpace(pooled) == name {
			return // the pool's again
		}
		t.Fatalf("round %d: %s of %s (%s) left its host link:\n%s\nrows: %s", round, op.via, op.container, op.err, out, rows)
	}
	if slices.Contains(links(t, op.container), op.iface) {
		t.Fatalf("round %d: %s of %s left %s in the container", round, op.via, op.container, op.iface)
	}
}

// soakReach checks that every attached container reaches its gateway and
// its bridge's peer (in parallel), and that the bridges stay apart.
func (e *env) soakReach(round int, now []soakOp, peer map[string]string) {
	t := e.t
	gw := map[string]string{"bra": "10.93.0.1", "brb": "10.94.0.1"}
	var wg sync.WaitGroup
	bad := make(chan string, 2*len(now))
	for _, op := range now {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range []string{gw[op.bridge], peer[op.bridge]} {
				if !pings(op.container, a) {
					bad <- fmt.Sprintf("%s (%s) does not reach %s", op.container, op.bridge, a)
				}
			}
		}()
	}
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Fatalf("round %d: %s", round, b)
	}
	for _, op := range now {
		if op.bridge == "bra" && peer["brb"] != "" {
			noPing(t, op.container, peer["brb"])
			break
		}
	}
}

// controllerLogs is every controller log of the sandbox.
func (e *env) controllerLogs() string {
	logs, _ := filepath.Glob(filepath.Join(e.sb.Dir, "controller-*.log"))
	var b strings.Builder
	for _, l := range logs {
		c, _ := os.ReadFile(l)
		b.Write(c)
	}
	return b.String()
}
