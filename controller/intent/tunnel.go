package intent

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Tunnel is one tunnel of a bridge to another host, as stored in the
// bridge's external_ids ("ovsnet-tunnel:REMOTE" =
// "type=vxlan,key=N,local=IP,port=NAME,ofport=N,mtu=N[,dev=kernel]") and as
// `tunnel list` shows it.
type Tunnel struct {
	Bridge      string `json:"bridge"`
	Remote      string `json:"remote"`
	Type        string `json:"type"`
	Key         uint32 `json:"key"`
	Local       string `json:"local"`
	Port        string `json:"port"`
	Ofport      int    `json:"ofport"`
	UnderlayMTU int    `json:"underlay_mtu"`
	// Kernel: Port is an internal port spliced to a kernel device ovsnet
	// made: for VXLAN one per bridge, with a forwarding entry per remote;
	// for GRE a gretap device per remote. Else Port is OVS's own tunnel
	// port.
	Kernel bool   `json:"kernel_device,omitempty"`
	State  string `json:"state,omitempty"` // from OVSDB: "up", or the interface's error
	Err    error  `json:"-"`               // its intent does not decode: it carries nothing
}

// Key is the bridge key of the tunnel to remote.
func TunnelKey(remote string) string { return KeyTunnelPrefix + remote }

// Encode is the tunnel as a bridge key and value.
func (t Tunnel) Encode() map[string]string {
	v := fmt.Sprintf("type=%s,key=%d,local=%s,port=%s,ofport=%d,mtu=%d", t.Type, t.Key, t.Local, t.Port, t.Ofport, t.UnderlayMTU)
	if t.Kernel {
		v += ",dev=kernel"
	}
	return map[string]string{TunnelKey(t.Remote): v}
}

// TunnelPort is the external_ids of a tunnel's Interface row.
func (t Tunnel) PortIDs() map[string]string {
	m := Ownership(t.Bridge)
	m[KeyTunnelPrefix+"remote"] = t.Remote
	return m
}

// IsTunnelPort says whether an Interface row is an ovsnet tunnel's.
func IsTunnelPort(ext map[string]string) bool { return ext[KeyTunnelPrefix+"remote"] != "" }

// decodeTunnel reads one stored tunnel strictly.
func decodeTunnel(bridge, remote, v string) Tunnel {
	t := Tunnel{Bridge: bridge, Remote: remote}
	bad := func(why string) Tunnel {
		t.Err = &Error{Row: "bridge " + bridge, Key: TunnelKey(remote), Value: v,
			Want: "type=vxlan|gre,key=N,local=IP,port=NAME,ofport=N,mtu=N[,dev=kernel] (" + why + ")", Then: NoTunnel}
		return t
	}
	if a, err := netip.ParseAddr(remote); err != nil || !a.Is4() {
		return bad("the remote is not an IPv4 address")
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "type":
			t.Type = val
			if val != "vxlan" && val != "gre" && val != "geneve" {
				return bad("unknown type")
			}
		case "key":
			var n uint64
			n, err = strconv.ParseUint(val, 10, 32)
			t.Key = uint32(n)
		case "local":
			_, err = netip.ParseAddr(val)
			t.Local = val
		case "port":
			t.Port = val
		case "ofport":
			t.Ofport, err = strconv.Atoi(val)
		case "mtu":
			t.UnderlayMTU, err = strconv.Atoi(val)
		case "dev":
			if t.Kernel = val == "kernel"; !t.Kernel {
				return bad("unknown dev")
			}
		default:
			return bad("unknown field " + strconv.Quote(k))
		}
		if err != nil {
			return bad(k + " does not parse")
		}
		seen[k] = true
	}
	for _, k := range []string{"type", "local", "port", "ofport"} {
		if !seen[k] {
			return bad(k + " is missing")
		}
	}
	if t.Ofport <= 0 {
		return bad("ofport is not positive")
	}
	return t
}

// decodeTunnels lists a bridge's stored tunnels by port number.
func decodeTunnels(bridge string, ext map[string]string) []Tunnel {
	var ts []Tunnel
	for k, v := range ext {
		if r, ok := strings.CutPrefix(k, KeyTunnelPrefix); ok {
			ts = append(ts, decodeTunnel(bridge, r, v))
		}
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Ofport != ts[j].Ofport {
			return ts[i].Ofport < ts[j].Ofport
		}
		return ts[i].Remote < ts[j].Remote
	})
	return ts
}
