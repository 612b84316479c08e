package openflow

import (
	"errors"
	"testing"
)

// A METER_CONFIG reply reads back as the meters' IDs, rates and bursts;
// a meter of another kind (no packet-rate drop band) reads as rate 0, so
// that it differs from any meter ovsnet wants.
func TestMeterConfigs(t *testing.T) {
	config := func(m Meter, flags uint16) []byte {
		b := be16(nil, 24) // length: header 8 + one band 16
		b = be16(b, flags)
		b = be32(b, m.ID)
		b = be16(b, 1)
		b = be16(b, 16)
		b = be32(b, m.PPS)
		b = be32(b, m.Burst)
		return append(b, 0, 0, 0, 0)
	}
	body := be16(nil, mpMeterConfig)
	body = append(body, 0, 0, 0, 0, 0, 0)
	body = append(body, config(Meter{ID: 3, PPS: 500, Burst: 100}, meterFlags)...)
	body = append(body, config(Meter{ID: 9, PPS: 8000, Burst: 0}, 1)...) // kbps
	ms := map[uint32]Meter{}
	meterConfigs(body, ms)
	if len(ms) != 2 || ms[3] != (Meter{ID: 3, PPS: 500, Burst: 100}) || ms[9] != (Meter{ID: 9}) {
		t.Fatalf("read %+v", ms)
	}
	meterConfigs(body[:20], ms) // cut short: nothing more, no panic
}

// Adds refused because the meter is there become modifies; every other
// refusal stays an error.
func TestExistingMetersModified(t *testing.T) {
	adds := map[uint32]Meter{7: {ID: 1, PPS: 10}, 8: {ID: 2, PPS: 20}}
	errs := []error{
		&refusal{xid: 7, typ: errMeterMod, code: codeMeterExist, what: "add meter 1", name: "OFPMMFC_METER_EXISTS"},
		&refusal{xid: 8, typ: errMeterMod, code: 10, what: "add meter 2", name: "OFPMMFC_OUT_OF_METERS"},
		errors.New("something else"),
	}
	modify, rest := existing(errs, adds)
	if len(modify) != 1 || modify[0].ID != 1 || len(rest) != 2 {
		t.Fatalf("modify %+v, rest %v", modify, rest)
	}
}
