package main

import "testing"

func TestParseRateAndLoss(t *testing.T) {
	for in, want := range map[string]uint64{"10mbit": 10_000_000, "500kbit": 500_000, "1gbit": 1_000_000_000, "8000": 8000, "64bit": 64, "": 0} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("rate %q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"fast", "10mb", "0", "-1mbit"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("rate %q parsed", bad)
		}
	}
	for in, want := range map[string]float64{"1%": 1, "0.5": 0.5, "100%": 100, "": 0} {
		if got, err := parseLoss(in); err != nil || got != want {
			t.Errorf("loss %q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"101%", "-1", "lots"} {
		if _, err := parseLoss(bad); err == nil {
			t.Errorf("loss %q parsed", bad)
		}
	}
}

func TestRateFlags(t *testing.T) {
	l, err := rateFlags{rate: "20mbit", outRate: "5mbit", burst: "1mbit"}.limit()
	if err != nil || l.IngressRate != 20_000_000 || l.EgressRate != 5_000_000 || l.IngressBurst != 1_000_000 || l.EgressBurst != 1_000_000 {
		t.Fatalf("%+v, %v", l, err)
	}
	if _, err := (rateFlags{inRate: "fast"}).limit(); err == nil {
		t.Fatal("--ingress-rate fast parsed")
	}
}
