package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// DatapathCapabilities is what ovs-vswitchd reports the datapath of type
// dp ("system", "netdev") can do, as the Datapath row that the root row's
// datapaths column names for it holds (nd_ext, ct_zone, ...). There is
// such a row only where someone asked for it (ovn-controller makes one
// for its integration bridge): when there is none it is made, with
// ext as its external_ids, and ovs-vswitchd fills it in on its next
// reconfiguration, which needs a bridge of that type to exist. It waits
// (server-side) up to timeout for that.
func (c *Client) DatapathCapabilities(ctx context.Context, dp string, ext map[string]string, timeout time.Duration) (map[string]string, error) {
	uuid, err := c.datapathRow(ctx, dp, ext)
	if err != nil {
		return nil, err
	}
	ms := int(timeout / time.Millisecond)
	none, _ := ovsdb.NewOvsMap(map[string]string{})
	where := []ovsdb.Condition{UUIDIs(uuid)}
	res, err := c.transact(ctx, []ovsdb.Operation{
		{Op: ovsdb.OperationWait, Table: vswitchd.DatapathTable, Where: where, Columns: []string{"capabilities"},
			Until: string(ovsdb.WaitConditionNotEqual), Rows: []ovsdb.Row{{"capabilities": none}}, Timeout: &ms},
		Query{Table: vswitchd.DatapathTable, Where: where, Columns: []string{"_uuid", "capabilities"}}.Op(),
	})
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("ovs-vswitchd did not report the capabilities of datapath %s within %s: is ovs-vswitchd running, with a bridge of that type? (ovs-vsctl list Datapath)", dp, timeout)
	}
	if err != nil {
		return nil, err
	}
	rows, err := Decode[vswitchd.Datapath](c, res[1].Rows)
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("datapath %s: its Datapath row vanished: %v", dp, err)
	}
	return rows[0].Capabilities, nil
}

// datapathRow returns the UUID of the Datapath row of type dp, made if
// missing. Of two makers the first wins (a map insert does not overwrite),
// and the loser's row, referenced by nothing, is garbage-collected.
func (c *Client) datapathRow(ctx context.Context, dp string, ext map[string]string) (string, error) {
	for range 2 {
		roots, err := Select[vswitchd.OpenvSwitch](ctx, c, nil, "_uuid", "datapaths")
		if err != nil {
			return "", err
		}
		if len(roots) == 0 {
			return "", fmt.Errorf("the Open_vSwitch table is empty: run ovs-vsctl init")
		}
		if uuid, ok := roots[0].Datapaths[dp]; ok {
			return uuid, nil
		}
		if _, err := c.Do(ctx, func(t *Tx) { t.createDatapath(dp, ext) }); err != nil {
			return "", fmt.Errorf("make the Datapath row of %s: %w", dp, err)
		}
	}
	return "", fmt.Errorf("the Datapath row of %s vanished as it was made", dp)
}

// createDatapath makes a Datapath row and names it the root row's datapath
// of type dp.
func (t *Tx) createDatapath(dp string, ext map[string]string) {
	d := &vswitchd.Datapath{UUID: t.name("dp"), DatapathVersion: "0", ExternalIDs: ext}
	t.add(t.c.Create(d))
	o, all := t.root()
	t.add(t.c.WhereAll(o, all).Mutate(o, model.Mutation{Field: &o.Datapaths, Mutator: ovsdb.MutateOperationInsert, Value: map[string]string{dp: d.UUID}}))
}

// ReadDatapathCapabilities is DatapathCapabilities without making the row
// or waiting: nil when there is no row for dp yet.
func (c *Client) ReadDatapathCapabilities(ctx context.Context, dp string) (map[string]string, error) {
	roots, err := Select[vswitchd.OpenvSwitch](ctx, c, nil, "_uuid", "datapaths")
	if err != nil || len(roots) == 0 {
		return nil, err
	}
	uuid, ok := roots[0].Datapaths[dp]
	if !ok {
		return nil, nil
	}
	rows, err := Select[vswitchd.Datapath](ctx, c, []ovsdb.Condition{UUIDIs(uuid)}, "_uuid", "capabilities")
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0].Capabilities, nil
}
