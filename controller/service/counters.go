package service

import (
	"context"

	"github.com/ovsnet/ovsnet/attach"
	"github.com/ovsnet/ovsnet/controller/network"
	"github.com/ovsnet/ovsnet/ovsdb"
	"github.com/ovsnet/ovsnet/ovsdb/vswitchd"
)

// counters reads the packet, byte and drop counters of ports, by OVS port
// name, as the bridge sees them (rx: from the container): OVSDB's
// interface statistics, or, for an internal port moved into its container
// (which ovs-vswitchd can no longer see), its device's counters read in
// the container, sent and received swapped. A port whose counters cannot
// be read is left out.
func counters(ctx context.Context, db *ovsdb.Client, ports []network.PortView) (map[string]attach.Counters, error) {
	rows, err := ovsdb.Select[vswitchd.Interface](ctx, db, nil, "name", "statistics")
	if err != nil {
		return nil, err
	}
	stats := map[string]map[string]int{}
	for _, r := range rows {
		stats[r.Name] = r.Statistics
	}
	out := map[string]attach.Counters{}
	for _, p := range ports {
		if s := stats[p.OVSPort]; len(s) > 0 {
			out[p.OVSPort] = fromOVSDB(s)
			continue
		}
		if p.Type == attach.TypeInternal && p.Netns != "" {
			if c, err := attach.LinkCounters(p.Netns, p.Iface); err == nil {
				out[p.OVSPort] = attach.Counters{RxPackets: c.TxPackets, TxPackets: c.RxPackets, RxBytes: c.TxBytes, TxBytes: c.RxBytes,
					RxDropped: c.TxDropped, TxDropped: c.RxDropped}
			}
		}
	}
	return out, nil
}

// fromOVSDB reads an Interface row's statistics column.
func fromOVSDB(s map[string]int) attach.Counters {
	u := func(k string) uint64 {
		if v, ok := s[k]; ok && v >= 0 {
			return uint64(v)
		}
		return 0
	}
	return attach.Counters{RxPackets: u("rx_packets"), TxPackets: u("tx_packets"), RxBytes: u("rx_bytes"), TxBytes: u("tx_bytes"),
		RxDropped: u("rx_dropped"), TxDropped: u("tx_dropped")}
}
