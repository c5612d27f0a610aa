#!/usr/bin/env bash
# The newcomer's walk-through on the embedded SQLite default, in a throwaway RETRAIN_HOME.
# Sets up .venv (CPU PyTorch pinned) when missing, then runs each real retrain-cli command,
# printing it first. It walks the part of the cron cycle that this release has built.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/retrain-cli ] || bash .ci/setup
export PATH="$PWD/.venv/bin:$PATH"
export RETRAIN_HOME="${RETRAIN_HOME:-$(mktemp -d -t retrain-walkthrough.XXXXXX)}"
unset RETRAIN_DATABASE_URL RETRAIN_CONFIG
echo "# RETRAIN_HOME=$RETRAIN_HOME"

# step EXPECTED_EXIT_CODE COMMAND...: print the command, run it, insist on its exit code.
step() {
  local expected=$1 code=0
  shift
  echo
  echo "\$ $*"
  "$@" || code=$?
  if [ "$code" != "$expected" ]; then
    echo "walk-through: expected exit $expected, got $code" >&2
    exit 1
  fi
}

step 0 python examples/generate_data.py --out examples/data
step 0 retrain-cli db init
step 0 retrain-cli jobs apply $(printf -- '-f %s ' examples/jobs/*.yaml)
step 0 retrain-cli jobs list
step 0 retrain-cli drift check --all           # the baseline windows: no drift, exit 0
step 0 retrain-cli perf check --all            # scored predictions: healthy, exit 0
step 0 retrain-cli retrain fraud-lgbm           # first version: meets the threshold, promoted
echo
echo "# ... time passes: a later window arrives with shifted features and worse scores"
step 0 python examples/generate_data.py --out examples/data --phase drifted
step 3 retrain-cli drift check --all --report "$RETRAIN_HOME/drift.html"   # exit 3: drift
echo "# report: $RETRAIN_HOME/drift.html"
step 3 retrain-cli perf check --all            # exit 3: performance dropped
step 0 retrain-cli jobs trigger fraud-lgbm --reason "walk-through: new labels arrived"
step 0 retrain-cli jobs due                    # why each job is due: drift, performance, manual
step 0 retrain-cli jobs due --run              # start the due jobs, at most three at once
echo
echo "# waiting for the started retrains to finish (logs in \$RETRAIN_HOME/logs/)"
for _ in $(seq 1 120); do
  retrain-cli jobs due --json | python -c 'import json,sys; sys.exit(1 if json.load(sys.stdin)["running"] else 0)' && break
  sleep 1
done
step 0 retrain-cli jobs list
step 0 retrain-cli versions list fraud
step 0 retrain-cli versions rollback fraud --reason "walk-through: back to the previous champion"
step 0 retrain-cli stats
