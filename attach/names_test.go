package attach

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"eth1", "ovs-br1", "a", "eth0.10", "x23456789012345"} {
		if err := CheckName("interface", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                 "empty",
		"x234567890123456": "at most 15",
		"a/b":              "'/'",
		"..":               "not a valid",
		"a b":              "not a valid",
	} {
		if err := CheckName("interface", name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", name, err, want)
		}
	}
}
