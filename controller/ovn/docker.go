package ovn

import (
	"context"
	"fmt"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
)

// Docker networks on OVN networks: `docker network create -d ovsnet -o
// ovsnet.ovn=NAME --ipam-driver null` maps the Docker network (this
// host's) to OVN network NAME on the Open_vSwitch row; its endpoints then
// attach through the engine as any port of NAME, their addresses OVN's.

// MapDocker records that Docker network id attaches to OVN network
// name, which must exist.
func MapDocker(ctx context.Context, h *network.Host, id, name string) error {
	a, err := openNetwork(ctx, h, name)
	if err != nil {
		return err
	}
	if a == nil {
		return fmt.Errorf("no OVN network %s: is this host an OVN chassis (ovsnet ovn join ... --nb), and the network made (ovsnet network create %s --subnet CIDR)?", name, name)
	}
	a.Close()
	_, err = h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetRootExternalIDs(map[string]string{intent.DockerOVNKey(id): name}) })
	return err
}

// UnmapDocker forgets Docker network id's OVN network.
func UnmapDocker(ctx context.Context, h *network.Host, id string) error {
	_, err := h.DB.Do(ctx, func(tx *ovsdb.Tx) { tx.SetRootExternalIDs(nil, intent.DockerOVNKey(id)) })
	return err
}

// DockerNetwork is the OVN network Docker network id attaches to, or "".
func DockerNetwork(ctx context.Context, h *network.Host, id string) (string, error) {
	root, err := h.DB.RootExternalIDs(ctx)
	return root[intent.DockerOVNKey(id)], err
}
