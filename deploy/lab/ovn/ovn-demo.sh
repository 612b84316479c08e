#!/usr/bin/env bash
# One VM of the OVN lab: joins the OVN deployment at CENTRAL with this
# VM's address, makes the network "lab" if no VM has yet, and attaches a
# busybox container named after this host. Idempotent.
# Usage: ovn-demo.sh CENTRAL_ADDRESS THIS_VM_ADDRESS
set -euo pipefail
central=$1 me=$2
image=ovsnet-lab/busybox
if ! docker image inspect "$image" >/dev/null 2>&1; then
  root=$(mktemp -d); mkdir -p "$root/bin"; cp /bin/busybox "$root/bin/"
  for a in sh ping sleep ip nc httpd mkdir; do ln -sf busybox "$root/bin/$a"; done
  tar -C "$root" -c . | docker import - "$image"; rm -rf "$root"
fi
systemctl enable --now ovn-controller
ovsnet ovn join --sb "tcp:$central:6642" --nb "tcp:$central:6641" --encap-ip "$me"
ovsnet network create lab --subnet 10.60.0.0/16
c=$(hostname)
docker inspect "$c" >/dev/null 2>&1 || docker run -d --network none --name "$c" "$image" sleep infinity
ovsnet del-ports lab "$c"
ovsnet add-port lab eth1 "$c" --ip
ovsnet show lab
