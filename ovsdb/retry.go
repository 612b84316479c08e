package ovsdb

import (
	"crypto/rand"
	"errors"
	"math/big"
	"time"
)

// MaxAttempts is how often a guarded write is tried again after losing a
// write conflict before the conflict is returned.
const MaxAttempts = 100

// OnConflict runs try again, after a jittered wait, for as long as it
// loses a guarded write to another writer (ErrConflict), at most
// MaxAttempts times.
func OnConflict(try func() error) error {
	for attempt := 0; ; attempt++ {
		err := try()
		if !errors.Is(err, ErrConflict) || attempt >= MaxAttempts {
			return err
		}
		time.Sleep(Backoff(attempt))
	}
}

// Backoff is the jittered wait before retry number attempt.
func Backoff(attempt int) time.Duration {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(1000*(attempt%10+1))))
	return time.Duration(v.Int64()) * time.Microsecond
}
