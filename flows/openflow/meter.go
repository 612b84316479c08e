package openflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Meter is an OpenFlow meter that drops what a flow sends it beyond PPS
// packets a second, after a burst of Burst packets. A flow uses one with
// its Meter field; the meter must exist before the flow does.
type Meter struct {
	ID    uint32
	PPS   uint32
	Burst uint32
}

func (m Meter) String() string {
	return fmt.Sprintf("meter=%d,pktps,burst,stats,bands=type=drop,rate=%d,burst_size=%d", m.ID, m.PPS, m.Burst)
}

const (
	typeMeterMod = 29
	// Meter-mod commands.
	meterAdd    = 0
	meterModify = 1
	meterDelete = 2
	// Meter flags: rates in packets, the burst given, counted.
	meterFlags = 2 | 4 | 8 // OFPMF_PKTPS | OFPMF_BURST | OFPMF_STATS
	// Meter-mod errors (OFPET_METER_MOD_FAILED).
	errMeterMod    = 12
	codeMeterExist = 1
	meterAll       = 0xffffffff // OFPM_ALL
	mpMeterConfig  = 10         // OFPMP_METER_CONFIG
	instMeter      = 6          // OFPIT_METER
)

// MeterMod encodes an add, modify or delete of m.
func meterMod(m Meter, cmd uint16, xid uint32) []byte {
	b := header(nil, typeMeterMod, xid)
	b = be16(b, cmd)
	if cmd == meterDelete {
		b = be16(b, 0)
		return finish(be32(b, m.ID))
	}
	b = be16(b, meterFlags)
	b = be32(b, m.ID)
	b = be16(b, 1) // OFPMBT_DROP
	b = be16(b, 16)
	b = be32(b, m.PPS)
	b = be32(b, m.Burst)
	return finish(append(b, 0, 0, 0, 0))
}

// MeterMod encodes an add of m (for tests against ovs-ofctl's parser).
func MeterMod(m Meter, xid uint32) []byte { return meterMod(m, meterAdd, xid) }

// meterInstruction is the instruction that sends a flow's packets through
// meter id, ahead of its actions.
func meterInstruction(id uint32) []byte {
	return be32(be16(be16(nil, instMeter), 8), id)
}

// refusal is an error message ovs-vswitchd sent for one of ours.
type refusal struct {
	xid        uint32
	typ, code  uint16
	what, name string
}

func (r *refusal) Error() string { return r.what + ": " + r.name }

// addMeters appends adds of ms to out, noting each xid in texts; adds
// maps the xids to the meters.
func (c *Conn) addMeters(out []byte, ms []Meter, texts map[uint32]string, adds map[uint32]Meter) []byte {
	for _, m := range ms {
		c.xid++
		out = append(out, meterMod(m, meterAdd, c.xid)...)
		texts[c.xid] = "add " + m.String()
		adds[c.xid] = m
	}
	return out
}

// existing splits errs into the meters whose add found them there (to be
// modified instead) and the other errors.
func existing(errs []error, adds map[uint32]Meter) (modify []Meter, rest []error) {
	for _, err := range errs {
		var r *refusal
		if errors.As(err, &r) && r.typ == errMeterMod && r.code == codeMeterExist {
			if m, ok := adds[r.xid]; ok {
				modify = append(modify, m)
				continue
			}
		}
		rest = append(rest, err)
	}
	return modify, rest
}

// modifyMeters sets meters that exist to ms, in one exchange.
func (c *Conn) modifyMeters(ms []Meter) []error {
	var out []byte
	texts := map[uint32]string{}
	for _, m := range ms {
		c.xid++
		out = append(out, meterMod(m, meterModify, c.xid)...)
		texts[c.xid] = "modify " + m.String()
	}
	errs, err := c.barrier(out, texts, nil)
	if err != nil {
		return []error{err}
	}
	return errs
}

// barrier sends out and a barrier, and reads up to the barrier's reply:
// every answer to out (multipart replies of several messages included)
// comes before it.
func (c *Conn) barrier(out []byte, texts map[uint32]string, got func(message)) ([]error, error) {
	c.xid++
	out = append(out, finish(header(nil, typeBarrierReq, c.xid))...)
	return c.exchange(out, c.xid, texts, got)
}

// SetMeters makes each of ms exist with its rate: one exchange adds them,
// a second modifies those that were there.
func (c *Conn) SetMeters(ms []Meter) error {
	if len(ms) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	texts, adds := map[uint32]string{}, map[uint32]Meter{}
	errs, err := c.barrier(c.addMeters(nil, ms, texts, adds), texts, nil)
	if err != nil {
		return err
	}
	modify, errs := existing(errs, adds)
	if len(modify) > 0 {
		errs = append(errs, c.modifyMeters(modify)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("set meters on %s: %w", c.bridge, errors.Join(errs...))
	}
	return nil
}

// Meters reads every meter of the bridge (OFPMP_METER_CONFIG), by ID.
// Only drop bands in packets are read; another meter reads as rate 0.
func (c *Conn) Meters() (map[uint32]Meter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.xid++
	req := header(nil, typeMultiReq, c.xid)
	req = be16(req, mpMeterConfig)
	req = append(req, 0, 0, 0, 0, 0, 0)
	req = be32(req, meterAll)
	req = finish(append(req, 0, 0, 0, 0))
	asked := c.xid
	ms := map[uint32]Meter{}
	errs, err := c.barrier(req, map[uint32]string{asked: "read meters"}, func(m message) {
		if m.xid == asked && m.typ == typeMultiRep {
			meterConfigs(m.body, ms)
		}
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("bridge %s: %w", c.bridge, errors.Join(errs...))
	}
	return ms, nil
}

// meterConfigs reads an OFPMP_METER_CONFIG reply's body into ms.
func meterConfigs(body []byte, ms map[uint32]Meter) {
	if len(body) < 8 || binary.BigEndian.Uint16(body) != mpMeterConfig {
		return
	}
	for b := body[8:]; len(b) >= 8; {
		n := int(binary.BigEndian.Uint16(b))
		if n < 8 || n > len(b) {
			return
		}
		flags, m := binary.BigEndian.Uint16(b[2:]), Meter{ID: binary.BigEndian.Uint32(b[4:])}
		if band := b[8:n]; len(band) >= 16 && binary.BigEndian.Uint16(band) == 1 && flags&2 != 0 {
			m.PPS, m.Burst = binary.BigEndian.Uint32(band[4:]), binary.BigEndian.Uint32(band[8:])
		}
		ms[m.ID] = m
		b = b[n:]
	}
}

// DeleteMeters deletes the meters ids (and with them any flow using one).
func (c *Conn) DeleteMeters(ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []byte
	texts := map[uint32]string{}
	for _, id := range ids {
		c.xid++
		out = append(out, meterMod(Meter{ID: id}, meterDelete, c.xid)...)
		texts[c.xid] = fmt.Sprintf("delete meter %d", id)
	}
	errs, err := c.barrier(out, texts, nil)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete meters on %s: %w", c.bridge, errors.Join(errs...))
	}
	return nil
}
