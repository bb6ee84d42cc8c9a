#!/usr/bin/env bash
# The suite must pass on a busy machine: run ./scripts/test.sh RUNS times in a row (default 10)
# while BURNERS CPU-bound processes (default 1) run beside it; stop at the first failure.
# Prints one line per run (result, wall time) and a summary; exit 0 only if every run passed.
#
#   ./scripts/stability.sh            # 10 runs, 1 burner
#   RUNS=3 BURNERS=2 ./scripts/stability.sh -x
#
# Extra arguments go to pytest (through test.sh). Each run's output is kept in
# ${LOGDIR:-/tmp/mox-reconciler-stability}/run-N.log.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
BURNERS=${BURNERS:-1}
LOGDIR=${LOGDIR:-/tmp/mox-reconciler-stability}
mkdir -p "$LOGDIR"

burners=()
stop_burners() {
    for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${burners[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_burners EXIT
for _ in $(seq "$BURNERS"); do
    python3 -c 'while True: pass' &
    burners+=("$!")
done

echo "stability: $RUNS runs of ./scripts/test.sh $*, $BURNERS CPU burner(s), $(nproc) cores, logs in $LOGDIR"
passed=0
for n in $(seq "$RUNS"); do
    start=$(date +%s)
    if ./scripts/test.sh -q "$@" >"$LOGDIR/run-$n.log" 2>&1; then
        result=passed
        passed=$((passed + 1))
    else
        result=FAILED
    fi
    summary=$(grep -E '^[0-9]+ (passed|failed)|passed|failed' "$LOGDIR/run-$n.log" | tail -1)
    echo "run $n: $result in $(( $(date +%s) - start ))s ($summary)"
    if [ "$result" = FAILED ]; then
        echo "stability: run $n failed; see $LOGDIR/run-$n.log" >&2
        exit 1
    fi
done
echo "stability: $passed/$RUNS runs passed"
