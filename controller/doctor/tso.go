package doctor

import (
	"context"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/datapath"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// TSOFix is what turns userspace TSO on, and what that restart does.
const TSOFix = "ovs-vsctl set Open_vSwitch . other_config:userspace-tso-enable=true, then restart ovs-vswitchd " +
	"(systemctl restart openvswitch-switch; without systemd: " + OVSCtl + " restart): it reads the setting at start only; ovsnet's controller (or " +
	"`ovsnet reconcile`) then re-attaches the internal ports in containers and gives veths their offloads back"

// TSOWarning says, for a bridge just made on the userspace datapath, that
// ovs-vswitchd runs without userspace TSO and what to do; "" if it runs
// with it, or the bridge is on the kernel datapath.
func TSOWarning(db *ovsdb.Client, bridge string) string {
	br, err := db.GetBridge(context.Background(), bridge)
	if err != nil || br == nil || datapath.Of(br) != datapath.Netdev {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), network.LinkTimeout)
	defer cancel()
	if l, err := attach.WaitLink(ctx, bridge); err != nil || attach.TSOActive(l) {
		return "" // its tap is not here (another netns?): nothing to tell by
	}
	return "ovs-vswitchd runs without userspace TSO: containers' TCP will run at about a tenth of a Linux bridge's. Fix: " + TSOFix
}
