#!/usr/bin/env bash
# Install everything the tests need (virtualenv, the package with its test extra, BIND 9 for
# the DNS tests, the real mox as $MOX_BIN) and run lint, type checks and the test suite. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

# BIND 9 (named) for the DNS check/publish tests; they start it themselves on 127.0.0.1.
# systemd-analyze (Debian's systemd) for the checks of the systemd units (verify, security).
missing=()
if ! command -v named >/dev/null 2>&1 && [ ! -x /usr/sbin/named ]; then missing+=(bind9 bind9-utils); fi
if ! command -v systemd-analyze >/dev/null 2>&1; then missing+=(systemd); fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: not installed: ${missing[*]}; the DNS server and systemd unit tests will be skipped" >&2
    fi
fi

# The real mox v0.0.17 for the tests that need mox itself (tests/moxserver.py): shared/mox/get-mox
# next to the repository (CI: ../shared) or next to a directory above it (a worktree). Without it
# those tests skip, each saying why.
if [ -z "${MOX_BIN:-}" ]; then
    dir=$(cd .. && pwd)
    while [ ! -x "$dir/shared/mox/get-mox" ] && [ "$dir" != / ]; do dir=$(dirname "$dir"); done
    if [ -x "$dir/shared/mox/get-mox" ] && MOX_BIN=$("$dir/shared/mox/get-mox"); then
        export MOX_BIN
    else
        echo "note: no usable shared/mox/get-mox above $(pwd); the real-mox tests will be skipped" >&2
    fi
fi

.venv/bin/ruff check reconciler tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
# Every core (-n auto, pytest-xdist); pass -n 0 to run in one process.
.venv/bin/python -m pytest -n auto "$@"
