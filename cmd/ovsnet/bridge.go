package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ovsnet/ovsnet/controller/bridge"
	"github.com/ovsnet/ovsnet/controller/doctor"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ipam"
)

func addBrCmd(g *globals) *cobra.Command {
	var a brArgs
	c := &cobra.Command{
		Use:   "add-br BRIDGE [--subnet CIDR]... [--ip-range CIDR]... [--gateway IP]... [--mtu N] [--icc=true|false] [--nat=true|false] [--flood-limit PPS] [--rate R] [--datapath system|netdev]",
		Short: "Create an OVS bridge for containers, with a subnet and a gateway on its internal port",
		Long: `Create BRIDGE. With --subnet (one IPv4 and optionally one IPv6 CIDR) the
bridge's internal port gets the gateway address (the first host address
unless --gateway says otherwise) and containers can be given addresses with
add-port --ip. The datapath is the kernel's when its openvswitch module is
usable, else the userspace one (netdev); --datapath overrides.

Running it again with the same settings changes nothing; different settings
are an error (delete the bridge first).

A network spanning hosts has the same --subnet on every host and a distinct
--ip-range on each: this host allocates only from its range and its gateway
is the range's first host address; its MTU leaves room for tunnels (see
ovsnet tunnel).

Each container port is held to --flood-limit packets a second of what it
sends outside TCP connections under way (connection attempts, UDP, ICMP,
ARP, broadcasts; an OpenFlow meter per port drops the excess): one
container's flood then costs the switch, and the containers beside it, a
bounded share. TCP segments of established connections are never metered.
add-port --flood-limit sets a port's own.

--rate (or --ingress-rate, --egress-rate, each with a --burst) is the cap
every container interface attached from then on gets unless it asks for
its own (add-port --rate; see ovsnet qos --help); ovsnet qos BRIDGE
--default changes it for later attachments. A cap on what containers
receive makes their interfaces veths.`,
		Example: `  ovsnet add-br ovs-br1 --subnet 172.16.1.0/24
  ovsnet add-br br-dual --subnet 10.20.0.0/24 --subnet fd00:20::/64 --mtu 1450
  ovsnet add-br br-iso --subnet 10.30.0.0/24 --gateway 10.30.0.254 --icc=false
  ovsnet add-br br0 --subnet 10.97.0.0/16 --ip-range 10.97.1.0/24`,
		Args: exactArgs("BRIDGE"),
		RunE: func(c *cobra.Command, args []string) error {
			o, err := a.options(c.Flags())
			if err != nil {
				return err
			}
			o.Name = args[0]
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			created, err := bridge.Add(c.Context(), h, o)
			if err != nil {
				return err
			}
			verb := "created"
			if !created {
				verb = "exists, unchanged:"
			} else if w := doctor.TSOWarning(h.DB, o.Name); w != "" {
				fmt.Fprintln(c.ErrOrStderr(), "ovsnet: warning: "+w)
			}
			if w := publicSubnets(o); created && w != "" {
				fmt.Fprintln(c.ErrOrStderr(), "ovsnet: warning: "+w)
			}
			return g.print(c, map[string]any{"bridge": o.Name, "created": created},
				fmt.Sprintf("bridge %s %s %s", o.Name, verb, strings.Join(o.Subnets, " ")))
		},
	}
	a.register(c.Flags())
	return c
}

// brArgs are add-br's flags.
type brArgs struct {
	network.BridgeOptions
	icc, nat bool
	rates    rateFlags
}

func (a *brArgs) register(f *pflag.FlagSet) {
	o := &a.BridgeOptions
	f.StringArrayVar(&o.Subnets, "subnet", nil, "container subnet CIDR, at most one per family (repeatable)")
	f.StringArrayVar(&o.Gateways, "gateway", nil, "gateway address in a subnet (default: its first host address)")
	f.StringArrayVar(&o.Ranges, "ip-range", nil, "this host's share of a --subnet spanning hosts (see `ovsnet tunnel`): addresses come from it, the gateway is its first")
	f.IntVar(&o.MTU, "mtu", 0, "MTU of the bridge's port and of containers attached to it (68..65535)")
	f.BoolVar(&a.icc, "icc", true, "allow container-to-container traffic (false: only linked pairs; takes effect with the flow pipeline)")
	f.BoolVar(&a.nat, "nat", true, "masquerade egress and allow port publishing (takes effect with host NAT)")
	f.Var(floodFlag{&o.FloodPPS}, "flood-limit", fmt.Sprintf("packets a second each container port may send outside TCP connections under way, 0: no limit (default %d)", intent.DefaultFloodPPS))
	f.StringVar(&o.Datapath, "datapath", "", "system (kernel) or netdev (userspace); default: detected")
	a.rates.register(f, "each container interface that asks for no cap of its own")
}

// options are the BridgeOptions the parsed flags give (--icc and --nat
// only when given: an existing bridge is compared on what was given).
func (a *brArgs) options(f *pflag.FlagSet) (network.BridgeOptions, error) {
	o := a.BridgeOptions
	if f.Changed("icc") {
		o.ICC = &a.icc
	}
	if f.Changed("nat") {
		o.NAT = &a.nat
	}
	var err error
	o.Rate, err = a.rates.limit()
	return o, err
}

func delBrCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "del-br BRIDGE",
		Short:   "Detach every container from BRIDGE and delete it",
		Example: "  ovsnet del-br ovs-br1",
		Args:    exactArgs("BRIDGE"),
		RunE: func(c *cobra.Command, args []string) error {
			h, err := g.open(c.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if err := bridge.Del(c.Context(), h, args[0]); err != nil {
				return err
			}
			return g.print(c, map[string]any{"bridge": args[0], "deleted": true}, "bridge "+args[0]+" deleted")
		},
	}
}

// publicSubnets warns of IPv4 subnets of the internet's address space on
// a masquerading bridge: its containers take real hosts' addresses, which
// they and the host then no longer reach. A routed bridge (--nat=false)
// may be given a block it owns.
func publicSubnets(o network.BridgeOptions) string {
	if o.NAT != nil && !*o.NAT {
		return ""
	}
	for _, s := range o.Subnets {
		if p, err := netip.ParsePrefix(s); err == nil && ipam.PublicIPv4(p.Masked()) {
			return fmt.Sprintf("subnet %s is public address space: hosts on the internet with those addresses cannot be reached from its containers; "+
				"private ranges are 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16 (or --nat=false for a block routed to this host)", s)
		}
	}
	return ""
}
