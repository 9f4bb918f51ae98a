#!/usr/bin/env bash
# Balancing benchmark: the same open-loop Poisson load through corral (one row per policy),
# nginx least_conn and HAProxy leastconn, in front of a fleet of fake Ollama instances (three
# normal, one three times slower, 2 parallel slots each), in three scenarios; prints one Markdown
# table per scenario. Method and results: bench/README.md ("Balancing").
#
#   bash bench/balance/run.sh
#   DURATION=20 SCENARIOS=baseline POLICIES=least-inflight bash bench/balance/run.sh
#
# Knobs (environment):
#   DURATION (60)       seconds of arrivals per run (then up to DRAIN seconds to finish)
#   DRAIN (2 x DURATION, at least 30)  seconds to wait for answers after the last arrival; what is
#                       still unanswered then counts as lost. Round-robin's backlog on the slow
#                       instance takes about DURATION to drain, hence the margin.
#   RATE                offered req/s (default: LOAD x the fleet's capacity from the time model)
#   LOAD (0.8)          share of the capacity offered when RATE is not set
#   SCENARIOS ("baseline kill slowdown")
#   TARGETS ("corral nginx haproxy")
#   POLICIES ("load-score,least-inflight,round-robin")  corral's balancer.policy, one row each;
#                       a policy this corral does not know is reported as skipped
#   CORRAL_MAX_CONCURRENCY (SLOTS)  instances[].max_concurrency in corral's config: the instances'
#                       parallel slots, as a user sets it to OLLAMA_NUM_PARALLEL (empty: corral's default)
#   INSTANCES ("n1:1,n2:1,n3:1,slow:3")  name:speed factor of each fake instance
#   SLOTS (2), PROMPT_MS (40), TOKEN_MS (8), TOKENS_MIN (10), TOKENS_MAX (60)  the time model
#   KILL (n1)           instance killed a third of the way into the kill scenario
#   SLOW (n1), SLOW_FACTOR (6)  instance slowed down (speed factor multiplied) in the slowdown scenario
#   SEED (42)           arrival schedule and request mix; the same for every target
#   NICE (-15 as root)  priority of every process the benchmark runs
#   OUT                 results dir (default bench/results/balance-<timestamp>, git-ignored)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-60}"
DRAIN="${DRAIN:-$((DURATION > 15 ? 2 * DURATION : 30))}"
LOAD="${LOAD:-0.8}"
RATE="${RATE:-}"
SCENARIOS="${SCENARIOS:-baseline kill slowdown}"
TARGETS="${TARGETS:-corral nginx haproxy}"
POLICIES="${POLICIES:-load-score,least-inflight,round-robin}"
CORRAL_MAX_CONCURRENCY="${CORRAL_MAX_CONCURRENCY-${SLOTS:-2}}"
INSTANCES="${INSTANCES:-n1:1,n2:1,n3:1,slow:3}"
SLOTS="${SLOTS:-2}"
PROMPT_MS="${PROMPT_MS:-40}"
TOKEN_MS="${TOKEN_MS:-8}"
TOKENS_MIN="${TOKENS_MIN:-10}"
TOKENS_MAX="${TOKENS_MAX:-60}"
KILL="${KILL:-n1}"
SLOW="${SLOW:-n1}"
SLOW_FACTOR="${SLOW_FACTOR:-6}"
SEED="${SEED:-42}"
# Timers drive the fake instances: on a shared machine, -15 keeps them punctual. Root only.
if [ "$(id -u)" = 0 ]; then NICE="${NICE:--15}"; else NICE="${NICE:-0}"; fi
OUT="${OUT:-$ROOT/bench/results/balance-$(date -u +%Y%m%dT%H%M%SZ)}"

log() { printf '[balance] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools: nginx and HAProxy from Debian when absent (needs root).
need_pkgs=()
case " $TARGETS " in *" nginx "*) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light) ;; esac
case " $TARGETS " in *" haproxy "*) command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_pkgs+=(haproxy) ;; esac
. "$ROOT/bench/lib.sh"
install_packages ${need_pkgs[@]+"${need_pkgs[@]}"}
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"

# ---------------------------------------------------------------------------------------------
# Processes we start, stopped on any exit. Each run stops its own fleet and proxy (stop_run).
TMP="$(mktemp -d /tmp/corral-balance.XXXXXX)"
chmod 755 "$TMP" # nginx workers (nobody when run as root) use temp dirs under it
PIDS=()
cleanup() {
  [ "${#PIDS[@]}" = 0 ] || stop_pids "${PIDS[@]}"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

# ---------------------------------------------------------------------------------------------
# Capacity from the time model: an instance with speed factor f serves SLOTS requests at a time,
# each taking (PROMPT_MS + mean tokens x TOKEN_MS) x f. capacity INSTANCES prints req/s.
capacity() {
  awk -v list="$1" -v slots="$SLOTS" -v p="$PROMPT_MS" -v t="$TOKEN_MS" -v lo="$TOKENS_MIN" -v hi="$TOKENS_MAX" 'BEGIN {
    n = split(list, inst, ","); mean = p + t * (lo + hi) / 2; c = 0
    for (i = 1; i <= n; i++) { split(inst[i], f, ":"); if (f[2] > 0) c += slots * 1000 / (mean * f[2]) }
    printf "%.3f", c }'
}
speed_of() { tr ',' '\n' <<<"$INSTANCES" | awk -F: -v n="$1" '$1 == n { print $2 }'; }
[ -n "$(speed_of "$KILL")" ] || die "KILL=$KILL is not one of INSTANCES ($INSTANCES)"
[ -n "$(speed_of "$SLOW")" ] || die "SLOW=$SLOW is not one of INSTANCES ($INSTANCES)"
CAPACITY="$(capacity "$INSTANCES")"
[ -n "$RATE" ] || RATE="$(awk -v c="$CAPACITY" -v l="$LOAD" 'BEGIN { printf "%.2f", c * l }')"
CAP_KILL="$(capacity "$(tr ',' '\n' <<<"$INSTANCES" | awk -F: -v n="$KILL" '$1 != n' | paste -sd,)")"
CAP_SLOW="$(capacity "$(tr ',' '\n' <<<"$INSTANCES" | awk -F: -v OFS=: -v n="$SLOW" -v k="$SLOW_FACTOR" '$1 == n { $2 = $2 * k } 1' | paste -sd,)")"
EVENT_AT="$(awk -v d="$DURATION" 'BEGIN { printf "%.1f", d / 3 }')"
log "fleet $INSTANCES, $SLOTS slots each: capacity $CAPACITY req/s; offered rate $RATE req/s for ${DURATION}s per run"

# The fleet is corral's own fake Ollama (`corral demo --fleet-only`): it needs dist/ whatever the targets.
if [ ! -f "$ROOT/dist/demo/run-demo.js" ]; then
  log "dist/ missing or without corral demo, building"
  (cd "$ROOT" && { [ -d node_modules ] || npm ci --silent; } && npm run build --silent) >"$OUT/corral-build.log" 2>&1 ||
    die "build failed (see $OUT/corral-build.log)"
fi

# ---------------------------------------------------------------------------------------------
# Corral: built when dist/ is missing; each policy checked with `corral check-config` first.
TARGET_LIST=()
declare -A NOTE
for t in $TARGETS; do
  case "$t" in
    corral)
      if [ ! -f "$ROOT/dist/cli.js" ]; then
        log "corral: dist/ missing, building"
        (cd "$ROOT" && { [ -d node_modules ] || npm ci --silent; } && npm run build --silent) >"$OUT/corral-build.log" 2>&1 ||
          log "corral: build failed (see $OUT/corral-build.log)"
      fi
      for p in ${POLICIES//,/ }; do TARGET_LIST+=("corral:$p"); done
      ;;
    nginx | haproxy) TARGET_LIST+=("$t") ;;
    *) die "unknown target $t (corral, nginx, haproxy)" ;;
  esac
done
CORRAL_VERSION="$(cd "$ROOT" && node bin/corral.js --version 2>/dev/null || echo '?') ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"

# corral_config PORT POLICY FLEET_JSON: corral's YAML for this run.
corral_config() {
  node -e '
    const [port, policy, fleet, maxc] = process.argv.slice(1);
    const lines = [`listen: 127.0.0.1:${port}`, "log:", "  level: warn", "balancer:", `  policy: ${policy}`,
      "proxy:", "  max_attempts: 3", "instances:"];
    for (const i of JSON.parse(fleet).instances) {
      lines.push(`  - url: ${i.url}`, `    name: ${i.name}`);
      if (maxc) lines.push(`    max_concurrency: ${maxc}`);
    }
    console.log(lines.join("\n"));' "$1" "$2" "$3" "$CORRAL_MAX_CONCURRENCY"
}

# wait_ready URL SECONDS: until GET /api/version through the proxy answers 200.
wait_ready() {
  local i
  for i in $(seq $(($2 * 10))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1/api/version" || true)" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# count_refused TARGET DIR: attempts the proxy made on an instance that refused the connection
# (the dead one), from its log; empty when the proxy does not log them (HAProxy: its health checks
# take a dead server out, and its retries are not logged here).
count_refused() {
  case "$1" in
    corral:*) grep -c '"kind":"refused"' "$2/proxy.log" 2>/dev/null || true ;;
    nginx) grep -c 'connect() failed (111' "$2/error.log" 2>/dev/null || true ;;
  esac
}

# run_one SCENARIO TARGET: fresh fleet, fresh proxy, one load run; results in $OUT/SCENARIO-TARGET.json.
run_one() {
  local scenario="$1" target="$2" name dir port fleet_pid proxy_pid load_pid fleet_json control servers url
  local -a events=()
  name="$scenario-${target//:/-}"
  dir="$TMP/$name"
  mkdir -p "$dir" && chmod 755 "$dir"

  # corral's own fake Ollama fleet; --tokens: the most a request may ask for (load.js sets num_predict).
  nice -n "$NICE" node "$ROOT/bin/corral.js" demo --fleet-only --json --instances "$INSTANCES" --slots "$SLOTS" \
    --prompt-ms "$PROMPT_MS" --token-ms "$TOKEN_MS" --tokens "$TOKENS_MAX" --max-queue 1000000 \
    >"$dir/fleet.json" 2>"$dir/fleet.log" &
  fleet_pid=$!
  PIDS+=("$fleet_pid")
  for _ in $(seq 50); do [ -s "$dir/fleet.json" ] && break; sleep 0.1; done
  fleet_json="$(head -1 "$dir/fleet.json")"
  [ -n "$fleet_json" ] || die "fleet did not start: $(cat "$dir/fleet.log")"
  control="$(node -e 'console.log(JSON.parse(process.argv[1]).control)' "$fleet_json")"
  port="$(free_ports 1)"
  url="http://127.0.0.1:$port"

  case "$target" in
    corral:*)
      corral_config "$port" "${target#corral:}" "$fleet_json" >"$dir/corral.yaml"
      if ! (cd "$ROOT" && node bin/corral.js check-config "$dir/corral.yaml") >"$dir/check.log" 2>&1; then
        NOTE[$target]="skipped: corral rejects this config ($(grep -m1 -i 'policy' "$dir/check.log" | head -c 140 | tr '|' ' '))"
        log "$target: ${NOTE[$target]}"
        stop_pids "$fleet_pid"
        return 0
      fi
      (cd "$ROOT" && exec nice -n "$NICE" node bin/corral.js serve --config "$dir/corral.yaml") >"$dir/proxy.log" 2>&1 &
      ;;
    nginx)
      servers="$(node -e 'for (const i of JSON.parse(process.argv[1]).instances)
        console.log(`        server ${new URL(i.url).host} max_fails=1 fail_timeout=10s;`)' "$fleet_json")"
      awk -v s="$servers" '{ if ($0 == "@SERVERS@") print s; else print }' "$HERE/nginx.conf.template" |
        sed -e "s#@PREFIX@#$dir#g" -e "s#@LISTEN@#$port#g" >"$dir/nginx.conf"
      nice -n "$NICE" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/proxy.log" 2>&1 &
      ;;
    haproxy)
      servers="$(node -e 'for (const i of JSON.parse(process.argv[1]).instances)
        console.log(`    server ${i.name} ${new URL(i.url).host} check inter 2s fall 2 rise 1`)' "$fleet_json")"
      awk -v s="$servers" '{ if ($0 == "@SERVERS@") print s; else print }' "$HERE/haproxy.cfg.template" |
        sed -e "s#@LISTEN@#$port#g" >"$dir/haproxy.cfg"
      nice -n "$NICE" "$HAPROXY" -db -f "$dir/haproxy.cfg" >"$dir/proxy.log" 2>&1 &
      ;;
  esac
  proxy_pid=$!
  PIDS+=("$proxy_pid")
  if ! wait_ready "$url" 15; then
    NOTE[$target]="skipped: did not answer GET /api/version (log: $OUT/$name.log)"
    log "$target: ${NOTE[$target]}"
    cp "$dir/proxy.log" "$OUT/$name.log" 2>/dev/null || true
    stop_pids "$proxy_pid" "$fleet_pid"
    return 0
  fi

  case "$scenario" in
    kill) events=(--event "$EVENT_AT:/kill?name=$KILL") ;;
    slowdown)
      events=(--event "$EVENT_AT:/speed?name=$SLOW&factor=$(awk -v s="$(speed_of "$SLOW")" -v k="$SLOW_FACTOR" 'BEGIN { print s * k }')")
      ;;
  esac
  log "$scenario, $target: ${DURATION}s at $RATE req/s"
  # The tag goes into every prompt: prompts differ between targets as well as within a run.
  # In the background with `wait`: bash runs its INT/TERM traps during a `wait`, not while a
  # foreground child runs, so a signal stops the whole run at once.
  nice -n "$NICE" node "$HERE/load.js" --target "$url" --rate "$RATE" --duration "$DURATION" --drain "$DRAIN" \
    --seed "$SEED" --fleet "$control" --tag "$name-$(date +%s)" --tokens-min "$TOKENS_MIN" --tokens-max "$TOKENS_MAX" \
    "${events[@]}" >"$OUT/$name.json" 2>"$OUT/$name.load.log" &
  load_pid=$!
  PIDS+=("$load_pid")
  wait "$load_pid" || log "$scenario, $target: load.js failed: $(tail -3 "$OUT/$name.load.log")"
  stop_pids "$proxy_pid" "$fleet_pid"
  for f in proxy.log error.log nginx.conf haproxy.cfg corral.yaml; do
    [ -s "$dir/$f" ] && cp "$dir/$f" "$OUT/$name.$f"
  done
  count_refused "$target" "$dir" >"$OUT/$name.refused"
  return 0
}

for scenario in $SCENARIOS; do
  case "$scenario" in baseline | kill | slowdown) ;; *) die "unknown scenario $scenario (baseline, kill, slowdown)" ;; esac
  for target in "${TARGET_LIST[@]}"; do run_one "$scenario" "$target"; done
done

# ---------------------------------------------------------------------------------------------
{
  printf '{"date":"%s","nproc":%s,"node":"%s","nginx":"%s","haproxy":"%s","corral":"%s",' \
    "$(date -u +'%Y-%m-%d %H:%M UTC')" "$(nproc)" "$(node --version)" "$("$NGINX" -v 2>&1 | sed 's/.*: //')" \
    "$("$HAPROXY" -v 2>/dev/null | head -1 | awk '{ print $3 }')" "$CORRAL_VERSION"
  printf '"instances":"%s","slots":%s,"prompt_ms":%s,"token_ms":%s,"tokens_min":%s,"tokens_max":%s,' \
    "$INSTANCES" "$SLOTS" "$PROMPT_MS" "$TOKEN_MS" "$TOKENS_MIN" "$TOKENS_MAX"
  printf '"capacity":%s,"rate":%s,"duration":%s,"seed":%s,"event_at":%s,"kill":"%s","slow":"%s","slow_factor":%s,' \
    "$CAPACITY" "$RATE" "$DURATION" "$SEED" "$EVENT_AT" "$KILL" "$SLOW" "$SLOW_FACTOR"
  printf '"capacity_after_kill":%s,"capacity_after_slowdown":%s,"max_concurrency":"%s","scenarios":"%s","targets":[' \
    "$CAP_KILL" "$CAP_SLOW" "$CORRAL_MAX_CONCURRENCY" "$SCENARIOS"
  sep=""
  for t in "${TARGET_LIST[@]}"; do n="${NOTE[$t]:-}"; printf '%s{"name":"%s","note":"%s"}' "$sep" "$t" "${n//\"/}"; sep=","; done
  printf ']}\n'
} >"$OUT/meta.json"
# The limit for this fleet and schedule: shortest expected delay with perfect knowledge (baseline).
node "$HERE/simulate.js" --rate "$RATE" --duration "$DURATION" --seed "$SEED" --instances "$INSTANCES" --slots "$SLOTS" \
  --prompt-ms "$PROMPT_MS" --token-ms "$TOKEN_MS" --tokens-min "$TOKENS_MIN" --tokens-max "$TOKENS_MAX" >"$OUT/limit.json"
node "$HERE/report.js" "$OUT" | tee "$OUT/summary.md"
log "results (JSON per run, proxy configs and logs) and summary.md in $OUT"
