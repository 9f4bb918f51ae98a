#!/usr/bin/env bash
# Soak: a real `corral serve` under ten minutes of mixed load (embed, chat, generate; streamed and
# not; cached and new prompts) in front of three fake Ollama instances and a real redis-server,
# each behind a fault proxy, with a fault injected every 30 s (an instance killed, reset,
# blackholed, slowed; Redis frozen, killed). Samples corral's RSS, heap and cache-tier bytes every
# 5 s; prints a Markdown report (memory over time, faults, requests, failures explained or not).
# Method and results: bench/README.md ("Soak").
#
#   bash bench/soak/run.sh
#   DURATION=60 FAULT_EVERY=10 bash bench/soak/run.sh
#
# Knobs (environment):
#   DURATION (600)      seconds of load
#   FAULT_EVERY (30)    seconds between faults (each lasts 3-10 s)
#   SAMPLE_EVERY (5)    seconds between memory samples
#   RATE (40)           requests per second offered (open loop)
#   MAX_IN_FLIGHT (64)  the client's cap on requests in flight; arrivals beyond it are counted as not sent
#   CACHE_MIB (32)      redis.local_cache_size: the bound of corral's in-process cache tier (reached
#                       within the run at the default rate, so the plateau shows)
#   HOT_PROMPTS (20000) distinct repeated prompts (half the requests), so the tier fills and evicts
#   WARMUP (120, or DURATION/5 if less)  seconds after which memory must stay flat
#   PLOT (1 when gnuplot is installed)  also draw memory.png with gnuplot (PLOT=1 installs gnuplot-nox as root)
#   OUT                 results dir (default bench/results/soak-<timestamp>, git-ignored)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export ROOT
export OUT="${OUT:-$ROOT/bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)}"
if command -v gnuplot >/dev/null; then PLOT="${PLOT:-1}"; else PLOT="${PLOT:-0}"; fi

log() { printf '[soak] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$ROOT/bench/lib.sh"

need_pkgs=()
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
[ "$PLOT" = 0 ] || command -v gnuplot >/dev/null || need_pkgs+=(gnuplot-nox)
install_packages ${need_pkgs[@]+"${need_pkgs[@]}"}

mkdir -p "$OUT"
cd "$ROOT"
log "building corral and the soak driver"
npm run build --silent
# The driver imports the test fixtures (fake Ollama, fault proxy, load): compiled next to the
# results, inside the repository so that node_modules resolves.
BUILD="$ROOT/bench/results/.soak-build"
rm -rf "$BUILD"
mkdir -p "$BUILD"
cat >"$BUILD/tsconfig.json" <<JSON
{ "extends": "$ROOT/tsconfig.json",
  "compilerOptions": { "rootDir": "$ROOT", "outDir": "$BUILD/js", "declaration": false, "sourceMap": false },
  "include": [], "files": ["$ROOT/bench/soak/soak.ts"] }
JSON
npx tsc -p "$BUILD/tsconfig.json"

DRIVER_PID=""
cleanup() { [ -z "$DRIVER_PID" ] || stop_pids "$DRIVER_PID"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "running for ${DURATION:-600} s; results in $OUT"
node "$BUILD/js/bench/soak/soak.js" &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_PID=""

if [ "$PLOT" != 0 ]; then
  gnuplot <<GNUPLOT
set terminal pngcairo size 1000,500 noenhanced
set output "$OUT/memory.png"
set datafile separator ","
set key top left
set xlabel "seconds"
set ylabel "MiB"
set title "corral memory under the soak (faults every ${FAULT_EVERY:-30} s)"
plot "$OUT/samples.csv" using 1:2 skip 1 with lines lw 2 title "RSS", \
     "" using 1:3 skip 1 with lines lw 2 title "heap used", \
     "" using 1:5 skip 1 with lines lw 2 title "external (Buffers)", \
     "" using 1:6 skip 1 with lines lw 2 title "cache tier bytes"
GNUPLOT
  log "plot: $OUT/memory.png"
fi
log "report: $OUT/report.md"
