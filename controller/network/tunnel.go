package network

import (
	"github.com/ovsnet/ovsnet/controller/intent"
)

// Tunnel is one tunnel of a bridge to another host, as stored in the
// bridge's external_ids and as `tunnel list` shows it.
type Tunnel = intent.Tunnel
