#!/usr/bin/env bash
# Side-by-side benchmark of this checkout against an earlier commit, on this machine, in one run:
# the earlier commit is built in a worktree with this checkout's bench app (so both run the very
# same cases), then the two alternate, round after round, and the last round is compared.
#
#   bash tools/bench-side-by-side.sh BASE_REF OUT [bench args...]
#   e.g. bash tools/bench-side-by-side.sh 38846f8 /tmp/sbs --suite train --case small
#
# Writes OUT/base-N/ and OUT/head-N/ (bench.json, bench.md) for each round and prints the
# comparison of the last round (exit 1 when this checkout is slower by more than 15%).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench-side-by-side.sh BASE_REF OUT [bench args...]}
out=${2:?usage: bench-side-by-side.sh BASE_REF OUT [bench args...]}
shift 2
rounds=${ROUNDS:-2}
wt="$out/worktree"
mkdir -p "$out"
if [ ! -d "$wt" ]; then
  git worktree add --detach "$wt" "$base" >/dev/null
fi
echo "building $base in $wt with this checkout's bench app"
rm -rf "$wt/apps/bench/src"
cp -r apps/bench/src "$wt/apps/bench/"
cp apps/bench/package.json apps/bench/tsconfig.json apps/bench/tsup.config.ts "$wt/apps/bench/"
(cd "$wt" && pnpm install --no-frozen-lockfile --silent >/dev/null && pnpm --silent build >/dev/null)
echo "building this checkout"
pnpm --silent build >/dev/null
for ((r = 1; r <= rounds; r++)); do
  echo "=== round $r: $base"
  (cd "$wt" && PEFT_TS_COMMIT="$(git rev-parse --short=12 HEAD)" node apps/bench/dist/bench.js --out "$out/base-$r" "$@" 2>&1 | grep -v '^Warning: maxDynamic')
  echo "=== round $r: this checkout"
  node apps/bench/dist/bench.js --out "$out/head-$r" "$@" 2>&1 | grep -v '^Warning: maxDynamic'
done
echo "=== comparison, round $rounds (this checkout against $base)"
node apps/bench/dist/bench.js --compare "$out/base-$rounds/bench.json" --against "$out/head-$rounds/bench.json"
