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

# stop_pids PID...: SIGTERM (after SIGCONT, in case one was frozen), up to 5 s each to exit, then SIGKILL.
stop_pids() {
  local pid
  for pid in "$@"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

# free_ports N: prints N distinct free 127.0.0.1 ports (held open together while chosen).
free_ports() {
  node -e '
    const net = require("node:net"); const n = +process.argv[1]; const s = []; let left = n;
    for (let i = 0; i < n; i++) { const srv = net.createServer(); s.push(srv);
      srv.listen(0, "127.0.0.1", () => { if (--left === 0) {
        console.log(s.map((x) => x.address().port).join(" ")); s.forEach((x) => x.close()); } }); }' "$1"
}
