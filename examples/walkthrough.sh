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
echo "# RETRAIN_HOME=$RETRAIN_HOME (the walk-through's database, models and logs)"
trap 'echo; echo "# everything the walk-through made is in $RETRAIN_HOME; remove it with: rm -rf $(printf %q "$RETRAIN_HOME")"' EXIT

# step EXPECTED_EXIT_CODE COMMAND...: print the command (quoted, so it can be pasted into a
# shell), run it, insist on its exit code.
step() {
  local expected=$1 code=0
  shift
  echo
  printf '$'; printf ' %q' "$@"; echo
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
step 0 retrain-cli jobs schema fraud-lgbm      # a data contract inferred from the training data
step 0 retrain-cli drift check --all           # the baseline windows: no drift, exit 0
step 0 retrain-cli perf check --all            # scored predictions: healthy, exit 0
step 0 retrain-cli retrain fraud-lgbm          # LightGBM: first version, promoted
step 0 retrain-cli retrain demand-lstm         # LSTM
step 0 retrain-cli retrain churn-transformer   # Transformer
step 0 retrain-cli retrain alpha-ensemble      # Ensemble forecasting returns, judged on Sharpe
step 0 retrain-cli retrain risk-lgbm           # LightGBM, four risk grades (multiclass)
echo
echo "# ... time passes: a later window arrives with shifted features and worse scores"
step 0 python examples/generate_data.py --out examples/data --phase drifted
step 3 retrain-cli drift check --all --report "$RETRAIN_HOME/drift.html"   # exit 3: drift
echo "# report: $RETRAIN_HOME/drift.html"
step 3 retrain-cli perf check --all            # exit 3: performance dropped
step 0 retrain-cli jobs trigger fraud-lgbm --reason "walk-through: new labels arrived"
step 0 retrain-cli jobs due                    # why each job is due: drift, performance, manual
echo
echo "\$ retrain-cli jobs due --run --json    # start the due jobs, at most three at once"
started=$(retrain-cli jobs due --run --json)
echo "$started" | python -c 'import json,sys
report = json.load(sys.stdin)
for s in report["started"]: print("started", s["job"], "(" + s["trigger"] + "), pid", s["pid"])
for w in report["waiting"]: print("waits", w["job"], "for the next tick:", w["why"])'
echo "# waiting for them to finish (their logs are in \$RETRAIN_HOME/logs/)"
for pid in $(echo "$started" | python -c 'import json,sys; print(*[s["pid"] for s in json.load(sys.stdin)["started"]])'); do
  while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
done
step 0 retrain-cli jobs list
step 0 retrain-cli runs list --limit 8         # the retraining history; `runs show RUN --log`
step 0 retrain-cli versions list fraud
step 0 retrain-cli versions rollback fraud --reason "walk-through: back to the previous champion"
step 0 retrain-cli stats
step 0 retrain-cli report --out "$RETRAIN_HOME/report"   # every model's history as a static site
echo "# open the report: file://$RETRAIN_HOME/report/index.html"
