#!/usr/bin/env bash
# Makes this host an OVN central node for ovsnet's OVN networks: Debian's
# ovn-central installed if missing, and its northbound and southbound
# databases listening on TCP so that every chassis reaches them
# (ovsnet ovn join --sb tcp:THIS_HOST:6642 --nb tcp:THIS_HOST:6641).
# Idempotent. Usage: deploy/ovn-central.sh [ADDRESS]   (default 0.0.0.0)
# OVN_NB_DB / OVN_SB_DB name the databases' local sockets if not Debian's.
set -euo pipefail
addr=${1:-0.0.0.0}
if ! command -v ovn-nbctl >/dev/null 2>&1 || ! command -v ovn-northd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends ovn-central
fi
listen() { # TOOL PORT
  local want="ptcp:$2:$addr"
  # ovn-sbctl prints the connection's role first ('read-write role="" ptcp:...')
  if ! "$1" get-connection | grep -qxE "(.* )?$want"; then
    "$1" set-connection "$want"
    echo "$1: listening on $want"
  fi
}
listen ovn-nbctl 6641
listen ovn-sbctl 6642
