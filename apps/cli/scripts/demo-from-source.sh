#!/bin/sh
# `pnpm demo` in a clone: builds the CLI and the packages it uses when their sources are newer
# than the build (a line per package, so that the wait is visible), then runs `peft-ts demo`
# with the arguments given.
set -e
cd "$(dirname "$0")/../../.."
cli=apps/cli/dist/cli.js
if [ -f "$cli" ] && [ -z "$(find packages/*/src packages/*/package.json apps/cli/src apps/cli/package.json -newer "$cli" -print -quit)" ]; then
  echo 'peft-ts demo: the packages are built and up to date'
else
  echo 'peft-ts demo: building the CLI and its packages first (about a minute on 2 CPU cores; once)'
  start=$(date +%s)
  pnpm --silent -r --filter 'peft-ts...' exec sh -c 'tsup --silent && echo "  built $PNPM_PACKAGE_NAME"'
  echo "peft-ts demo: built in $(($(date +%s) - start)) s"
fi
exec node "$cli" demo "$@"
