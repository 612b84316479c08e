#!/usr/bin/env bash
# Installs what ovsnet needs, if missing (Debian/Ubuntu):
#   deploy/deps.sh demo   what `make demo` needs: Open vSwitch and the tools
#                         its private sandbox and two containers use
#   deploy/deps.sh        everything the tests need besides: Docker's image
#                         tools, Podman, OVN, a browser, the kernel-datapath
#                         VM's qemu, the reference CNI plugins
set -euo pipefail
. "$(dirname "$0")/apt.sh"
# command:package pairs
demo=(ovs-vswitchd:openvswitch-switch ovs-vsctl:openvswitch-common ip:iproute2 ping:iputils-ping iptables:iptables)
tests=(busybox:busybox-static ethtool:ethtool iperf3:iperf3 hping3:hping3 uuidgen:uuid-runtime tcpdump:tcpdump
       podman:podman chromium:chromium curl:curl ovn-northd:ovn-central ovn-controller:ovn-host
       qemu-system-x86_64:qemu-system-x86 cpio:cpio depmod:kmod)
case "${1:-test}" in
  demo) want=("${demo[@]}") ;;
  test) want=("${demo[@]}" "${tests[@]}") ;;
  *) echo "usage: deploy/deps.sh [demo|test]" >&2; exit 2 ;;
esac
need=()
for pair in "${want[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# qemu, cpio and kmod boot the kernel-datapath VM the tests run in (test/vm).
# The reference CNI plugins the CNI tests chain with and measure against.
if [ "${1:-test}" = test ] && ! [ -x /usr/lib/cni/portmap ]; then
  need+=(containernetworking-plugins)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  # Debian starts OVS's system service on install; ovsnet's sandbox does not need it.
  apt_install "${need[@]}"
fi
command -v go >/dev/null 2>&1 || { echo "deps: Go is not installed (https://go.dev/doc/install, 1.24 or newer)" >&2; exit 1; }
