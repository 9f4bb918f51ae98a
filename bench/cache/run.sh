#!/usr/bin/env bash
# Cache benchmark (bench/README.md), three parts in one run:
#   1. hits per second for one cached 768-dimension embedding: corral's memory store, corral on
#      Redis alone (no memory tier), nginx proxy_cache keyed on the body; wrk, interleaved rounds
#   2. a skewed RAG-like workload (zipf.js): upstream calls against one per distinct request,
#      with the memory store and with Redis
#   3. Redis bytes per cached vector (MEMORY USAGE)
#
#   bash bench/cache/run.sh
#
# Knobs (environment): ROUNDS (3), DURATION (5s), CONNS (32), WARMUP (3s), LOAD_CPU (0),
#   PROXY_CPU (1), NICE (-15 as root), TARGETS ("memory redis nginx floor"; floor: a bare
#   node:http server answering the same bytes, the least any Node hit path costs), ZIPF (1: run part 2),
#   ZIPF_REQUESTS (20000), ZIPF_UNIVERSE (3000), ZIPF_DELAY (20: ms the stand-in takes per
#   generation and per embedding input in part 2, like a GPU), QUIET_WAIT (15), OUT (bench/results/cache-<timestamp>)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
CONNS="${CONNS:-32}"
WARMUP="${WARMUP:-3s}"
LOAD_CPU="${LOAD_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
if [ "$(id -u)" = 0 ]; then NICE="${NICE:--15}"; else NICE="${NICE:-0}"; fi
TARGETS="${TARGETS:-memory redis nginx floor}"
ZIPF="${ZIPF:-1}"
ZIPF_REQUESTS="${ZIPF_REQUESTS:-20000}"
ZIPF_UNIVERSE="${ZIPF_UNIVERSE:-3000}"
ZIPF_DELAY="${ZIPF_DELAY:-20}"
QUIET_WAIT="${QUIET_WAIT:-15}"
OUT="${OUT:-$ROOT/bench/results/cache-$(date -u +%Y%m%dT%H%M%SZ)}"

log() { printf '[cache] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
. "$ROOT/bench/lib.sh"
install_packages ${need_pkgs[@]+"${need_pkgs[@]}"}
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -f "$ROOT/dist/demo/run-demo.js" ] || (cd "$ROOT" && npm run build --silent) || die "build failed"

TMP="$(mktemp -d /tmp/corral-cache-bench.XXXXXX)"
chmod 755 "$TMP"
PIDS=()
cleanup() {
  [ "${#PIDS[@]}" = 0 ] || stop_pids "${PIDS[@]}"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

read -r UP_PORT SLOW_PORT REDIS_PORT NGINX_PORT MEM_PORT RED_PORT ZMEM_PORT ZRED_PORT FLOOR_PORT < <(free_ports 9)
[ "$REDIS_PORT" != 6379 ] || die "got port 6379 by chance; run again"

HZ="$(getconf CLK_TCK)"
sys_ticks() { awk '/^cpu / { print $2 + $3 + $4; exit }' /proc/stat; }
busy_pct() { local a b; a="$(sys_ticks)"; sleep 1; b="$(sys_ticks)"; echo $(((b - a) * 100 / HZ)); }
BUSY=0
for i in $(seq "$QUIET_WAIT"); do
  BUSY="$(busy_pct)"
  [ "$BUSY" -lt 10 ] && break
  [ "$i" = 1 ] && log "machine busy ($BUSY% of a core used by other processes); waiting up to ${QUIET_WAIT}s"
done

# ---------------------------------------------------------------------------------------------
# Services on LOAD_CPU: the stand-in Ollama (a fast one for part 1, one taking ZIPF_DELAY ms per
# request for part 2) and redis-server (no persistence; only this benchmark's keys).
# Not called through $(...): a subshell would keep the PID from the cleanup list.
start_bg() { # NAME CPU CMD...: start in the background, pinned and niced
  local name="$1" cpu="$2"; shift 2
  nice -n "$NICE" taskset -c "$cpu" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
}
wait_log() { for _ in $(seq 100); do grep -q "$2" "$TMP/$1.log" 2>/dev/null && return 0; sleep 0.1; done; die "$1 did not start: $(cat "$TMP/$1.log")"; }
# The stand-in is corral's own fake Ollama (`corral demo --fleet-only`): no per-token cost, slots
# to spare, byte-identical answers for equal requests; its control channel counts the calls.
STAND_IN=(node "$ROOT/bin/corral.js" demo --fleet-only --json --slots 1024 --prompt-ms 0 --token-ms 0 --embed-ms 0 --tokens 8 --frozen-timings)
start_bg upstream "$LOAD_CPU" "${STAND_IN[@]}" --instances upstream --fleet-port "$UP_PORT"; wait_log upstream '"instances"'
start_bg slow "$LOAD_CPU" "${STAND_IN[@]}" --instances slow --fleet-port "$SLOW_PORT" --prompt-ms "$ZIPF_DELAY" --embed-ms "$ZIPF_DELAY"
wait_log slow '"instances"'
SLOW_CONTROL="$(head -1 "$TMP/slow.log" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).control))')"
start_bg redis "$LOAD_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
wait_log redis "Ready to accept connections"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
UP_URL="http://127.0.0.1:$UP_PORT"
SLOW_URL="http://127.0.0.1:$SLOW_PORT"

# corral NAME PORT UPSTREAM REDIS_YAML: a corral on PROXY_CPU with its own config file.
corral() {
  local name="$1" port="$2" up="$3" redis="$4"
  printf 'listen: 127.0.0.1:%s\ninstances:\n  - url: %s\nlog:\n  level: warn\n%s\n' "$port" "$up" "$redis" >"$TMP/$name.yaml"
  cp "$TMP/$name.yaml" "$OUT/$name.yaml"
  (cd "$ROOT" && exec nice -n "$NICE" taskset -c "$PROXY_CPU" node bin/corral.js serve --config "$TMP/$name.yaml") >"$OUT/$name.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "corral $name did not start: $(cat "$OUT/$name.log")"
}

# ---------------------------------------------------------------------------------------------
# Part 1: hits per second.
BODY='{"model":"nomic-embed-text","input":"what does corral cache?"}'
declare -A URL
for t in $TARGETS; do
  case "$t" in
    memory) corral memory "$MEM_PORT" "$UP_URL" ""; URL[memory]="http://127.0.0.1:$MEM_PORT" ;;
    redis)
      corral redis "$RED_PORT" "$UP_URL" "$(printf 'redis:\n  url: %s\n  key_prefix: "hit:"\n  local_cache_size: 0' "$REDIS_URL")"
      URL[redis]="http://127.0.0.1:$RED_PORT" ;;
    nginx)
      NGX="$TMP/nginx"; mkdir -p "$NGX" && chmod 755 "$NGX"
      sed -e "s#@PREFIX@#$NGX#g" -e "s#@LISTEN@#$NGINX_PORT#g" -e "s#@UPSTREAM@#$UP_PORT#g" "$HERE/nginx.conf.template" >"$NGX/nginx.conf"
      cp "$NGX/nginx.conf" "$OUT/nginx.conf"
      nice -n "$NICE" taskset -c "$PROXY_CPU" "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$NGX/stdout.log" 2>&1 &
      PIDS+=("$!")
      for _ in $(seq 50); do curl -fsS -o /dev/null -X POST -d "$BODY" "http://127.0.0.1:$NGINX_PORT/api/embed" 2>/dev/null && break; sleep 0.1; done
      URL[nginx]="http://127.0.0.1:$NGINX_PORT" ;;
    floor)
      nice -n "$NICE" taskset -c "$PROXY_CPU" node "$HERE/node-floor.js" --port "$FLOOR_PORT" --upstream "$UP_URL" >"$OUT/floor.log" 2>&1 &
      PIDS+=("$!")
      for _ in $(seq 50); do grep -q listening "$OUT/floor.log" 2>/dev/null && break; sleep 0.1; done
      URL[floor]="http://127.0.0.1:$FLOOR_PORT" ;;
    *) die "unknown target $t" ;;
  esac
done

# Correctness first: the second answer of every target is a hit whose numbers are the upstream's.
WANT="$(curl -fsS -X POST -H 'content-type: application/json' -d "$BODY" "$UP_URL/api/embed" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).embeddings)))' | sha256sum | cut -c1-16)"
for t in $TARGETS; do
  curl -fsS -o /dev/null -X POST -H 'content-type: application/json' -d "$BODY" "${URL[$t]}/api/embed"
  sleep 0.2 # Redis writes happen after the response
  got="$(curl -fsS -D "$TMP/$t.headers" -X POST -H 'content-type: application/json' -d "$BODY" "${URL[$t]}/api/embed" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).embeddings)))' | sha256sum | cut -c1-16)"
  status="$(grep -i -E '^x-(corral-)?cache:' "$TMP/$t.headers" | tr -d '\r' | awk '{ print $2 }')"
  [ "$got" = "$WANT" ] || die "$t: the cached answer's numbers differ from the upstream's"
  case "$status" in hit|HIT) ;; *) die "$t: the second request was not a hit ($status)" ;; esac
  log "$t: hit, same numbers as the upstream"
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
declare -A RPS P50 P99 ERR
wrk_run() { # NAME URL DURATION
  nice -n "$NICE" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$3" --latency -s "$HERE/embed.lua" "$2" >"$OUT/$1.txt" 2>&1 || die "wrk: $(cat "$OUT/$1.txt")"
  grep '^RESULT ' "$OUT/$1.txt" | tail -1
}
for t in $TARGETS; do log "$t: warm-up $WARMUP"; wrk_run "$t-warmup" "${URL[$t]}" "$WARMUP" >/dev/null; done
for round in $(seq "$ROUNDS"); do
  for t in $TARGETS; do
    log "round $round/$ROUNDS, $t: wrk -t1 -c$CONNS -d$DURATION"
    r="$(wrk_run "$t-r$round" "${URL[$t]}" "$DURATION")"
    RPS[$t]="${RPS[$t]:-} $(field rps "$r")"; P50[$t]="${P50[$t]:-} $(field p50_us "$r")"; P99[$t]="${P99[$t]:-} $(field p99_us "$r")"
    ERR[$t]=$((${ERR[$t]:-0} + $(field errors "$r") + $(field non2xx "$r")))
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# ---------------------------------------------------------------------------------------------
# Part 2: zipf workload against fresh corrals in front of the slow stand-in.
declare -A ZIPF_RESULT
if [ "$ZIPF" = 1 ]; then
  corral zipf-memory "$ZMEM_PORT" "$SLOW_URL" ""
  corral zipf-redis "$ZRED_PORT" "$SLOW_URL" "$(printf 'redis:\n  url: %s\n  key_prefix: "zipf:"' "$REDIS_URL")"
  sleep 0.5 # Redis connects
  for mode in memory redis; do
    port="$ZMEM_PORT"; [ "$mode" = redis ] && port="$ZRED_PORT"
    log "zipf, $mode: $ZIPF_REQUESTS requests over $ZIPF_UNIVERSE distinct, $CONNS clients"
    ZIPF_RESULT[$mode]="$(nice -n "$NICE" taskset -c "$LOAD_CPU" node "$HERE/zipf.js" --url "http://127.0.0.1:$port" --upstream "$SLOW_CONTROL" \
      --requests "$ZIPF_REQUESTS" --universe "$ZIPF_UNIVERSE" --conns "$CONNS" --tag "$mode" | sed -n 's/^RESULT //p')"
    echo "${ZIPF_RESULT[$mode]}" >"$OUT/zipf-$mode.json"
  done
fi

# ---------------------------------------------------------------------------------------------
# Part 3: Redis bytes per cached vector.
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
HIT_KEY="$(rcli --scan --pattern 'hit:embedding:*' | head -1)"
ONE_USAGE="$( [ -n "$HIT_KEY" ] && rcli MEMORY USAGE "$HIT_KEY" || echo –)"
ONE_STRLEN="$( [ -n "$HIT_KEY" ] && rcli STRLEN "$HIT_KEY" || echo –)"
VEC_KEYS="$(rcli --scan --pattern 'zipf:embedding:*'; rcli --scan --pattern 'zipf:chunk:*')"
VEC_N=0; VEC_SUM=0
while read -r k; do
  [ -n "$k" ] || continue
  VEC_N=$((VEC_N + 1)); VEC_SUM=$((VEC_SUM + $(rcli MEMORY USAGE "$k")))
done <<<"$VEC_KEYS"
JSON_BYTES="$(curl -fsS -X POST -d "$BODY" "$UP_URL/api/embed" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).embeddings[0]).length))')"

{
  echo "Cache benchmark, $(date -u +'%Y-%m-%d %H:%M UTC'): nproc $(nproc), node $(node --version), $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'), $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(redis-server --version | awk '{ print $1, $2, $3 }')"
  echo "wrk + stand-in + redis-server on CPU $LOAD_CPU, the proxy on CPU $PROXY_CPU, nice $NICE. Part 1: wrk -t1 -c$CONNS -d$DURATION, $ROUNDS interleaved rounds after a $WARMUP warm-up, medians."
  [ "$BUSY" -lt 10 ] || echo "Warning: the machine was busy before the run ($BUSY% of a core used by other processes)."
  echo
  echo "| hits of one cached 768-d embedding | hits/s | p50 | p99 | errors |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for t in $TARGETS; do
    name="$t"; [ "$t" = memory ] && name="corral, memory store"; [ "$t" = redis ] && name="corral, Redis alone (local_cache_size: 0)"; [ "$t" = nginx ] && name="nginx proxy_cache (key: uri + body)"; [ "$t" = floor ] && name="floor: bare node:http, same bytes"
    awk -v n="$name" -v r="$(median "${RPS[$t]}")" -v a="$(median "${P50[$t]}")" -v b="$(median "${P99[$t]}")" -v e="${ERR[$t]}" \
      'BEGIN { printf "| %s | %.0f | %.2f ms | %.2f ms | %d |\n", n, r, a / 1000, b / 1000, e }'
  done
  if [ -n "${RPS[memory]:-}" ] && [ -n "${RPS[nginx]:-}" ]; then
    awk -v c="$(median "${RPS[memory]}")" -v n="$(median "${RPS[nginx]}")" 'BEGIN { printf "\n- corral memory / nginx hits/s: %.0f%% (goal >= 50%%: %s)\n", 100 * c / n, (c / n >= 0.5 ? "met" : "MISSED") }'
  fi
  if [ -n "${RPS[memory]:-}" ] && [ -n "${RPS[floor]:-}" ]; then
    awk -v c="$(median "${RPS[memory]}")" -v f="$(median "${RPS[floor]}")" -v n="$(median "${RPS[nginx]:-0}")" 'BEGIN { printf "- corral memory / floor hits/s: %.0f%%; floor / nginx: %.0f%%\n", 100 * c / f, (n > 0 ? 100 * f / n : 0) }'
  fi
  if [ -n "${RPS[redis]:-}" ] && [ -n "${RPS[nginx]:-}" ]; then
    awk -v c="$(median "${RPS[redis]}")" -v n="$(median "${RPS[nginx]}")" 'BEGIN { printf "- corral Redis alone / nginx hits/s: %.0f%%\n", 100 * c / n }'
  fi
  if [ "$ZIPF" = 1 ]; then
    echo
    echo "| zipf workload ($ZIPF_REQUESTS requests, $ZIPF_UNIVERSE distinct, $CONNS clients, stand-in $ZIPF_DELAY ms) | distinct requests | upstream calls | efficiency | seconds | errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for mode in memory redis; do
      node -e 'const r = JSON.parse(process.argv[2]); console.log(`| corral, ${process.argv[1]} | ${r.distinct} | ${r.upstream_calls} | ${r.efficiency} (goal >= 0.995: ${r.efficiency >= 0.995 ? "met" : "MISSED"}) | ${r.seconds} | ${r.errors} |`)' "$mode" "${ZIPF_RESULT[$mode]}"
    done
  fi
  echo
  echo "- Redis: one cached 768-d vector: value $ONE_STRLEN bytes (STRLEN), MEMORY USAGE $ONE_USAGE bytes; Ollama's JSON for it: $JSON_BYTES bytes"
  [ "$VEC_N" = 0 ] || awk -v n="$VEC_N" -v s="$VEC_SUM" 'BEGIN { printf "- Redis: %d vectors of the zipf run: MEMORY USAGE %.0f bytes each on average\n", n, s / n }'
} | tee "$OUT/summary.md"
log "raw reports and summary.md in $OUT"
