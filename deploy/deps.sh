#!/usr/bin/env bash
# Installs what ovsnet, its demo and its tests need, if missing (Debian/Ubuntu).
set -euo pipefail
need=()
for pair in ovs-vswitchd:openvswitch-switch ovs-vsctl:openvswitch-common ip:iproute2 ping:iputils-ping \
            busybox:busybox-static iptables:iptables ethtool:ethtool iperf3:iperf3 hping3:hping3 uuidgen:uuid-runtime \
            podman:podman chromium:chromium curl:curl ovn-northd:ovn-central ovn-controller:ovn-host \
            qemu-system-x86_64:qemu-system-x86 cpio:cpio depmod:kmod; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# qemu, cpio and kmod boot the kernel-datapath VM the tests run in (test/vm).
# The reference CNI plugins the CNI tests chain with and measure against.
[ -x /usr/lib/cni/portmap ] || need+=(containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Debian starts OVS's system service on install; ovsnet's sandbox does not need it.
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
command -v go >/dev/null 2>&1 || { echo "deps: Go is not installed (https://go.dev/doc/install, 1.24 or newer)" >&2; exit 1; }
