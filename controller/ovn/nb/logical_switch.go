package nb

import (
	"context"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// LogicalSwitches reads the Logical_Switch rows called name (OVN does not
// make names unique).
func LogicalSwitches(ctx context.Context, nb *ovsdb.Client, name string) ([]ovnnb.LogicalSwitch, error) {
	return ovsdb.Select[ovnnb.LogicalSwitch](ctx, nb, []ovsdbops.Condition{ovsdb.NameIs(name)}, "_uuid", "name", "external_ids", "other_config", "ports")
}
