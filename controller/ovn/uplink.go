package ovn

import (
	"context"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnsb"
)

// A chassis' uplink is how a router's gateway leaves OVN when this
// chassis holds it: an OVS bridge (intent.UplinkBridge) holding a device
// of the host on the outside segment, mapped to the physical network
// intent.UplinkNetwork (ovn-bridge-mappings), where ovn-controller plugs
// the gateway's localnet port in. The bridge is standalone (it switches
// by MAC learning between the device and ovn-controller's patch port, as
// ovn-controller expects of a provider bridge) and of br-int's datapath.

// uplinkFailMode lets the uplink bridge switch without OpenFlow rules.
const uplinkFailMode = "standalone"

// planUplink brings chassis c's uplink to dev ("": none) on the host: the
// transaction it returns (nil: nothing to do) makes or removes the bridge;
// c's keys say the rest (Encode). A bridge holding another device goes
// first, in a transaction of its own.
func planUplink(ctx context.Context, h *network.Host, c *intent.Chassis, dev string) (func(*ovsdb.Tx), error) {
	if dev != "" {
		if _, err := netlink.LinkByName(dev); err != nil {
			return nil, fmt.Errorf("--uplink %s: no such device on this host (%v): name the interface on the outside segment", dev, err)
		}
		if c.Uplink == "" && c.Mappings != "" && c.Mappings != intent.UplinkMapping {
			return nil, fmt.Errorf("this host's ovn-bridge-mappings is %q, not ovsnet's: ovsnet's uplink would replace it (remove it with ovs-vsctl remove open_vswitch . external_ids ovn-bridge-mappings, or leave out --uplink)", c.Mappings)
		}
	}
	br, err := h.DB.GetBridge(ctx, intent.UplinkBridge)
	if err != nil {
		return nil, err
	}
	if br != nil && c.Uplink == "" && dev != "" {
		return nil, fmt.Errorf("bridge %s exists and ovsnet did not make it: rename or remove it (ovs-vsctl del-br %s) to give this host an uplink", intent.UplinkBridge, intent.UplinkBridge)
	}
	if br != nil && c.Uplink != dev {
		if _, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.DeleteBridge(br.UUID) }); err != nil {
			return nil, fmt.Errorf("remove uplink bridge %s (holding %s): %w", intent.UplinkBridge, c.Uplink, err)
		}
		br = nil
	}
	c.Uplink = dev
	if dev == "" || br != nil {
		return nil, nil
	}
	dp := c.Datapath
	return func(tx *ovsdb.Tx) {
		tx.CreateBridge(ovsdb.BridgeSpec{Name: intent.UplinkBridge, Datapath: dp, FailMode: uplinkFailMode})
		tx.AddPorts(intent.UplinkBridge, ovsdb.PortSpec{Name: dev})
	}, nil
}

// gatewayChassis resolves the chassis a router's gateway may be held by
// (each by its name or its hostname) in the southbound database at sb,
// and refuses one that is not there or has no uplink.
func gatewayChassis(ctx context.Context, sb string, names []string) ([]string, error) {
	if sb == "" {
		return nil, fmt.Errorf("no southbound database to find the gateway chassis in: give --sb tcp:CENTRAL:6642, or run this on a chassis (ovsnet ovn join)")
	}
	sbc, err := ovsdb.ConnectSouthbound(ctx, sb)
	if err != nil {
		return nil, err
	}
	defer sbc.Close()
	cs, err := ovsdb.Select[ovnsb.Chassis](ctx, sbc, nil, "name", "hostname", "other_config")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		i := slices.IndexFunc(cs, func(c ovnsb.Chassis) bool { return c.Name == n })
		if i < 0 { // by hostname, if only one chassis has it
			var named []int
			for k, c := range cs {
				if c.Hostname == n {
					named = append(named, k)
				}
			}
			if len(named) > 1 {
				return nil, fmt.Errorf("chassis %s and %s both have hostname %s: name the chassis by its OVN name (ovsnet ovn status on it)", cs[named[0]].Name, cs[named[1]].Name, n)
			}
			if len(named) == 1 {
				i = named[0]
			}
		}
		switch {
		case i < 0:
			return nil, fmt.Errorf("no chassis %s in the southbound database at %s (ovn-sbctl show lists them; ovsnet ovn join makes a host one)", n, sb)
		case !intent.HasUplink(cs[i].OtherConfig[intent.KeyOVNMappings]):
			return nil, fmt.Errorf("chassis %s has no uplink, so it cannot hold a gateway: on it, ovsnet ovn join ... --uplink DEV (the device on the outside segment)", n)
		case slices.Contains(out, cs[i].Name):
			return nil, fmt.Errorf("chassis %s is named twice in --gateway-chassis", n)
		}
		out = append(out, cs[i].Name)
	}
	return out, nil
}
