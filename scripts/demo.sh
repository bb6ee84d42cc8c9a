#!/usr/bin/env bash
# The main job on the bundled example: install, then reconcile examples/desired against a
# scratch copy of examples/mox/config (validate, plan, apply, DNS records, a second plan). The
# repository itself is left untouched.
#
# No mox runs here, and a password can only be set in a running mox (through its control
# socket). The example gives alice a password from $ALICE_PASSWORD, so: the apply writes the
# config and reports alice's password as pending (exit 1, with the reason), and the second plan
# has exactly that step left; against a served mox the same apply sets it and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mox-reconciler-demo.XXXXXX")
cp -r examples/mox "$scratch/"
conf="$scratch/mox/config/mox.conf"
# The secret the example refers to ({Env: ALICE_PASSWORD}): made up for this demo, never printed.
ALICE_PASSWORD="demo-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export ALICE_PASSWORD
run() { echo; echo "\$ mox-reconciler --config $conf $*"; .venv/bin/mox-reconciler --config "$conf" "$@"; }
# A command whose exit code is expected (and explained): 1 for a pending password, 2 for changes.
expect() {
    want=$1; shift
    set +e; run "$@"; got=$?; set -e
    if [ "$got" != "$want" ]; then echo "demo: expected exit $want, got $got" >&2; exit 1; fi
}

run config test
run validate examples/desired
run plan examples/desired
expect 1 apply examples/desired --yes --reports-dir "$scratch/records"
echo "(exit 1, as expected: the config is applied; alice's password is pending because no mox runs here)"
run records --domain example.net --format zone
run config test
expect 2 plan examples/desired --detailed-exitcode
echo "(exit 2: the one step left is alice's password, which the next apply sets once mox runs)"
echo
echo "Done. The scratch mox config is in $scratch/mox/config, the DNS reports in $scratch/records."
