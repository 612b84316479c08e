package docker

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/ovsnet/ovsnet/controller/bridge"
	"github.com/ovsnet/ovsnet/controller/dockernet"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/controller/ovn"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// ipamData is one address pool of a network, from Docker's IPAM.
type ipamData struct {
	AddressSpace string
	Pool         string // CIDR
	Gateway      string // ADDR/PLEN
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]any
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

// Options of `docker network create -o`, as the plugin reads them.
const (
	optBridge = "ovsnet.bridge"
	optICC    = "ovsnet.icc"
	optNAT    = "ovsnet.nat"
	optVLAN   = "ovsnet.vlan"
	optOVN    = dockernet.OptOVN
	optMTU    = "com.docker.network.driver.mtu"
	// Rate limits, of the network's endpoints (their default) and, as
	// --driver-opt, of one endpoint: both ways, or one.
	optRate    = "ovsnet.rate"
	optInRate  = "ovsnet.ingress-rate"
	optOutRate = "ovsnet.egress-rate"
	// Not an -o: Docker's --internal, beside the -o options.
	optInternal = "com.docker.network.internal"
)

// bridgeOptions turns a CreateNetwork request into an ovsnet bridge and
// the network it carries; with -o ovsnet.ovn, an OVN network instead
// (o.OVN, o.Name its name).
func bridgeOptions(req *createNetworkRequest) (network.BridgeOptions, intent.DockerNet, error) {
	o := network.BridgeOptions{Name: "ovd" + short(req.NetworkID, 12)}
	d := intent.DockerNet{ID: req.NetworkID}
	if o, ok, err := ovnOptions(req); ok || err != nil {
		return o, d, err
	}
	generic, _ := req.Options["com.docker.network.generic"].(map[string]any)
	keys := make([]string, 0, len(generic))
	for k := range generic {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(generic[k])
		var err error
		switch k {
		case optBridge:
			o.Name = v
		case optICC, optNAT:
			b, perr := strconv.ParseBool(v)
			if err = perr; err == nil && k == optICC {
				o.ICC = &b
			} else if err == nil {
				o.NAT = &b
			}
		case optMTU:
			o.MTU, err = strconv.Atoi(v)
		case optVLAN:
			if d.VLAN, err = strconv.Atoi(v); err == nil && (d.VLAN < 1 || d.VLAN > 4094) {
				err = fmt.Errorf("a VLAN is 1..4094")
			}
		case optRate, optInRate, optOutRate:
			err = rateOption(&o.Rate, k, v)
		default:
			return o, d, errorf("unknown option -o %s: ovsnet networks take %s, %s, %s, %s, %s, %s, %s, %s and %s", k, optBridge, optICC, optNAT, optVLAN, optMTU, optRate, optInRate, optOutRate, optOVN)
		}
		if err != nil {
			return o, d, errorf("bad -o %s=%s: %v", k, v, err)
		}
	}
	if internal, _ := req.Options[optInternal].(bool); internal {
		if o.NAT != nil && *o.NAT {
			return o, d, errorf("-o %s=true and --internal: an internal network has no way out to translate", optNAT)
		}
		off := false
		d.Internal, o.NAT = true, &off
	}
	for _, data := range append(append([]ipamData{}, req.IPv4Data...), req.IPv6Data...) {
		if data.Pool == "" {
			continue
		}
		o.Subnets = append(o.Subnets, data.Pool)
		if gw, err := netip.ParsePrefix(data.Gateway); err == nil {
			o.Gateways = append(o.Gateways, gw.Addr().String())
		}
	}
	return o, d, nil
}

// rateOption sets the way of lim that option k names (optInRate,
// optOutRate; optRate both, where a way's own option did not set it) to
// rate v (10mbit, 500kbit...), checked.
func rateOption(lim *intent.RateLimit, k, v string) error {
	r, err := intent.ParseRate(v)
	if err != nil {
		return err
	}
	both := k == optRate
	if k == optInRate || both && lim.IngressRate == 0 {
		lim.IngressRate = r
	}
	if k == optOutRate || both && lim.EgressRate == 0 {
		lim.EgressRate = r
	}
	return lim.WithBursts().Check()
}

// ovnOptions reads a network made with -o ovsnet.ovn=NAME: the OVN network
// holds its subnet, isolation and NAT, so no other option is taken, and
// its addresses are OVN's: Docker's IPAM must give none (--ipam-driver
// null).
func ovnOptions(req *createNetworkRequest) (network.BridgeOptions, bool, error) {
	generic, _ := req.Options["com.docker.network.generic"].(map[string]any)
	name, ok := generic[optOVN]
	if !ok {
		return network.BridgeOptions{}, false, nil
	}
	o := network.BridgeOptions{Name: fmt.Sprint(name), OVN: true}
	if len(generic) > 1 {
		return o, true, errorf("-o %s: the OVN network %s holds its subnet, isolation and NAT (ovsnet network create): give no other -o", optOVN, o.Name)
	}
	for _, data := range append(append([]ipamData{}, req.IPv4Data...), req.IPv6Data...) {
		if data.Pool != "" && data.Pool != "0.0.0.0/0" {
			return o, true, errorf("-o %s: the OVN network %s hands out its addresses: create the Docker network with --ipam-driver null", optOVN, o.Name)
		}
	}
	return o, true, nil
}

func short(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// createNetwork makes (or, with -o ovsnet.bridge naming an existing ovsnet
// bridge with the same subnets, adopts) the network's bridge and records
// the network on it.
func (p *Plugin) createNetwork(ctx context.Context, req *createNetworkRequest) (any, error) {
	o, d, err := bridgeOptions(req)
	if err != nil {
		return nil, err
	}
	if o.OVN {
		return struct{}{}, ovn.MapDocker(ctx, p.Host, req.NetworkID, o.Name)
	}
	if br, err := p.bridgeOf(ctx, req.NetworkID); err != nil || br != nil {
		if br != nil && intent.DecodeBridge(br.Name, br.ExternalIDs).Docker.Name == "" {
			go p.recordName(req.NetworkID)
		}
		return struct{}{}, err // already made: Docker asks again after its own restart
	}
	if b, err := p.Host.DB.GetBridge(ctx, o.Name); err != nil {
		return nil, err
	} else if b != nil {
		if id := intent.DecodeBridge(b.Name, b.ExternalIDs).Docker.ID; id != "" {
			return nil, errorf("bridge %s already carries Docker network %s: give another -o %s", o.Name, short(id, 12), optBridge)
		}
	}
	if d.Made, err = bridge.Add(ctx, p.Host, o); err != nil {
		return nil, errorf("%v", err)
	}
	if err := bridge.SetIntent(ctx, p.Host, o.Name, d.Encode()); err != nil {
		if d.Made {
			bridge.Del(context.Background(), p.Host, o.Name)
		}
		return nil, err
	}
	go p.recordName(req.NetworkID)
	return struct{}{}, nil
}

// recordName writes the network's name on its bridge once Docker, which
// stores a network after its driver made it, reports it.
func (p *Plugin) recordName(id string) {
	err := dockernet.Record(context.Background(), p.Host.DB, id, time.Minute)
	if err != nil && p.Log != nil {
		p.Log.Warn("the Docker network's name is not recorded: show lists it by its bridge, other commands ask Docker for it", "err", err)
	}
}

type networkRequest struct{ NetworkID string }

// deleteNetwork takes the network's bridge away if the plugin made it,
// else only the record of the network on it.
func (p *Plugin) deleteNetwork(ctx context.Context, req *networkRequest) (any, error) {
	br, err := p.bridgeOf(ctx, req.NetworkID)
	if err != nil || br == nil {
		if err == nil { // an OVN network's: only the mapping goes
			err = ovn.UnmapDocker(ctx, p.Host, req.NetworkID)
		}
		return struct{}{}, err
	}
	if intent.DecodeBridge(br.Name, br.ExternalIDs).Docker.Made {
		return struct{}{}, bridge.Del(ctx, p.Host, br.Name)
	}
	return struct{}{}, bridge.SetIntent(ctx, p.Host, br.Name, nil, intent.DockerKeys...)
}

// bridgeOf is the bridge carrying Docker network id, or nil.
func (p *Plugin) bridgeOf(ctx context.Context, id string) (*vswitchd.Bridge, error) {
	return dockernet.BridgeOf(ctx, p.Host.DB, id)
}

// bridgeName is bridgeOf's name, or an error Docker shows.
func (p *Plugin) bridgeName(ctx context.Context, id string) (string, error) {
	b, err := p.network(ctx, id)
	return b.Name, err
}

// network is the intent of the bridge carrying Docker network id, or an
// error Docker shows.
func (p *Plugin) network(ctx context.Context, id string) (intent.Bridge, error) {
	br, err := p.bridgeOf(ctx, id)
	if err != nil {
		return intent.Bridge{}, err
	}
	if br == nil {
		if name, err := ovn.DockerNetwork(ctx, p.Host, id); err != nil || name != "" {
			return intent.Bridge{Name: name, Docker: intent.DockerNet{ID: id}}, err
		}
		return intent.Bridge{}, errorf("no bridge carries Docker network %s (deleted behind Docker's back?): docker network rm it and create it again", short(id, 12))
	}
	return intent.DecodeBridge(br.Name, br.ExternalIDs), nil
}
