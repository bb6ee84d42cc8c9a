"""Loading a desired state: `load_desired` with a warm parse cache plus the plan's desired digest,
in one process, by part (reading the files, merging, pydantic's validation, the checks), without
a profiler's distortion: each part is timed by wrapping it.

    .venv/bin/python bench/bench_load.py DESIRED_DIR [--runs N] [--cache-dir DIR]

The first load fills the parse cache (`--cache-dir`, default a directory of its own under
/tmp) and is not counted; each counted run loads again with a new ParseCache, as a plan does.
Prints each run and the fastest of each part (the machine is shared: the fastest is the least
disturbed), then the first parse's peak RSS is what `/usr/bin/time -f %M` of a plan with an
empty cache dir shows (not measured here).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from plan_stages import TIMES, timed  # bench/, the script's directory

from reconciler.desired import load
from reconciler.desired.cache import ParseCache
from reconciler.pipeline import desired_digest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("desired", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    gc.disable()  # as the one-shot verbs run (cli.main.entrypoint)
    cache_dir = args.cache_dir or Path(tempfile.gettempdir()) / "bench-load-cache"
    loading: Any = load  # its parts, replaced by timed ones
    loading.read_with_includes = timed("read", loading.read_with_includes)
    loading.check = timed("checks", loading.check)
    loading._Merged.add = timed("merge", loading._Merged.add)
    loading.DesiredState.model_validate = timed("validate", loading.DesiredState.model_validate)

    def one() -> dict[str, float]:
        gc.collect()
        TIMES.clear()
        cache = ParseCache(cache_dir, str(args.desired))
        t0 = time.perf_counter()
        state = load.load_desired(args.desired, None, cache)
        t1 = time.perf_counter()
        desired_digest(args.desired, desired=state)
        t2 = time.perf_counter()
        return {"load_desired": t1 - t0, "desired_digest": t2 - t1, "both": t2 - t0, **TIMES}

    one()
    best: dict[str, float] = {}
    for _ in range(args.runs):
        run = one()
        print(" ".join(f"{k}={v:.3f}" for k, v in run.items()))
        for k, v in run.items():
            best[k] = min(best.get(k, v), v)
    print("fastest: " + " ".join(f"{k}={v:.3f}" for k, v in best.items()))


if __name__ == "__main__":
    main()
