#!/usr/bin/env bash
# The whole GPU benchmark in one script: every train and kernel case of apps/bench on the lent
# GPU machine, JSON and markdown into one output folder, within 8 minutes.
#
#   On this machine (from the project root, after `pnpm install`):
#     bash tools/gpu-bench.sh prepare
#   builds the bench bundle and fills .gpu/ (Node, Dawn and the Vulkan loader, via
#   ../shared/tools/gpu/prepare). Then on the GPU machine, with `.gpu` carried:
#     bash tools/gpu-bench.sh run "$OUT"
#   runs every suite, each under its own time limit so one slow suite cannot eat the others'
#   time, and writes OUT/<suite>/bench.{json,md}, OUT/summary.md and OUT/log.txt.
#
#   Extra arguments go to the train suite, e.g. a baseline: --compare OLD/train/bench.json.
#   GPU_BENCH_SUITES="train matmul" runs only those suites.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

case "${1:-}" in
  prepare)
    [ -d node_modules ] || { echo "gpu-bench: run pnpm install first" >&2; exit 2; }
    pnpm --silent build >/dev/null || { echo "gpu-bench: the build failed; run pnpm build to see why" >&2; exit 1; }
    bash ../shared/tools/gpu/prepare apps/bench/dist/bench.js
    # The GPU machine gets a copy of the tree without git: record what was built.
    git describe --always --dirty >.gpu/app/COMMIT 2>/dev/null || true
    echo "device command: bash tools/gpu-bench.sh run \"\$OUT\"   (carry: [\".gpu\"])"
    ;;
  run)
    out=${2:-}
    [ -n "$out" ] || usage
    shift 2
    [ -f .gpu/run.sh ] && [ -f .gpu/app/bench.js ] || { echo "gpu-bench: .gpu/ is missing; run 'bash tools/gpu-bench.sh prepare' first and carry .gpu" >&2; exit 2; }
    mkdir -p "$out"
    [ -f .gpu/app/COMMIT ] && export PEFT_TS_COMMIT="$(cat .gpu/app/COMMIT)"
    log="$out/log.txt"
    : >"$log"
    start=$SECONDS
    # Seconds per suite: 8 minutes in all, most of it for the end-to-end steps.
    declare -A limits=([train]=270 [matmul]=75 [attention]=45 [nf4]=45 [optim]=30)
    suites=${GPU_BENCH_SUITES:-train matmul attention nf4 optim}
    for suite in $suites; do
      limit=${limits[$suite]:-}
      [ -n "$limit" ] || { echo "gpu-bench: unknown suite $suite" >&2; exit 2; }
      extra=()
      [ "$suite" = train ] && extra=("$@")
      echo "=== $suite (limit ${limit}s, at $((SECONDS - start))s)" | tee -a "$log"
      timeout --kill-after=10 "$limit" bash .gpu/run.sh .gpu/app/bench.js --suite "$suite" --out "$out/$suite" "${extra[@]}" 2>&1 | tee -a "$log"
      rc=${PIPESTATUS[0]}
      [ "$rc" -eq 0 ] || echo "=== $suite ended with exit code $rc$([ "$rc" -eq 124 ] && echo ' (time limit)')" | tee -a "$log"
    done
    {
      echo "# peft-ts GPU benchmark"
      echo
      for suite in $suites; do
        if [ -f "$out/$suite/bench.md" ]; then tail -n +2 "$out/$suite/bench.md"; else echo "## $suite: no result (see log.txt)"; fi
        echo
      done
    } >"$out/summary.md"
    echo "wrote $out/summary.md in $((SECONDS - start))s" | tee -a "$log"
    ;;
  *)
    usage
    ;;
esac
