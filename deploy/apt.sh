# Sourced by deps.sh and install.sh: apt_install installs Debian/Ubuntu
# packages, waiting (up to 10 minutes, saying so) for another package
# manager that holds apt's or dpkg's lock (unattended-upgrades after a
# VM's first boot, say) instead of failing.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local waited=0 out
  until out=$(apt-get update -q 2>&1); do
    if ! grep -q "Could not get lock" <<<"$out" || [ $waited -ge 600 ]; then
      echo "$out" >&2
      return 1
    fi
    [ $waited -eq 0 ] && echo "waiting for another package manager to finish (apt's lock is held; up to 10 minutes) ..."
    sleep 5
    waited=$((waited + 5))
  done
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "$@"
}
