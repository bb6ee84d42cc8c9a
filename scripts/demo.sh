#!/usr/bin/env bash
# The main job on the bundled example: install, then reconcile examples/desired against a
# scratch copy of examples/mox/config (validate, plan, apply, DNS records, a second plan that
# must be empty). The repository itself is left untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mox-reconciler-demo.XXXXXX")
cp -r examples/mox "$scratch/"
conf="$scratch/mox/config/mox.conf"
run() { echo; echo "\$ mox-reconciler --config $conf $*"; .venv/bin/mox-reconciler --config "$conf" "$@"; }

run config test
run validate examples/desired
run plan examples/desired
run apply examples/desired --yes --reports-dir "$scratch/records"
run records --domain example.net --format zone
run config test
run plan examples/desired --detailed-exitcode
echo
echo "Done. The scratch mox config is in $scratch/mox/config, the DNS reports in $scratch/records."
