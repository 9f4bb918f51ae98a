# Shared by the bench/*/run.sh scripts: source it after defining log() and die().

# install_packages PKG...: installs the Debian packages with apt-get (root only), without letting
# their postinst start system services (a policy-rc.d that exits 101 keeps nginx off port 80).
install_packages() {
  [ "$#" -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "missing $*: install them (apt-get install $*) or run as root"
  log "installing $* with apt-get"
  apt-get update -qq >/dev/null
  local own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
}
