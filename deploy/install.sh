#!/usr/bin/env bash
# Installs ovsnet on a Debian/Ubuntu host: Open vSwitch if missing, the
# binary, the controller's systemd unit, enabled and started, and, where
# the datapath is the userspace one, OVS's userspace TSO turned on. On a
# host without systemd (a container, WSL, a minimal VM) it starts nothing
# and prints what to run instead.
# Idempotent: running it again changes nothing that is already in place.
# Usage: deploy/install.sh [BINARY]   (default: bin/ovsnet, built if missing)
# ROOT=/some/dir installs into a chroot-like tree without starting anything.
set -euo pipefail
bin=bin/ovsnet
[ $# -gt 0 ] && bin=$(realpath -m -- "$1") # given from where it was run
cd "$(dirname "$0")/.."
. deploy/apt.sh
ROOT=${ROOT:-}
if [ ! -x "$bin" ]; then
  make build
fi
if [ -z "$ROOT" ] && ! command -v ovs-vswitchd >/dev/null 2>&1 && ! [ -x /usr/sbin/ovs-vswitchd ]; then
  apt_install openvswitch-switch iptables
fi
systemd=false
[ -z "$ROOT" ] && [ -d /run/systemd/system ] && systemd=true
install -d "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system"
if ! cmp -s "$bin" "$ROOT/usr/local/bin/ovsnet"; then
  install -m 0755 "$bin" "$ROOT/usr/local/bin/ovsnet"
  echo "installed $ROOT/usr/local/bin/ovsnet"
fi
# The CNI plugin: the same program, run by CNI runtimes from /opt/cni/bin.
install -d "$ROOT/opt/cni/bin"
if ! cmp -s "$bin" "$ROOT/opt/cni/bin/ovsnet"; then
  install -m 0755 "$bin" "$ROOT/opt/cni/bin/ovsnet"
  echo "installed $ROOT/opt/cni/bin/ovsnet"
fi
unit=deploy/systemd/ovsnet-controller.service
if ! cmp -s "$unit" "$ROOT/etc/systemd/system/ovsnet-controller.service"; then
  install -m 0644 "$unit" "$ROOT/etc/systemd/system/ovsnet-controller.service"
  echo "installed $ROOT/etc/systemd/system/ovsnet-controller.service"
fi

# The userspace datapath (no openvswitch kernel module) carries containers'
# TCP at about a tenth of a Linux bridge's without OVS's userspace TSO, which
# Debian leaves off. A drop-in turns it on before every start of
# ovs-vswitchd (it reads the setting at start only).
has_ovs_module() {
  if [ -z "$ROOT" ]; then
    [ -d /sys/module/openvswitch ] || modprobe -n -q openvswitch 2>/dev/null
  else
    compgen -G "$ROOT/lib/modules/*/kernel/net/openvswitch/openvswitch.ko*" >/dev/null
  fi
}
tso_now() {
  # Turn it on in OVSDB; restart ovs-vswitchd only while no ovsnet port
  # exists (a restart kills internal ports moved into containers until the
  # controller re-attaches them).
  [ -z "$ROOT" ] && command -v ovs-vsctl >/dev/null 2>&1 || return 0
  if ! cur=$(ovs-vsctl --timeout=5 --if-exists get Open_vSwitch . other_config:userspace-tso-enable 2>/dev/null); then
    echo "Open vSwitch is not running, so userspace TSO was not turned on: once it runs," >&2
    echo "  ovs-vsctl set Open_vSwitch . other_config:userspace-tso-enable=true, then restart ovs-vswitchd ($restart_ovs)" >&2
    return 0
  fi
  [ "$cur" = '"true"' ] && return 0
  ovs-vsctl --timeout=5 set Open_vSwitch . other_config:userspace-tso-enable=true
  echo "turned userspace TSO on in OVSDB"
  if [ -n "$(ovs-vsctl --timeout=5 --bare --columns=name find Interface external_ids:ovsnet-owner=ovsnet)" ]; then
    echo "ovsnet ports exist, so ovs-vswitchd was not restarted: it takes the setting at its next start." >&2
    echo "  Run '$restart_ovs' when a moment's outage is fine: internal ports in containers go dark" >&2
    echo "  until the controller re-attaches them (a second or two), veths get their offloads back; 'ovsnet doctor' tells." >&2
  elif $systemd; then
    systemctl daemon-reload
    systemctl restart ovs-vswitchd.service
    echo "restarted ovs-vswitchd with userspace TSO"
  else
    $ovs_ctl restart >/dev/null
    echo "restarted Open vSwitch with userspace TSO ($ovs_ctl restart)"
  fi
}
ovs_ctl=/usr/share/openvswitch/scripts/ovs-ctl
restart_ovs="systemctl restart ovs-vswitchd"
$systemd || restart_ovs="$ovs_ctl restart"
if ! has_ovs_module; then
  dropin=deploy/systemd/ovs-vswitchd-userspace-tso.conf
  dir="$ROOT/etc/systemd/system/ovs-vswitchd.service.d"
  if ! cmp -s "$dropin" "$dir/ovsnet-userspace-tso.conf"; then
    install -d "$dir"
    install -m 0644 "$dropin" "$dir/ovsnet-userspace-tso.conf"
    echo "installed $dir/ovsnet-userspace-tso.conf"
  fi
  tso_now
fi

if $systemd; then
  systemctl daemon-reload
  systemctl enable --now ovsnet-controller.service
elif [ -z "$ROOT" ]; then
  cat <<MSG
This host does not run systemd (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)): nothing was enabled or started.
Start these now and after every boot (the controller before dockerd, if Docker uses ovsnet networks):
  $ovs_ctl start --system-id=random     # Open vSwitch: ovsdb-server and ovs-vswitchd
  nohup ovsnet controller --listen 127.0.0.1:9476 --resync 10s --docker-plugin ovsnet >>/var/log/ovsnet-controller.log 2>&1 &
  ovsnet doctor                         # then: what the host has and lacks, each finding with its fix
MSG
fi
"$ROOT/usr/local/bin/ovsnet" version
