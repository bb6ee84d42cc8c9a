"""Benchmark: what a real `mox serve` costs the tests (tests/moxserver.py), start to stop.

Run from the repository root, as root, with the real mox (`MOX_BIN`, or shared/mox/get-mox above
the repository):

    .venv/bin/python bench/bench_moxserve.py --runs 7

Per run: build a loopback instance from the golden bootstrap (copy, free ports, admin password),
start `mox serve` until its control socket answers, one `accountlist` over the socket, then stop
(the default kill of the namespace, and mox's graceful SIGTERM shutdown on a second start).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import moxserver


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    reason = moxserver.serve_reason()
    if reason:
        print(f"cannot serve mox here: {reason}", file=sys.stderr)
        return 1

    times: dict[str, list[float]] = {k: [] for k in
                                     ("build", "start", "accountlist", "stop (kill)", "start again", "stop (graceful)")}

    def timed(name: str, t0: float) -> float:
        now = time.perf_counter()
        times[name].append(now - t0)
        return now

    moxserver.build_instance("00").remove()  # the first build makes the admin password hash
    for _ in range(args.runs):
        t = time.perf_counter()
        instance = moxserver.build_instance("00")
        try:
            t = timed("build", t)
            served = moxserver.start(instance)
            t = timed("start", t)
            served.ctl().account_list()
            t = timed("accountlist", t)
            served.stop()
            t = timed("stop (kill)", t)
            assert served.leftover_pids() == []
            served = moxserver.start(instance)
            t = timed("start again", t)
            served.stop(graceful=True)
            timed("stop (graceful)", t)
            assert served.leftover_pids() == []
        finally:
            instance.remove()

    print(f"{args.runs} runs; seconds: median (min-max)")
    for name, values in times.items():
        print(f"  {name:16} {statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
