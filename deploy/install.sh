#!/usr/bin/env bash
# Installs ovsnet on a Debian/Ubuntu host: Open vSwitch if missing, the
# binary, and the controller's systemd unit, enabled and started.
# Idempotent: running it again changes nothing that is already in place.
# Usage: deploy/install.sh [BINARY]   (default: bin/ovsnet, built if missing)
# ROOT=/some/dir installs into a chroot-like tree without starting anything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-}
bin=${1:-bin/ovsnet}
if [ ! -x "$bin" ]; then
  make build
fi
if [ -z "$ROOT" ] && ! command -v ovs-vswitchd >/dev/null 2>&1 && ! [ -x /usr/sbin/ovs-vswitchd ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q openvswitch-switch iptables
fi
install -d "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system"
if ! cmp -s "$bin" "$ROOT/usr/local/bin/ovsnet"; then
  install -m 0755 "$bin" "$ROOT/usr/local/bin/ovsnet"
  echo "installed $ROOT/usr/local/bin/ovsnet"
fi
unit=deploy/systemd/ovsnet-controller.service
if ! cmp -s "$unit" "$ROOT/etc/systemd/system/ovsnet-controller.service"; then
  install -m 0644 "$unit" "$ROOT/etc/systemd/system/ovsnet-controller.service"
  echo "installed $ROOT/etc/systemd/system/ovsnet-controller.service"
fi
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now ovsnet-controller.service
fi
"$ROOT/usr/local/bin/ovsnet" version
