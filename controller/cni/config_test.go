package cni

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseConf(t *testing.T) {
	c, err := parseConf([]byte(`{"cniVersion":"1.1.0","name":"net1","type":"ovsnet","bridge":"br-cni","subnet":"10.60.0.0/24",
		"subnet6":"fd00:60::/64","gateway":"10.60.0.254","icc":false,"mtu":1400,"vlan":7,"portType":"veth","ovsdb":"/run/x/db.sock"}`))
	if err != nil {
		t.Fatal(err)
	}
	b := c.bridge(nil, nil)
	if b.Name != "br-cni" || len(b.Subnets) != 2 || b.Gateways[0] != "10.60.0.254" || *b.ICC || b.MTU != 1400 {
		t.Fatalf("bridge: %+v", b)
	}
	if o, err := parseConf([]byte(`{"name":"n","bridge":"lab","ovn":true}`)); err != nil || !o.bridge(nil, nil).OVN {
		t.Fatalf("an OVN network's configuration: %v", err)
	}
	if ep, dir := c.endpoint(); ep != "unix:/run/x/db.sock" || dir != "/run/x" {
		t.Fatalf("endpoint %s, run dir %s", ep, dir)
	}
	for stdin, code := range map[string]uint{
		`{"name":"n","bridge":"b","subnet":"10.0.0.0/24"`:                      types.ErrDecodingFailure,
		`{"name":"n","bridge":"b","subnet":"10.0.0.0/24","icc":"no"}`:          types.ErrDecodingFailure,
		`{"name":"n","subnet":"10.0.0.0/24"}`:                                  types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"b"}`:                                            types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"b","subnet":"10.0.0.0/33"}`:                     types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"b","subnet6":"10.0.0.0/24"}`:                    types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"b","subnet":"10.0.0.0/24","portType":"tap"}`:    types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"b","subnet":"10.0.0.0/24","vlan":4095}`:         types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"this-name-is-too-long","subnet":"10.0.0.0/24"}`: types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"lab","ovn":true,"subnet":"10.0.0.0/24"}`:        types.ErrInvalidNetworkConfig,
		`{"name":"n","bridge":"lab","ovn":true,"icc":false}`:                   types.ErrInvalidNetworkConfig,
	} {
		_, err := parseConf([]byte(stdin))
		if te, ok := err.(*types.Error); !ok || te.Code != code {
			t.Errorf("%s: %v, want code %d", stdin, err, code)
		}
	}
}

// Capabilities come before CNI_ARGS; without either, ovsnet allocates.
func TestPortOptions(t *testing.T) {
	c, err := parseConf([]byte(`{"name":"net1","bridge":"br","subnet":"10.60.0.0/24","runtimeConfig":{"ips":["10.60.0.7/24"],"mac":"02:00:00:00:00:07",
		"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP"},{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.port("id1", "/run/netns/c1", "eth0", "IP=10.60.0.9;MAC=02:00:00:00:00:09")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addresses[0] != "10.60.0.7/24" || o.MAC != "02:00:00:00:00:07" || o.Netns != "/run/netns/c1" || o.CNINetwork != "net1" ||
		strings.Join(o.Publish, " ") != "0.0.0.0:8080:80/tcp 127.0.0.1:53:53/udp" {
		t.Fatalf("options: %+v", o)
	}
	c.RuntimeConfig.IPs, c.RuntimeConfig.MAC = nil, ""
	if o, _ := c.port("id1", "/n", "eth0", "IgnoreUnknown=1;IP=10.60.0.9,fd00::9;MAC=02:00:00:00:00:09"); strings.Join(o.Addresses, " ") != "10.60.0.9 fd00::9" || o.MAC != "02:00:00:00:00:09" {
		t.Fatalf("CNI_ARGS: %+v", o)
	}
	if o, _ := c.port("id1", "/n", "eth0", ""); len(o.Addresses) != 1 || o.Addresses[0] != "auto" {
		t.Fatalf("no address asked: %+v", o.Addresses)
	}
	if o, _ := c.port("id1", "/n", "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=id1"); o.Name != "ns1/web" {
		t.Fatalf("a pod's name from CNI_ARGS: %q", o.Name)
	}
	if o, _ := c.port("id1", "/n", "eth0", "IgnoreUnknown=1;K8S_POD_NAME=web"); o.Name != "web" { // Podman's container name
		t.Fatalf("a name without a namespace: %q", o.Name)
	}
	if _, err := c.port("id1", "/n", "eth0", "BOGUS=1"); err == nil {
		t.Fatal("an unknown CNI_ARGS key without IgnoreUnknown accepted")
	}
}
