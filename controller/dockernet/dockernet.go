// Package dockernet knows Docker's networks by the names users give them.
// Docker tells its network plugin only a network's ID, and the plugin names
// the bridge after it (ovd + 12 hex digits); users know the name they gave
// `docker network create`. Record writes that name on the bridge once
// Docker has made the network, and Lookup finds the bridge (or the OVN
// network) a Docker network's name stands for, asking the Engine API when
// the name is not recorded yet.
package dockernet

import (
	"context"
	"fmt"
	"time"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/containers"
	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// OptOVN is the -o option of a Docker network whose containers join the
// OVN network it names.
const OptOVN = "ovsnet.ovn"

// Lookup is the ovsnet network Docker network name stands for: the bridge
// that carries it, or for one made with -o ovsnet.ovn=NET, NET. It is ""
// when neither ovsnet nor Docker knows a network so named (or this host
// has no Docker engine); a Docker network that ovsnet does not carry is an
// error saying so.
func Lookup(ctx context.Context, db *ovsdb.Client, name string) (string, error) {
	if intent.CheckDockerName(name) != nil {
		return "", nil
	}
	if br, err := carrying(ctx, db, intent.KeyDockerName, name); err != nil || br != nil {
		return nameOf(br), err
	}
	n, err := containers.DockerNetwork(ctx, name)
	if err != nil || n == nil {
		return "", nil // an engine that does not answer knows no name either
	}
	if ovn := n.Options[OptOVN]; ovn != "" {
		return ovn, nil
	}
	br, err := BridgeOf(ctx, db, n.ID)
	if err != nil {
		return "", err
	}
	if br == nil {
		return "", fmt.Errorf("Docker network %s (driver %s) is not one of ovsnet's: ovsnet acts on networks made with docker network create -d ovsnet (the controller's --docker-plugin name)", name, n.Driver)
	}
	record(ctx, db, br.Name, n.Name) // for show, and the next lookup
	return br.Name, nil
}

// Record writes the name Docker gives network id on the bridge carrying
// it, once Docker has the network (it asks its plugin before it stores
// the network): it asks the Engine API until then, at most wait.
func Record(ctx context.Context, db *ovsdb.Client, id string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var err error
	for {
		var n *containers.DockerNet
		n, err = containers.DockerNetwork(ctx, id)
		if err == nil && n != nil && n.ID == id {
			br, err := BridgeOf(ctx, db, id)
			if err != nil || br == nil {
				return err // the network went again
			}
			return record(ctx, db, br.Name, n.Name)
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("no such network yet")
			}
			return fmt.Errorf("Docker network %s: the Engine API did not name it within %s: %w", id, wait, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func record(ctx context.Context, db *ovsdb.Client, bridge, name string) error {
	if err := intent.CheckDockerName(name); err != nil {
		return err
	}
	_, err := db.Do(ctx, func(tx *ovsdb.Tx) {
		tx.SetBridgeExternalIDs(bridge, map[string]string{intent.KeyDockerName: name})
	})
	return err
}

// BridgeOf is the bridge carrying Docker network id, or nil.
func BridgeOf(ctx context.Context, db *ovsdb.Client, id string) (*vswitchd.Bridge, error) {
	return carrying(ctx, db, intent.KeyDockerNetwork, id)
}

// carrying is the bridge whose external_ids hold key=value, or nil.
func carrying(ctx context.Context, db *ovsdb.Client, key, value string) (*vswitchd.Bridge, error) {
	bs, err := ovsdb.Select[vswitchd.Bridge](ctx, db,
		[]ovsdbops.Condition{ovsdb.ExternalIDsInclude(map[string]string{key: value})}, "_uuid", "name", "external_ids")
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	return &bs[0], nil
}

func nameOf(br *vswitchd.Bridge) string {
	if br == nil {
		return ""
	}
	return br.Name
}
