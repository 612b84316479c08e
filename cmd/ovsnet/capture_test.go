package main

import "testing"

func TestSplitContainerIface(t *testing.T) {
	for in, want := range map[string][2]string{
		"web":              {"web", ""},
		"web:eth1":         {"web", "eth1"},
		"default/pod:eth0": {"default/pod", "eth0"},
		"ns/a:b/c":         {"ns/a:b/c", ""},
		":eth1":            {":eth1", ""},
	} {
		if c, i := splitContainerIface(in); c != want[0] || i != want[1] {
			t.Errorf("%q: %q, %q; want %q, %q", in, c, i, want[0], want[1])
		}
	}
}
