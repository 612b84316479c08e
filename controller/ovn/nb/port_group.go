package nb

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	ovsdbops "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovsnet/ovsnet/controller/intent"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/ovnnb"
)

// PortGroupName is OVN network name's port group. Port group names are
// identifiers in ACL matches (letters, digits, underscores): other
// characters become underscores, and a hash of the name keeps names that
// differ only there apart.
func PortGroupName(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	clean := strings.Map(func(r rune) rune {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, name)
	return fmt.Sprintf("ovsnet_%s_%08x", clean, h.Sum32())
}

// PortGroup reads OVN network name's port group; nil if it has none.
func PortGroup(ctx context.Context, nb *ovsdb.Client, name string) (*ovnnb.PortGroup, error) {
	pgs, err := ovsdb.Select[ovnnb.PortGroup](ctx, nb, []ovsdbops.Condition{ovsdb.NameIs(PortGroupName(name))}, "_uuid", "name", "acls", "ports", "external_ids")
	if err != nil || len(pgs) == 0 {
		return nil, err
	}
	return &pgs[0], nil
}

// NewPortGroup is the port group of OVN network name, holding ports (UUIDs
// or the named UUIDs of rows the same transaction makes).
func NewPortGroup(name string, ports []string) *ovnnb.PortGroup {
	ext := intent.Ownership("")
	ext[intent.KeyOVNNetwork] = name
	return &ovnnb.PortGroup{UUID: "ovsnet_pg", Name: PortGroupName(name), Ports: ports, ExternalIDs: ext}
}
