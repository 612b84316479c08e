package sandbox

import (
	"fmt"
	"regexp"
	"strconv"
)

var meterStatsRE = regexp.MustCompile(`packet_in_count:(\d+)(?s:.*)\n0: packet_count:(\d+)`)

// MeterStats reads meter id of bridge (ovs-ofctl meter-stats): the packets
// that went into it and those its drop band dropped.
func (s *Sandbox) MeterStats(bridge string, id int) (in, dropped int, err error) {
	out, err := s.Run("ovs-ofctl", "-O", "OpenFlow14", "meter-stats", bridge, fmt.Sprintf("meter=%d", id))
	if err != nil {
		return 0, 0, err
	}
	m := meterStatsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no stats of meter %d on %s in %q", id, bridge, out)
	}
	in, _ = strconv.Atoi(m[1])
	dropped, _ = strconv.Atoi(m[2])
	return in, dropped, nil
}
