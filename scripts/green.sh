#!/usr/bin/env bash
# Is the suite green every time? Runs the README's test command N times in a row (default 10) and
# prints the pass count and each run's wall time; a failed run's output stays in $LOGS/run-K.log.
#
#   scripts/green.sh [N]           `make test` in this checkout (after `make setup`)
#   scripts/green.sh --fresh [N]   `bash .ci/run` in a fresh clone of HEAD each time, as CI does
#
# Exits non-zero unless every run passed.
set -uo pipefail
cd "$(dirname "$0")/.."
fresh=0
if [ "${1:-}" = "--fresh" ]; then fresh=1; shift; fi
runs=${1:-10}
LOGS=${LOGS:-$(mktemp -d -t ai_host_green.XXXXXX)}
mkdir -p "$LOGS"
passed=0
for k in $(seq 1 "$runs"); do
  log="$LOGS/run-$k.log"
  start=$(date +%s)
  if [ "$fresh" = 1 ]; then
    clone="$LOGS/clone-$k"
    git clone --quiet "$PWD" "$clone" && (cd "$clone" && CI=true bash .ci/run) >"$log" 2>&1 </dev/null
  else
    make test >"$log" 2>&1 </dev/null
  fi
  rc=$?
  took=$(( $(date +%s) - start ))
  summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$log" | tail -n 1)
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
    echo "run $k: passed in ${took}s  ${summary}"
    [ "$fresh" = 1 ] && rm -rf "$clone"
  else
    echo "run $k: FAILED (exit $rc) in ${took}s  ${summary}; see $log"
    grep -E '^(FAILED|ERROR) ' "$log" | head -n 20
  fi
done
echo "green: $passed of $runs runs passed (logs in $LOGS)"
[ "$passed" = "$runs" ]
