#!/usr/bin/env bash
# Ingestion benchmark (bench/README.md, "Cache misses"): what a cache miss costs, side by side in
# one run, against a stand-in Ollama that answers from precomputed vectors (`corral demo
# --fleet-only --precomputed`: 768-d float32 vectors printed as Ollama prints them, ~9.5 KB of JSON each).
#   1. saturation: /api/embed batches of 32 new chunks, 8 connections (wrk, ingest.lua), straight
#      to the stand-in, through nginx (pass-through), corral with its cache off, corral with its
#      defaults (memory store) and corral with Redis; vectors/s, p50, p99, corral's RSS, and the
#      vectors corral skipped storing because it was saturated
#   2. unique single /api/embeddings prompts, 16 connections: nginx, corral cache off, corral default;
#      and cached batches (the same 64 batches of 32 over and over): corral default, vectors/s
#   3. re-send: 150 batches of 32 new chunks at 100 batches/s, then the same 150 at once: hits of
#      the second pass, memory store and Redis (resend.js)
#   4. with MILLION=N (e.g. 1000000): N new vectors into a fresh default corral, RSS along the way
#
#   bash bench/cache/ingest.sh
#
# Knobs (environment): ROUNDS (3), DURATION (8s), WARMUP (2s), CONNS (8), SINGLE_CONNS (16),
#   LOAD_CPU (0), PROXY_CPU (1), NICE (-15 as root), TARGETS ("direct nginx off memory redis"),
#   MILLION (0), OUT (bench/results/ingest-<timestamp>)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8s}"
WARMUP="${WARMUP:-2s}"
CONNS="${CONNS:-8}"
SINGLE_CONNS="${SINGLE_CONNS:-16}"
LOAD_CPU="${LOAD_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
if [ "$(id -u)" = 0 ]; then NICE="${NICE:--15}"; else NICE="${NICE:-0}"; fi
TARGETS="${TARGETS:-direct nginx off memory redis}"
MILLION="${MILLION:-0}"
OUT="${OUT:-$ROOT/bench/results/ingest-$(date -u +%Y%m%dT%H%M%SZ)}"

log() { printf '[ingest] %s\n' "$*" >&2; }
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

TMP="$(mktemp -d /tmp/corral-ingest-bench.XXXXXX)"
chmod 755 "$TMP"
PIDS=()
cleanup() {
  [ "${#PIDS[@]}" = 0 ] || stop_pids "${PIDS[@]}"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

read -r UP_PORT REDIS_PORT NGINX_PORT OFF_PORT MEM_PORT RED_PORT BIG_PORT < <(free_ports 7)
[ "$REDIS_PORT" != 6379 ] || die "got port 6379 by chance; run again"

start_bg() { # NAME CPU CMD...: start in the background, pinned and niced
  local name="$1" cpu="$2"; shift 2
  nice -n "$NICE" taskset -c "$cpu" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
}
wait_log() { for _ in $(seq 100); do grep -q "$2" "$TMP/$1.log" 2>/dev/null && return 0; sleep 0.1; done; die "$1 did not start: $(cat "$TMP/$1.log")"; }
# corral's own fake Ollama, answering from 256 precomputed vectors: costs little per vector.
start_bg upstream "$LOAD_CPU" node "$ROOT/bin/corral.js" demo --fleet-only --json --instances upstream --fleet-port "$UP_PORT" \
  --slots 1024 --prompt-ms 0 --token-ms 0 --embed-ms 0 --precomputed --frozen-timings
wait_log upstream '"instances"'
start_bg redis "$LOAD_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
wait_log redis "Ready to accept connections"
UP_URL="http://127.0.0.1:$UP_PORT"

declare -A URL PID
URL[direct]="$UP_URL"
# corral NAME PORT EXTRA_YAML: a corral on PROXY_CPU with its own config file (defaults otherwise).
corral() {
  local name="$1" port="$2" extra="$3"
  printf 'listen: 127.0.0.1:%s\ninstances:\n  - url: %s\nlog:\n  level: warn\n%s\n' "$port" "$UP_URL" "$extra" >"$OUT/$name.yaml"
  (cd "$ROOT" && exec nice -n "$NICE" taskset -c "$PROXY_CPU" node bin/corral.js serve --config "$OUT/$name.yaml") >"$OUT/$name.log" 2>&1 &
  PIDS+=("$!"); PID[$name]="$!"
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  # The cache keys on the model's digest: wait until discovery knows it (a miss is then a miss, not a bypass).
  for _ in $(seq 100); do
    [ "$(curl -sS -o /dev/null -D - -X POST -d '{"model":"nomic-embed-text","input":"warm"}' "http://127.0.0.1:$port/api/embed" | tr -d '\r' | awk 'tolower($1) == "x-corral-cache:" { print $2 }')" != bypass ] && break
    sleep 0.1
  done
  URL[$name]="http://127.0.0.1:$port"
}
for t in $TARGETS; do
  case "$t" in
    direct) ;;
    off) corral off "$OFF_PORT" "$(printf 'cache:\n  enabled: false')" ;;
    memory) corral memory "$MEM_PORT" "" ;;
    redis) corral redis "$RED_PORT" "$(printf 'redis:\n  url: redis://127.0.0.1:%s' "$REDIS_PORT")" ;;
    nginx)
      NGX="$TMP/nginx"; mkdir -p "$NGX" && chmod 755 "$NGX"
      sed -e "s#@PREFIX@#$NGX#g" -e "s#@LISTEN@#$NGINX_PORT#g" -e "s#@UPSTREAM@#$UP_PORT#g" "$HERE/nginx-pass.conf.template" >"$NGX/nginx.conf"
      nice -n "$NICE" taskset -c "$PROXY_CPU" "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$NGX/stdout.log" 2>&1 &
      PIDS+=("$!")
      for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/api/version" 2>/dev/null && break; sleep 0.1; done
      URL[nginx]="http://127.0.0.1:$NGINX_PORT" ;;
    *) die "unknown target $t" ;;
  esac
done

# Correctness first: a miss through corral is the stand-in's answer byte for byte.
BATCH_BODY='{"model":"nomic-embed-text","input":["byte check one","byte check two"]}'
want="$(curl -fsS -X POST -d "$BATCH_BODY" "$UP_URL/api/embed" | sha256sum)"
for t in $TARGETS; do
  got="$(curl -fsS -X POST -d "$BATCH_BODY" "${URL[$t]}/api/embed" | sha256sum)"
  [ "$got" = "$want" ] || die "$t: the answer differs from the stand-in's"
done
log "every target relays the stand-in's answer byte for byte"

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
wrk_run() { # FILE URL DURATION CONNS [ENV...]
  local file="$1" url="$2" d="$3" c="$4"; shift 4
  env "$@" nice -n "$NICE" taskset -c "$LOAD_CPU" wrk -t1 -c"$c" -d"$d" --latency -s "$HERE/ingest.lua" "$url" >"$OUT/$file.txt" 2>&1 || die "wrk: $(cat "$OUT/$file.txt")"
  grep '^RESULT ' "$OUT/$file.txt" | tail -1
}
stats() { curl -fsS "${URL[$1]}/api/advanced-cache-stats"; }
skipped() { # NAME: vectors corral did not store so far (0 for targets that are not corral with a cache)
  case "$1" in memory|redis) stats "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(r.skipped_writes ?? 0)})' ;; *) echo 0 ;; esac
}
written() {
  case "$1" in memory|redis) stats "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(r.layers.chunk.writes)})' ;; *) echo 0 ;; esac
}
rss() { [ -n "${PID[$1]:-}" ] && awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/${PID[$1]}/status" || echo; }

# Part 1: saturation.
declare -A RPS P50 P99 ERR SKIP0 SKIP1 WROTE0 WROTE1
for t in $TARGETS; do log "$t: warm-up $WARMUP"; wrk_run "$t-warmup" "${URL[$t]}" "$WARMUP" "$CONNS" >/dev/null; done
for t in $TARGETS; do SKIP0[$t]="$(skipped "$t")"; WROTE0[$t]="$(written "$t")"; done
for round in $(seq "$ROUNDS"); do
  for t in $TARGETS; do
    log "round $round/$ROUNDS, $t: /api/embed x32, wrk -t1 -c$CONNS -d$DURATION"
    r="$(wrk_run "$t-r$round" "${URL[$t]}" "$DURATION" "$CONNS")"
    RPS[$t]="${RPS[$t]:-} $(field rps "$r")"; P50[$t]="${P50[$t]:-} $(field p50_us "$r")"; P99[$t]="${P99[$t]:-} $(field p99_us "$r")"
    ERR[$t]=$((${ERR[$t]:-0} + $(field errors "$r") + $(field non2xx "$r")))
  done
done
for t in $TARGETS; do SKIP1[$t]="$(skipped "$t")"; WROTE1[$t]="$(written "$t")"; done

# Part 2: unique single /api/embeddings.
declare -A SRPS SP50 SP99
SINGLE_TARGETS=""
for t in $TARGETS; do case "$t" in nginx|off|memory) SINGLE_TARGETS="$SINGLE_TARGETS $t" ;; esac; done
for round in $(seq "$ROUNDS"); do
  for t in $SINGLE_TARGETS; do
    log "round $round/$ROUNDS, $t: unique /api/embeddings, wrk -t1 -c$SINGLE_CONNS -d$DURATION"
    r="$(wrk_run "$t-single-r$round" "${URL[$t]}" "$DURATION" "$SINGLE_CONNS" MODE=embeddings)"
    SRPS[$t]="${SRPS[$t]:-} $(field rps "$r")"; SP50[$t]="${SP50[$t]:-} $(field p50_us "$r")"; SP99[$t]="${SP99[$t]:-} $(field p99_us "$r")"
  done
done

# Part 2b: cached batches (64 batches of 32, all cached after the warm-up pass).
declare -A CRPS CP50 CP99
CACHED_TARGETS=""
for t in $TARGETS; do case "$t" in memory|redis) CACHED_TARGETS="$CACHED_TARGETS $t" ;; esac; done
for t in $CACHED_TARGETS; do
  # Stored one batch at a time (corral is not saturated then, so nothing is skipped), then warmed.
  node "$HERE/resend.js" --url "${URL[$t]}" --prime 64 >/dev/null
  wrk_run "$t-cached-warmup" "${URL[$t]}" "$WARMUP" "$CONNS" MODE=cached >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for t in $CACHED_TARGETS; do
    log "round $round/$ROUNDS, $t: cached batches, wrk -t1 -c$CONNS -d$DURATION"
    r="$(wrk_run "$t-cached-r$round" "${URL[$t]}" "$DURATION" "$CONNS" MODE=cached)"
    CRPS[$t]="${CRPS[$t]:-} $(field rps "$r")"; CP50[$t]="${CP50[$t]:-} $(field p50_us "$r")"; CP99[$t]="${CP99[$t]:-} $(field p99_us "$r")"
  done
done

# Part 3: re-send.
declare -A RESEND
for t in memory redis; do
  [[ " $TARGETS " == *" $t "* ]] || continue
  log "$t: 150 batches at 100/s, then the same 150 at once"
  RESEND[$t]="$(nice -n "$NICE" taskset -c "$LOAD_CPU" node "$HERE/resend.js" --url "${URL[$t]}" | sed -n 's/^RESULT //p')"
done
REDIS_CHANGES=""
[[ " $TARGETS " == *" redis "* ]] && REDIS_CHANGES="$(stats redis | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).redis;console.log(`${r.state}, ${r.state_changes} state changes, ${r.errors} errors`)})')"

# Part 4: a million vectors.
MILLION_RESULT=""
if [ "$MILLION" -gt 0 ]; then
  corral big "$BIG_PORT" ""
  log "big: $MILLION new vectors into a default corral"
  MILLION_RESULT="$(nice -n "$NICE" taskset -c "$LOAD_CPU" node "$HERE/resend.js" --url "${URL[big]}" --million "$MILLION" --pid "${PID[big]}" | sed -n 's/^RESULT //p')"
  echo "$MILLION_RESULT" >"$OUT/million.json"
fi

name_of() {
  case "$1" in
    direct) echo "straight to the stand-in" ;; nginx) echo "nginx pass-through" ;; off) echo "corral, cache off" ;;
    memory) echo "corral, default (memory store)" ;; redis) echo "corral, Redis" ;; *) echo "$1" ;;
  esac
}
{
  echo "Ingestion benchmark, $(date -u +'%Y-%m-%d %H:%M UTC'): nproc $(nproc), node $(node --version), $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(redis-server --version | awk '{ print $1, $2, $3 }')"
  echo "wrk + stand-in + redis-server on CPU $LOAD_CPU, the proxy on CPU $PROXY_CPU, nice $NICE; $ROUNDS interleaved rounds of $DURATION after a $WARMUP warm-up, medians."
  echo
  echo "| /api/embed, 32 new chunks a request, $CONNS connections | vectors/s | p50 | p99 | RSS | stored | skipped (saturated) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for t in $TARGETS; do
    awk -v n="$(name_of "$t")" -v r="$(median "${RPS[$t]}")" -v a="$(median "${P50[$t]}")" -v b="$(median "${P99[$t]}")" -v m="$(rss "$t")" \
      -v w="$(( ${WROTE1[$t]} - ${WROTE0[$t]} ))" -v s="$(( ${SKIP1[$t]} - ${SKIP0[$t]} ))" -v c="$t" \
      'BEGIN { printf "| %s | %.0f | %.1f ms | %.1f ms | %s | %s | %s |\n", n, r * 32, a / 1000, b / 1000, (m == "" ? "" : m " MiB"), (c == "memory" || c == "redis" ? w : ""), (c == "memory" || c == "redis" ? s : "") }'
  done
  ratio() { awk -v a="$(median "${RPS[$1]:-0}")" -v b="$(median "${RPS[$2]:-0}")" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
  echo
  [ -n "${RPS[memory]:-}" ] && [ -n "${RPS[off]:-}" ] && echo "- default / cache off: $(ratio memory off) (goal >= 0.9x)"
  [ -n "${RPS[memory]:-}" ] && [ -n "${RPS[nginx]:-}" ] && echo "- default / nginx: $(ratio memory nginx) (goal >= 1.0x)"
  [ -n "${RPS[redis]:-}" ] && [ -n "${RPS[off]:-}" ] && echo "- Redis / cache off: $(ratio redis off) (goal >= 0.8x)"
  [ -n "${RPS[off]:-}" ] && [ -n "${RPS[nginx]:-}" ] && echo "- cache off / nginx: $(ratio off nginx)"
  echo
  echo "| unique /api/embeddings, $SINGLE_CONNS connections | req/s | p50 | p99 |"
  echo "| --- | ---: | ---: | ---: |"
  for t in $SINGLE_TARGETS; do
    awk -v n="$(name_of "$t")" -v r="$(median "${SRPS[$t]}")" -v a="$(median "${SP50[$t]}")" -v b="$(median "${SP99[$t]}")" \
      'BEGIN { printf "| %s | %.0f | %.2f ms | %.2f ms |\n", n, r, a / 1000, b / 1000 }'
  done
  if [ -n "${SRPS[memory]:-}" ] && [ -n "${SRPS[off]:-}" ]; then
    awk -v a="$(median "${SRPS[memory]}")" -v b="$(median "${SRPS[off]}")" 'BEGIN { printf "\n- default / cache off: %.2fx (goal >= 0.9x)\n", a / b }'
  fi
  if [ -n "${SP99[memory]:-}" ] && [ -n "${SP99[nginx]:-}" ]; then
    awk -v a="$(median "${SP99[memory]}")" -v b="$(median "${SP99[nginx]}")" 'BEGIN { printf "- p99 default / nginx: %.2fx (goal <= 3x)\n", a / b }'
  fi
  if [ -n "$CACHED_TARGETS" ]; then
    echo
    echo "| cached batches (64 batches of 32, repeated), $CONNS connections | vectors/s | p50 | p99 |"
    echo "| --- | ---: | ---: | ---: |"
    for t in $CACHED_TARGETS; do
      awk -v n="$(name_of "$t")" -v r="$(median "${CRPS[$t]}")" -v a="$(median "${CP50[$t]}")" -v b="$(median "${CP99[$t]}")" \
        'BEGIN { printf "| %s | %.0f (goal >= 80000) | %.2f ms | %.2f ms |\n", n, r * 32, a / 1000, b / 1000 }'
    done
  fi
  echo
  for t in memory redis; do
    [ -n "${RESEND[$t]:-}" ] && echo "- re-send, $(name_of "$t"): $(node -e 'const r=JSON.parse(process.argv[1]);console.log(`${r.second_hits} of ${r.batches} hits on the second pass (first pass: ${r.first_misses} misses)`)' "${RESEND[$t]}")"
  done
  [ -n "$REDIS_CHANGES" ] && echo "- Redis after the run: $REDIS_CHANGES"
  if [ -n "$MILLION_RESULT" ]; then
    echo "- $MILLION new vectors into a default corral, RSS along the way: $(node -e 'const r=JSON.parse(process.argv[1]);console.log(r.samples.map((s)=>`${s.vectors}: ${s.rss_mib} MiB`).join(", "))' "$MILLION_RESULT")"
  fi
} | tee "$OUT/summary.md"
log "raw reports and summary.md in $OUT"
