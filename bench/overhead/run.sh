#!/usr/bin/env bash
# Overhead benchmark: the same wrk load straight to a fast stand-in Ollama, through nginx, and
# through corral, side by side in one run; prints one Markdown table. Method: bench/README.md.
#
#   bash bench/overhead/run.sh
#
# Knobs (environment):
#   ROUNDS (5)         interleaved rounds; each round measures every target once; medians reported
#   DURATION (5s)      throughput run per target and round: wrk -t$THREADS -c$CONNS
#   CONNS (32), THREADS (1)
#   LAT_DURATION (3s)  latency run per target and round: wrk -t1 -c1
#   WARMUP (5s)        per target, before the first round, discarded
#   LOAD_CPU (0)       CPU for wrk and the stand-in upstream
#   PROXY_CPU (1)      CPU for the proxy under test (nginx or corral)
#   NICE (-15 as root) priority of every process the benchmark runs
#   TARGETS ("direct nginx corral"; add "floor" for a bare node:http + undici relay, and
#                      then ROUNDS=4 to stay under 3 minutes; "corral-auth" is corral with API keys on;
#                      "corral-learned" is corral with no max_concurrency: its learned concurrency)
#   CORRAL_ARGS        extra flags for `corral serve`
#   STREAM (unset)     1: ask for the streamed answer (8 NDJSON chunks) instead of one JSON object
#   PROFILE (unset)    1: run corral under `node --cpu-prof` and summarise its profile
#   QUIET_WAIT (15)    seconds to wait for other processes to calm down before starting
#   OUT                results dir (default bench/results/overhead-<timestamp>, git-ignored)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-5s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-1}"
LAT_DURATION="${LAT_DURATION:-3s}"
WARMUP="${WARMUP:-5s}"
LOAD_CPU="${LOAD_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
# On a machine shared with other work, -15 gives the benchmark's processes ~97% of a contended
# core (CFS weights), so background jobs barely move the figures. Needs root; 0 otherwise.
if [ "$(id -u)" = 0 ]; then NICE="${NICE:--15}"; else NICE="${NICE:-0}"; fi
TARGETS="${TARGETS:-direct nginx corral}"
CORRAL_ARGS="${CORRAL_ARGS:-}"
PROFILE="${PROFILE:-}"
QUIET_WAIT="${QUIET_WAIT:-15}"
OUT="${OUT:-$ROOT/bench/results/overhead-$(date -u +%Y%m%dT%H%M%SZ)}"

log() { printf '[overhead] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools: wrk and nginx from Debian when absent (needs root), taskset from util-linux.
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
. "$ROOT/bench/lib.sh"
install_packages ${need_pkgs[@]+"${need_pkgs[@]}"}
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
ncpu="$(nproc)"
if [ "$PROXY_CPU" -ge "$ncpu" ] || [ "$LOAD_CPU" -ge "$ncpu" ]; then die "PROXY_CPU/LOAD_CPU must be < nproc ($ncpu)"; fi

# ---------------------------------------------------------------------------------------------
# Processes we start, stopped on any exit.
TMP="$(mktemp -d /tmp/corral-overhead.XXXXXX)"
chmod 755 "$TMP" # nginx workers (nobody when run as root) use temp dirs under it
PIDS=()
cleanup() {
  [ "${#PIDS[@]}" = 0 ] || stop_pids "${PIDS[@]}"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

read -r UP_PORT NGINX_PORT CORRAL_PORT FLOOR_PORT AUTH_PORT LEARNED_PORT < <(free_ports 6)
# Sent by every request to every target (wrk and the readiness checks); only corral-auth checks it.
export BENCH_KEY="overhead-bench-key-0123456789"

# fetch URL PROMPT: POST a generate request, print "<status> <sha256 of body> <bytes>".
fetch() {
  node -e '
    const [url, prompt] = process.argv.slice(1);
    fetch(url + "/api/generate", { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer " + process.env.BENCH_KEY },
      body: JSON.stringify({ model: "llama3.2", prompt, stream: false }), signal: AbortSignal.timeout(2000) })
      .then(async (r) => { const b = Buffer.from(await r.arrayBuffer());
        console.log(r.status, require("node:crypto").createHash("sha256").update(b).digest("hex"), b.length); })
      .catch((e) => { console.log("ERR", e.cause?.code ?? e.name, 0); });' "$1" "$2"
}

# wait_ready URL SECONDS: poll until a generate answer is exactly the upstream's bytes ($WANT).
wait_ready() {
  local url="$1" secs="$2" got="" i
  for i in $(seq $((secs * 10))); do
    got="$(fetch "$url" "readiness check $i")"
    [ "$got" = "$WANT" ] && return 0
    sleep 0.1
  done
  log "$url never answered like the upstream: got '$got', want '$WANT'"
  return 1
}

# CPU accounting, in clock ticks. cpu_ticks PID...: user+system of those processes (all threads).
# sys_ticks: user+nice+system of the whole machine (irq/softirq are not charged to processes
# either). shell_child_ticks: this script's finished children, wrk among them.
HZ="$(getconf CLK_TCK)"
cpu_ticks() {
  local t=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
  done
  echo "$t"
}
sys_ticks() { awk '/^cpu / { print $2 + $3 + $4; exit }' /proc/stat; }
shell_child_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat"; }

# The figures mean something only on a quiet machine: wait (up to QUIET_WAIT s) until other
# processes use less than a tenth of a core. Noise during the runs is measured and reported too.
busy_pct() { local a b; a="$(sys_ticks)"; sleep 1; b="$(sys_ticks)"; echo $(((b - a) * 100 / HZ)); }
BUSY=0
for i in $(seq "$QUIET_WAIT"); do
  BUSY="$(busy_pct)"
  [ "$BUSY" -lt 10 ] && break
  [ "$i" = 1 ] && log "machine busy ($BUSY% of a core used by other processes); waiting up to ${QUIET_WAIT}s"
done

# ---------------------------------------------------------------------------------------------
# Start the stand-in upstream, then the proxies; a proxy that cannot be started is skipped.
declare -A URL PROC NOTE
nice -n "$NICE" taskset -c "$LOAD_CPU" node "$HERE/upstream.js" --port "$UP_PORT" >"$TMP/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
UP_URL="http://127.0.0.1:$UP_PORT"
for _ in $(seq 50); do grep -q listening "$TMP/upstream.log" && break; sleep 0.1; done
WANT="$(fetch "$UP_URL" "expected answer")"
case "$WANT" in 200\ *) ;; *) die "upstream did not answer: $WANT ($(cat "$TMP/upstream.log"))" ;; esac
log "upstream $UP_URL answers $WANT"

# start_corral TARGET PORT EXTRA_YAML: a corral process as a target (corral, or corral-auth: the
# same with API keys on, to measure what admission costs).
start_corral() {
  local target="$1" port="$2" extra="$3" cap="${4-    max_concurrency: 1024
}"
  if [ ! -f "$ROOT/dist/cli.js" ]; then
    log "corral: dist/ missing, building"
    (cd "$ROOT" && { [ -d node_modules ] || npm ci --silent; } && npm run build --silent) >"$OUT/corral-build.log" 2>&1 ||
      log "corral: build failed (see $OUT/corral-build.log)"
  fi
  if ! (cd "$ROOT" && node bin/corral.js --version) >"$OUT/corral-version.txt" 2>&1; then
    why="$(grep -m1 -iE 'error' "$OUT/corral-version.txt" || head -1 "$OUT/corral-version.txt")"
    NOTE[$target]="skipped: \`node bin/corral.js --version\` failed: $(head -c 160 <<<"$why" | tr '|' ' ')"
    log "$target: ${NOTE[$target]}"
    return 1
  fi
  CORRAL_VERSION="$(head -1 "$OUT/corral-version.txt")"
  prof_flags=""
  [ -z "$PROFILE" ] || prof_flags="--cpu-prof --cpu-prof-dir=$OUT"
  # shellcheck disable=SC2086
  # No concurrency cap, like nginx: this measures relaying, not corral's queue (the stand-in
  # answers at once, it has no parallel slots to protect). corral-learned: no cap set, the
  # limit corral learns (it should find none worth keeping).
  printf 'listen: 127.0.0.1:%s\ninstances:\n  - url: %s\n%s%s' "$port" "$UP_URL" "$cap" "$extra" >"$OUT/$target.yaml"
  (cd "$ROOT" && exec nice -n "$NICE" taskset -c "$PROXY_CPU" node $prof_flags bin/corral.js serve \
    --config "$OUT/$target.yaml" --log-level warn $CORRAL_ARGS) >"$OUT/$target.log" 2>&1 &
  CORRAL_PID=$!
  PIDS+=("$CORRAL_PID")
  if ! wait_ready "http://127.0.0.1:$port" 20; then
    NOTE[$target]="skipped: corral did not answer POST /api/generate with the upstream's bytes (log: $OUT/$target.log)"
    log "$target: ${NOTE[$target]}"
    return 1
  fi
  URL[$target]="http://127.0.0.1:$port"
  PROC[$target]="$CORRAL_PID"
  return 0
}

RUN=()
for target in $TARGETS; do
  case "$target" in
    direct)
      URL[direct]="$UP_URL"; PROC[direct]=""
      ;;
    nginx)
      NGX="$TMP/nginx"
      mkdir -p "$NGX" && chmod 755 "$NGX"
      sed -e "s#@PREFIX@#$NGX#g" -e "s#@LISTEN@#$NGINX_PORT#g" -e "s#@UPSTREAM@#$UP_PORT#g" \
        "$HERE/nginx.conf.template" >"$NGX/nginx.conf"
      nice -n "$NICE" taskset -c "$PROXY_CPU" "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" \
        >"$NGX/stdout.log" 2>&1 &
      NGINX_PID=$!
      PIDS+=("$NGINX_PID")
      wait_ready "http://127.0.0.1:$NGINX_PORT" 10 || die "nginx: $(cat "$NGX/error.log" "$NGX/stdout.log")"
      cp "$NGX/nginx.conf" "$OUT/nginx.conf"
      URL[nginx]="http://127.0.0.1:$NGINX_PORT"
      PROC[nginx]="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')" # master + worker
      ;;
    floor)
      # Optional: a bare node:http + undici relay (node-floor.js), the floor for a Node proxy.
      nice -n "$NICE" taskset -c "$PROXY_CPU" node "$HERE/node-floor.js" --port "$FLOOR_PORT" --upstream "$UP_URL" \
        >"$OUT/floor.log" 2>&1 &
      FLOOR_PID=$!
      PIDS+=("$FLOOR_PID")
      wait_ready "http://127.0.0.1:$FLOOR_PORT" 10 || die "node-floor.js: $(cat "$OUT/floor.log")"
      URL[floor]="http://127.0.0.1:$FLOOR_PORT"
      PROC[floor]="$FLOOR_PID"
      ;;
    corral)
      start_corral corral "$CORRAL_PORT" "" || continue
      ;;
    corral-learned)
      start_corral corral-learned "$LEARNED_PORT" "" "" || continue
      ;;
    corral-auth)
      # A key with per-key limits that never bind: the cost of admission itself (lookup, the
      # minute window, the concurrency slot), not of refusals.
      start_corral corral-auth "$AUTH_PORT" "$(printf 'auth:\n  enabled: true\n  keys:\n    - name: bench\n      key: %s\n      rpm: 100000000\n      max_concurrency: 100000\n' "$BENCH_KEY")" || continue
      ;;
    *) die "unknown target $target" ;;
  esac
  RUN+=("$target")
done

# ---------------------------------------------------------------------------------------------
BASE=1000000000 # prompt numbers: each wrk run gets its own range of 1e9 (see generate.lua)
# wrk_run NAME URL CONNS DURATION: run wrk, keep its report, print its RESULT line.
wrk_run() {
  local name="$1" url="$2" conns="$3" dur="$4" threads="$THREADS"
  [ "$conns" -lt "$threads" ] && threads="$conns"
  BASE=$((BASE + 1000000000))
  nice -n "$NICE" taskset -c "$LOAD_CPU" wrk -t"$threads" -c"$conns" -d"$dur" --latency -s "$HERE/generate.lua" \
    "$url" -- "$BASE" >"$OUT/$name.txt" 2>&1 || { log "wrk failed: $(cat "$OUT/$name.txt")"; return 1; }
  grep '^RESULT ' "$OUT/$name.txt" | tail -1
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# Per target, one value per round, space separated: rps/p50/p99 (throughput run), rps1/p501/p991
# (concurrency 1), cpu (proxy % of a core), cpureq (proxy CPU µs per request), foreign (% of a
# core used by other processes during the throughput run). Latencies in µs.
declare -A M
add() { M[$1,$2]="${M[$1,$2]:-}${M[$1,$2]:+ }$3"; }

for t in "${RUN[@]}"; do
  log "$t: warm-up $WARMUP"
  wrk_run "$t-warmup" "${URL[$t]}" "$CONNS" "$WARMUP" >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for t in "${RUN[@]}"; do
    log "round $round/$ROUNDS, $t: -t$THREADS -c$CONNS -d$DURATION, then -t1 -c1 -d$LAT_DURATION"
    # shellcheck disable=SC2086
    p0="$(cpu_ticks ${PROC[$t]})"; u0="$(cpu_ticks "$UP_PID")"; s0="$(sys_ticks)"; w0="$(shell_child_ticks)"
    r="$(wrk_run "$t-c$CONNS-r$round" "${URL[$t]}" "$CONNS" "$DURATION")"
    # shellcheck disable=SC2086
    p1="$(cpu_ticks ${PROC[$t]})"; u1="$(cpu_ticks "$UP_PID")"; s1="$(sys_ticks)"; w1="$(shell_child_ticks)"
    us="$(field duration_us "$r")"; req="$(field requests "$r")"
    add "$t" rps "$(field rps "$r")"; add "$t" p50 "$(field p50_us "$r")"; add "$t" p99 "$(field p99_us "$r")"
    add "$t" cpu $(((p1 - p0) * 100 * 1000000 / HZ / us))
    add "$t" cpureq $(((p1 - p0) * 10000000 / HZ / req)) # tenths of µs
    add "$t" foreign $((((s1 - s0) - (p1 - p0) - (u1 - u0) - (w1 - w0)) * 100 * 1000000 / HZ / us))
    add "$t" errors $(($(field errors "$r") + $(field non2xx "$r")))
    r="$(wrk_run "$t-c1-r$round" "${URL[$t]}" 1 "$LAT_DURATION")"
    add "$t" rps1 "$(field rps "$r")"; add "$t" p501 "$(field p50_us "$r")"; add "$t" p991 "$(field p99_us "$r")"
    add "$t" errors $(($(field errors "$r") + $(field non2xx "$r")))
  done
done

if [ -n "$PROFILE" ] && [ -n "${PROC[corral]:-}" ]; then
  kill "$CORRAL_PID"; wait "$CORRAL_PID" 2>/dev/null || true
  prof="$(find "$OUT" -maxdepth 1 -name '*.cpuprofile' | head -1)"
  if [ -n "$prof" ]; then
    node "$HERE/profile-summary.js" "$prof" >"$OUT/corral-profile.txt"
    log "corral profile: $prof; summary: $OUT/corral-profile.txt"
  else
    log "corral: no .cpuprofile written (it must exit through process.exit on SIGTERM)"
  fi
fi

# ---------------------------------------------------------------------------------------------
median() { tr ' ' '\n' <<<"$1" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
maxof() { tr ' ' '\n' <<<"$1" | sort -g | tail -1; }
med() { median "${M[$1,$2]}"; }
ms() { awk -v u="$1" 'BEGIN { printf "%.3f ms", u / 1000 }'; }
range() { tr ' ' '\n' <<<"${M[$1,$2]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f–%.0f", lo, hi }'; }
has() { [ -n "${M[$1,rps]:-}" ]; }
{
  echo "Overhead benchmark, $(date -u +'%Y-%m-%d %H:%M UTC'): nproc $(nproc), node $(node --version), $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'), $("$NGINX" -v 2>&1 | sed 's/.*: //'), corral ${CORRAL_VERSION:-–}"
  echo "Load per target and round: wrk -t$THREADS -c$CONNS -d$DURATION, then -t1 -c1 -d$LAT_DURATION; $ROUNDS interleaved rounds after a $WARMUP warm-up; medians of the rounds. wrk + upstream on CPU $LOAD_CPU, proxy on CPU $PROXY_CPU, all at nice $NICE."
  [ "$BUSY" -lt 10 ] || echo "Warning: the machine was busy before the run ($BUSY% of a core used by other processes)."
  [ -z "$PROFILE" ] || echo "Note: corral ran under \`node --cpu-prof\` (PROFILE=1): its figures include the profiler's cost."
  echo
  echo "| target | req/s (c$CONNS) | req/s range | p50 (c$CONNS) | p99 (c$CONNS) | p50 (c1) | p99 (c1) | req/s (c1) | proxy CPU (c$CONNS) | proxy CPU per request |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for t in $TARGETS; do
    if ! has "$t"; then
      echo "| $t | ${NOTE[$t]:-not run} | | | | | | | | |"
      continue
    fi
    cpu="–"; cpureq="–"
    [ -z "${PROC[$t]}" ] || { cpu="$(med "$t" cpu)%"; cpureq="$(awk -v v="$(med "$t" cpureq)" 'BEGIN { printf "%.0f µs", v / 10 }')"; }
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %.0f | %s | %s |\n' "$t" "$(med "$t" rps)" "$(range "$t" rps)" \
      "$(ms "$(med "$t" p50)")" "$(ms "$(med "$t" p99)")" "$(ms "$(med "$t" p501)")" "$(ms "$(med "$t" p991)")" \
      "$(med "$t" rps1)" "$cpu" "$cpureq"
  done
  echo
  for t in "${RUN[@]}"; do
    e="$(tr ' ' '\n' <<<"${M[$t,errors]}" | awk '{ s += $1 } END { print s + 0 }')"
    [ "$e" = 0 ] || echo "- warning, $t: $e socket errors or non-2xx answers (see the raw wrk reports)"
    f="$(maxof "${M[$t,foreign]}")"
    [ "$f" -lt 10 ] || echo "- warning, $t: other processes used up to $f% of a core during its runs: figures are noisy"
  done
  if has direct; then
    for t in nginx floor corral; do
      has "$t" || continue
      echo "- $t adds $(ms "$(awk -v a="$(med "$t" p501)" -v b="$(med direct p501)" 'BEGIN { print a - b }')") to p50 at c1 and $(ms "$(awk -v a="$(med "$t" p50)" -v b="$(med direct p50)" 'BEGIN { print a - b }')") at c$CONNS (vs direct)"
    done
  fi
  if has corral && has nginx; then
    # Also the ratio within each round (nginx and corral measured seconds apart): steadier than
    # absolute figures when the machine's speed drifts.
    per_round="$(paste -d' ' <(tr ' ' '\n' <<<"${M[corral,rps]}") <(tr ' ' '\n' <<<"${M[nginx,rps]}") |
      awk '{ printf "%s%.0f%%", (NR > 1 ? ", " : ""), 100 * $1 / $2 }')"
    awk -v c="$(med corral rps)" -v n="$(med nginx rps)" -v cq="$(med corral cpureq)" -v nq="$(med nginx cpureq)" -v pr="$per_round" 'BEGIN {
      printf "- corral / nginx req/s at c'"$CONNS"': %.0f%% (goal >= 60%%: %s; per round: %s); CPU per request: corral %.1fx nginx\n",
        100 * c / n, (c / n >= 0.6 ? "met" : "MISSED"), pr, cq / nq }'
  fi
  if has floor && has nginx; then
    awk -v f="$(med floor rps)" -v n="$(med nginx rps)" 'BEGIN { printf "- floor (bare node:http + undici relay) / nginx req/s at c'"$CONNS"': %.0f%%\n", 100 * f / n }'
  fi
  if has corral && has direct; then
    a="$(awk -v a="$(med corral p501)" -v b="$(med direct p501)" 'BEGIN { print a - b }')"
    awk -v a="$a" 'BEGIN { printf "- corral added p50 at c1: %.3f ms (goal <= 0.5 ms: %s)\n", a / 1000, (a <= 500 ? "met" : "MISSED") }'
  fi
} | tee "$OUT/summary.md"
log "raw wrk reports and summary.md in $OUT"
