// Package ovn is ovsnet's OVN backend: a host joins an OVN deployment as
// a chassis (ovn-controller programs its OVS from the southbound
// database), so that networks span hosts without a tunnel mesh.
package ovn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/mesh"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnsb"
)

// JoinOptions are `ovsnet ovn join`'s.
type JoinOptions struct {
	SB        string     // the southbound database: tcp:HOST:6642 (or unix:PATH)
	NB        string     // the northbound database, ovsnet's default for networks ("": kept)
	EncapIP   netip.Addr // this host's tunnel address
	EncapType string     // geneve (default) or vxlan
	Uplink    string     // the device on the outside segment, for routers' gateways ("": none)
	Wait      time.Duration
}

// Status is a host's chassis as `ovsnet ovn status` and join report it.
type Status struct {
	SystemID   string `json:"system_id"`
	SB         string `json:"southbound"`
	EncapType  string `json:"encap_type"`
	EncapIP    string `json:"encap_ip"`
	Datapath   string `json:"bridge_datapath_type,omitempty"`
	Underlay   string `json:"underlay_bridge,omitempty"` // the OVS bridge holding EncapIP (userspace datapath)
	Controller bool   `json:"ovn_controller_running"`
	InSB       bool   `json:"chassis_in_southbound"`
	SBEncaps   string `json:"southbound_encaps,omitempty"`
	Uplink     string `json:"uplink,omitempty"` // the device on bridge ovn-uplink, for routers' gateways
}

// kernelModule says whether the openvswitch kernel module is loaded: without
// it OVS runs the userspace datapath, which br-int must use too.
func kernelModule() bool {
	_, err := os.Stat("/sys/module/openvswitch")
	return err == nil
}

// Join makes the host a chassis of the OVN deployment whose southbound
// database is o.SB: it records what ovn-controller reads in the
// Open_vSwitch row (keeping an existing system-id), puts the encap
// address on an OVS bridge where the userspace datapath needs it, then
// checks that ovn-controller runs and that its chassis appears in the
// southbound database with that address, saying what is missing
// otherwise. Joining again with the same options changes nothing.
func Join(ctx context.Context, h *network.Host, o JoinOptions) (*Status, error) {
	if o.EncapType == "" {
		o.EncapType = "geneve"
	}
	if err := intent.CheckEncapType(o.EncapType); err != nil {
		return nil, err
	}
	if !o.EncapIP.IsValid() {
		return nil, fmt.Errorf("--encap-ip is required: this host's address the other chassis reach it at")
	}
	root, err := h.DB.RootExternalIDs(ctx)
	if err != nil {
		return nil, err
	}
	c, _ := intent.DecodeChassis(root)
	c.Remote, c.EncapType, c.EncapIP = o.SB, o.EncapType, o.EncapIP
	if o.NB != "" {
		c.NB = o.NB
	}
	if c.SystemID == "" {
		c.SystemID = newSystemID()
	}
	c.Datapath = ""
	st := &Status{SystemID: c.SystemID, SB: o.SB, EncapType: o.EncapType, EncapIP: o.EncapIP.String()}
	if !kernelModule() {
		c.Datapath, st.Datapath = datapath.Netdev, datapath.Netdev
		if st.Underlay, err = mesh.UnderlayFor(ctx, h.DB, o.EncapIP, network.LinkTimeout); err != nil {
			return nil, fmt.Errorf("put %s on an OVS bridge for OVN's tunnels: %w", o.EncapIP, err)
		}
	}
	had := c.Uplink
	up, err := planUplink(ctx, h, &c, o.Uplink)
	if err != nil {
		return nil, err
	}
	st.Uplink = c.Uplink
	var del []string
	if c.Datapath == "" {
		del = append(del, intent.KeyOVNDatapath)
	}
	if had != "" && c.Uplink == "" {
		del = append(del, intent.UplinkKeys...)
	}
	_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) {
		tx.SetRootExternalIDs(c.Encode(), del...)
		if up != nil {
			up(tx)
		}
	})
	if err != nil {
		return nil, err
	}
	return st, check(ctx, st, o.Wait)
}

// newSystemID is a fresh chassis name, as ovs-ctl makes one: a random UUID.
func newSystemID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// check fills in whether ovn-controller runs and whether the southbound
// database has the chassis with the encap address, and with ovsnet's
// uplink mapping if it has an uplink (waiting up to wait for them), and
// says what is missing.
func check(ctx context.Context, st *Status, wait time.Duration) error {
	st.Controller = controllerRunning()
	if !st.Controller {
		return fmt.Errorf("ovn-controller is not running on this host (no live pid in %s): start it (systemctl start ovn-controller, from Debian's ovn-host; without systemd: /usr/share/ovn/scripts/ovn-ctl start_controller); it reads what was just set", pidFile())
	}
	sb, err := ovsdb.ConnectSouthbound(ctx, st.SB)
	if err != nil {
		return err
	}
	defer sb.Close()
	end := time.Now().Add(wait)
	for {
		c, err := chassisInSB(ctx, sb, st.SystemID)
		if err != nil {
			return err
		}
		st.InSB, st.SBEncaps = c.found, strings.Join(c.encaps, ",")
		want := st.EncapType + ":" + st.EncapIP
		mapped := st.Uplink == "" || intent.HasUplink(c.mappings)
		if c.found && slices.Contains(c.encaps, want) && mapped {
			return nil
		}
		if time.Now().After(end) {
			switch {
			case !c.found:
				return fmt.Errorf("chassis %s is not in the southbound database at %s after %s: see ovn-controller's log (is %s its ovn-remote, and reachable from this host?)", st.SystemID, st.SB, wait, st.SB)
			case !mapped:
				return fmt.Errorf("chassis %s has not published the uplink's bridge mapping (%s) after %s: see ovn-controller's log", st.SystemID, intent.UplinkMapping, wait)
			}
			return fmt.Errorf("chassis %s is in the southbound database with encaps %q, not %s: see ovn-controller's log", st.SystemID, st.SBEncaps, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sbChassis is a chassis as the southbound database has it.
type sbChassis struct {
	found    bool
	encaps   []string // "geneve:IP"
	mappings string   // the ovn-bridge-mappings ovn-controller published
}

// chassisInSB reads chassis name from the southbound database.
func chassisInSB(ctx context.Context, sb *ovsdb.Client, name string) (sbChassis, error) {
	cs, err := ovsdb.Select[ovnsb.Chassis](ctx, sb, []ovsdbops.Condition{ovsdb.NameIs(name)}, "_uuid", "name", "encaps", "other_config")
	if err != nil || len(cs) == 0 {
		return sbChassis{}, err
	}
	out := sbChassis{found: true, mappings: cs[0].OtherConfig[intent.KeyOVNMappings]}
	for _, u := range cs[0].Encaps {
		es, err := ovsdb.Select[ovnsb.Encap](ctx, sb, []ovsdbops.Condition{ovsdb.UUIDIs(u)}, "type", "ip")
		if err != nil {
			return out, err
		}
		for _, e := range es {
			out.encaps = append(out.encaps, e.Type+":"+e.IP)
		}
	}
	return out, nil
}

// pidFile is where ovn-controller writes its pid: $OVN_RUNDIR, else
// /var/run/ovn.
func pidFile() string {
	dir := os.Getenv("OVN_RUNDIR")
	if dir == "" {
		dir = "/var/run/ovn"
	}
	return filepath.Join(dir, "ovn-controller.pid")
}

func controllerRunning() bool {
	b, err := os.ReadFile(pidFile())
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

// Leave undoes Join: the keys it set go (system-id stays: it names the
// host to OVS's tools too), the chassis leaves the southbound database
// (if reachable: else ovn-northd's operator removes it with ovn-sbctl
// chassis-del), and the underlay bridge gives its device back if no
// tunnel uses it. A host ovsnet did not join is left alone.
func Leave(ctx context.Context, h *network.Host) error {
	root, err := h.DB.RootExternalIDs(ctx)
	if err != nil {
		return err
	}
	c, _ := intent.DecodeChassis(root)
	if !c.Joined {
		if c.Remote != "" {
			return fmt.Errorf("this host is an OVN chassis (ovn-remote=%s) that ovsnet did not join: leave it with ovs-vsctl remove open_vswitch . external_ids ovn-remote", c.Remote)
		}
		return nil
	}
	keys := intent.ChassisKeys
	if c.Uplink != "" {
		keys = append(slices.Clone(keys), intent.UplinkKeys...)
	}
	if _, err := planUplink(ctx, h, &c, ""); err != nil {
		return err
	}
	if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetRootExternalIDs(nil, keys...) }); err != nil {
		return err
	}
	var errs []error
	if c.Remote != "" && c.SystemID != "" {
		errs = append(errs, deleteChassis(ctx, c.Remote, c.SystemID))
	}
	errs = append(errs, mesh.ReleaseUnderlays(ctx, h.DB))
	return errors.Join(errs...)
}

// deleteChassis removes chassis name from the southbound database at sb.
func deleteChassis(ctx context.Context, sb, name string) error {
	c, err := ovsdb.ConnectSouthbound(ctx, sb)
	if err != nil {
		return fmt.Errorf("left, but the chassis stays in the southbound database (%v): remove it there with ovn-sbctl chassis-del %s", err, name)
	}
	defer c.Close()
	ch := &ovnsb.Chassis{Name: name}
	ops, err := c.Where(ch).Delete()
	if err != nil {
		return err
	}
	if err := c.Run(ctx, ops); err != nil {
		return fmt.Errorf("remove chassis %s from the southbound database: %w", name, err)
	}
	return nil
}

// Read is the host's chassis status (no waiting).
func Read(ctx context.Context, h *network.Host) (*Status, error) {
	root, err := h.DB.RootExternalIDs(ctx)
	if err != nil {
		return nil, err
	}
	c, err := intent.DecodeChassis(root)
	if err != nil {
		return nil, err
	}
	if c.Remote == "" {
		return nil, fmt.Errorf("this host is not an OVN chassis: join with ovsnet ovn join --sb tcp:CENTRAL:6642 --encap-ip IP")
	}
	st := &Status{SystemID: c.SystemID, SB: c.Remote, EncapType: c.EncapType, EncapIP: c.EncapIP.String(), Datapath: c.Datapath, Uplink: c.Uplink}
	return st, check(ctx, st, 0)
}
