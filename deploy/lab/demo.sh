#!/usr/bin/env bash
# Demo network on a lab VM: bridge lab0 with this VM's /24, two busybox
# containers attached with addresses, a link and a published port.
# Usage: demo.sh 10.97.1   (the first three octets of this VM's range)
set -euo pipefail
net=${1:-10.97.1}
image=ovsnet-lab/busybox
if ! docker image inspect "$image" >/dev/null 2>&1; then
  root=$(mktemp -d); mkdir -p "$root/bin"; cp /bin/busybox "$root/bin/"
  for a in sh ping sleep ip nc httpd mkdir; do ln -sf busybox "$root/bin/$a"; done
  tar -C "$root" -c . | docker import - "$image"; rm -rf "$root"
fi
ovsnet add-br lab0 --subnet "$net.0/24" --icc=false
for c in web client; do
  docker inspect "$c" >/dev/null 2>&1 || docker run -d --network none --name "$c" "$image" sleep infinity
  ovsnet del-ports lab0 "$c"
done
ovsnet add-port lab0 eth1 web --ip -p 8080:80
ovsnet add-port lab0 eth1 client --ip
ovsnet link lab0 client web --port 80
docker exec web sh -c "mkdir -p /www && echo hello from ovsnet > /www/index.html"
docker exec -d web httpd -p 80 -h /www
ovsnet show lab0
