#!/usr/bin/env bash
# Installs the programs the tests start (Debian packages), only those missing: redis-server (the
# cache's Redis tests start their own on a free port, and a Cluster and a Sentinel group of them),
# redis-cli (Debian's redis-tools, a dependency of redis-server: the Cluster tests create their
# cluster with `redis-cli --cluster create`) and prometheus (promtool: the metrics test checks the
# exposition with it; the prometheus server: the dashboards test starts one on a free port).
# It installs them with apt-get, as root or through sudo; without either it prints one line saying
# what to install and exits 1. With --check it never installs: `npm test` runs it so (pretest), so a missing program is
# named in one line before any test starts instead of as `spawn redis-server ENOENT` in the middle.
# `.ci/run` runs it to install.
set -uo pipefail
check_only=false
[ "${1:-}" = "--check" ] && check_only=true

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  printf 'the tests need %s (as Debian names them): install them with your package manager\n' "${missing[*]}" >&2
  exit 1
fi
if [ "$check_only" = true ]; then
  printf 'the tests need %s (Debian packages): run `scripts/test-deps.sh` to install them\n' "${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  # Not root: through sudo where there is one (a fresh Debian container is root and has none).
  if command -v sudo >/dev/null 2>&1; then exec sudo -- bash "$0" "$@"; fi
  printf 'the tests need %s (Debian packages): run `scripts/test-deps.sh` as root to install them\n' "${missing[*]}" >&2
  exit 1
fi

printf '\n== apt-get install %s\n' "${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The packages must not start their system services (a Redis on 6379, a Prometheus on 9090):
# policy-rc.d answering 101 forbids it, and is removed again unless it was there before.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=true
fi
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
installed=$?
if [ "$own_policy" = true ]; then rm -f "$policy"; fi
if [ "$installed" -ne 0 ]; then
  printf 'could not install %s\n' "${missing[*]}" >&2
  exit 1
fi
