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

step() {
  echo
  echo "\$ $*"
  "$@"
}

step python examples/generate_data.py --out examples/data
step retrain-cli db init
step retrain-cli jobs apply $(printf -- '-f %s ' examples/jobs/*.yaml)
step retrain-cli jobs list
step retrain-cli jobs trigger fraud-lgbm --reason "walk-through"
step retrain-cli jobs show fraud-lgbm
