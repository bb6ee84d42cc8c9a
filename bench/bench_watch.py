"""Benchmark: the watcher's runs when nothing changed (the steady state of a watcher beside mox
for weeks: a resync every interval, a file event, a git poll), CPU and wall time per run.

Run from the repository root:

    .venv/bin/python bench/bench_watch.py --domains 10000 --runs 5
    .venv/bin/python bench/bench_watch.py --config COPY/mox/config/mox.conf --desired COPY/mox/desired

Each run is `reconcile_once` with the options `mox-reconciler watch` gives it (the caches and the
plan memo in --cache-dir, kept from run to run as in the loop), in this process, so its CPU time
(`time.process_time`: every thread) is measured alone, and the process's resident set after each
run (a watcher's memory must stay flat from run to run). First two warm-up runs (the first applies
what there is to apply and fills the caches; the second plans again, so the memo of a plan made
with settled files exists), then --runs no-op runs with the memo (as `watch` runs them) and
--runs with it turned off (every run planned). With PYTHONPATH pointing at an older checkout the
same script measures that code (a watcher without a memo: every run planned).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: an older checkout there is the code measured

from reconciler.desired.source import resolve_source  # noqa: E402
from reconciler.loop.run import RunResult, Trigger  # noqa: E402
from reconciler.loop.status import StatusBook  # noqa: E402
from reconciler.loop.watch import WatchOptions, reconcile_once  # noqa: E402
from reconciler.mox.live import locate  # noqa: E402
from reconciler.pipeline import Caches  # noqa: E402


def options(mox_conf: Path, desired: Path, cache: Path, *, memo: bool) -> WatchOptions:
    """What `watch` runs with (reconciler/cli/watch.py), the memo only where this code has one."""
    extra: dict[str, object] = {}
    if memo and "memo" in {f.name for f in dataclasses.fields(WatchOptions)}:
        from reconciler.planmemo import PlanMemo

        extra["memo"] = PlanMemo.for_cli(cache)
    return WatchOptions(locate(str(mox_conf)), lambda: resolve_source(str(desired), cache_dir=cache),
                        caches=Caches.for_cli(cache, generate=True), **extra)  # type: ignore[arg-type]


Row = tuple[float, float, RunResult, int]


def rss_mb() -> int:
    """This process's resident set now (MB; 0 where /proc is missing): a watcher's memory from run
    to run, which must stay flat over weeks."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    except (OSError, ValueError, IndexError):
        return 0


def timed(opts: WatchOptions, book: StatusBook, runs: int) -> list[Row]:
    out = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = reconcile_once(opts, book, Trigger.RESYNC)
        out.append((time.perf_counter() - wall, time.process_time() - cpu, result, rss_mb()))
        if not result.ok:
            sys.exit(f"run failed: {result.message}")
    return out


def report(what: str, rows: list[Row]) -> None:
    walls = [w for w, _, _, _ in rows]
    cpus = [c for _, c, _, _ in rows]
    print(f"{what}: CPU median {statistics.median(cpus):.2f} s ({min(cpus):.2f}-{max(cpus):.2f}), "
          f"wall median {statistics.median(walls):.2f} s ({min(walls):.2f}-{max(walls):.2f}); "
          f"results {sorted({str(r.result) for _, _, r, _ in rows})}; "
          f"RSS after each run {', '.join(str(m) for _, _, _, m in rows)} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--domains", type=int, default=10000, help="build a setup of N domains and N accounts")
    ap.add_argument("--config", type=Path, help="an existing mox.conf (with --desired) instead of building one")
    ap.add_argument("--desired", type=Path)
    ap.add_argument("--cache-dir", type=Path, help="default: a new temporary directory")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memo-only", action="store_true", help="skip the runs without the memo")
    ap.add_argument("--fresh-check", action="store_true",
                    help="then time `check_fresh` (apply --plan's freshness check) of a plan of the setup")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        if args.config is not None:
            mox_conf, desired = args.config, args.desired
        else:
            from bench_plan import build

            t = time.perf_counter()
            mox_conf, desired = build(Path(tmp), args.domains)
            print(f"built {args.domains} domains in {time.perf_counter() - t:.1f} s", flush=True)
        cache = args.cache_dir or Path(tmp) / "cache"
        book = StatusBook(Path(tmp) / "status.json")
        opts = options(mox_conf, desired, cache, memo=True)
        report("warm-up (2 runs)", timed(opts, book, 2))
        report(f"no-op runs, as `watch` runs them ({args.runs})", timed(opts, book, args.runs))
        if not args.memo_only:
            report(f"no-op runs, every one planned ({args.runs})",
                   timed(options(mox_conf, desired, cache, memo=False), book, args.runs))
        if args.fresh_check:
            fresh_check(mox_conf, desired, args.runs)


def fresh_check(mox_conf: Path, desired: Path, runs: int) -> None:
    """CPU time of `check_fresh` against a plan of the setup as it is (a fresh plan: it passes)."""
    from reconciler.pipeline import check_fresh, prepare

    paths = locate(str(mox_conf))
    doc = prepare(paths, resolve_source(str(desired))).doc
    cpus = []
    for _ in range(runs):
        cpu = time.process_time()
        check_fresh(paths, doc)
        cpus.append(time.process_time() - cpu)
    print(f"check_fresh of a saved plan ({runs}): CPU " + ", ".join(f"{c:.2f} s" for c in cpus))


if __name__ == "__main__":
    main()
