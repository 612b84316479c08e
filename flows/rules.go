package flows

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseRules parses a link's --port values (PORT, PORT/tcp, PORT/udp); "all" or
// nothing means every protocol.
func ParseRules(specs []string) ([]Rule, error) {
	var rs []Rule
	for _, s := range specs {
		if s == "all" {
			return nil, nil
		}
		num, proto, _ := strings.Cut(s, "/")
		if proto == "" {
			proto = "tcp"
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp") {
			return nil, fmt.Errorf("bad port %q: want PORT[/tcp|udp] with PORT in 1..65535", s)
		}
		rs = append(rs, Rule{Proto: proto, Port: uint16(n)})
	}
	return rs, nil
}

// RulesString is rs as a link stores them: "all" for none.
func RulesString(rs []Rule) string {
	if len(rs) == 0 {
		return "all"
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return strings.Join(out, ",")
}
