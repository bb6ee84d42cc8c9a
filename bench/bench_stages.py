"""Benchmark: where a plan of one new domain spends its time after the desired state is loaded:
reading the live config (`read_live`), planning (`make_plan`) and checking the plan's result
(`pipeline.check_result`), each timed inside a new `mox-reconciler plan` process (wall and CPU
time of the calls themselves, no profiler).

Run from the repository root:

    .venv/bin/python bench/bench_stages.py                     # --domains 10000 --runs 5
    .venv/bin/python bench/bench_stages.py --dir /tmp/k10      # build there once, reuse after
    .venv/bin/python bench/bench_stages.py --dir /tmp/k10 --code ../main   # another checkout's code

The setup is bench_plan's (N domains, N accounts, the desired state `import` writes), plus one
new domain file. The live config is recorded as validated by this version, as it is after an
apply (`pipeline.Verdicts`): the plan's result is then checked against it as a known-good base.
One plan fills the parse cache first; the --runs plans after it are timed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_plan import build, new_domain_file  # noqa: E402

from reconciler.mox.live import ConfigPaths, read_live  # noqa: E402
from reconciler.mox.validate import validate_dynamic  # noqa: E402
from reconciler.pipeline import Caches  # noqa: E402

STAGES = ("read_live", "make_plan", "check_result")

# Run in each timed process: wrap the three calls where the pipeline calls them, then run the CLI.
_TIMED = """
import atexit, json, sys, time
import reconciler.mox.live, reconciler.pipeline, reconciler.plan.planner
T = {}
def timed(module, name):
    f = getattr(module, name)
    def g(*a, **k):
        w, c = time.perf_counter(), time.thread_time()
        try:
            return f(*a, **k)
        finally:
            ow, oc = T.get(name, (0.0, 0.0))
            T[name] = (ow + time.perf_counter() - w, oc + time.thread_time() - c)
    setattr(reconciler.pipeline, name, g)
for module, name in ((reconciler.mox.live, "read_live"), (reconciler.plan.planner, "make_plan"),
                     (reconciler.pipeline, "check_result")):
    timed(module, name)
atexit.register(lambda: print("STAGES " + json.dumps(T), file=sys.stderr))
from reconciler.cli.main import entrypoint
sys.argv = ["mox-reconciler", *sys.argv[1:]]
entrypoint()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", type=Path, help="build the setup here (reused when it exists)")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="the checkout whose reconciler the plans run (another version, to compare)")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-stages-"))
    mox_conf, desired = root / "config" / "mox.conf", root / "desired"
    if not mox_conf.exists():
        root.mkdir(parents=True, exist_ok=True)
        mox_conf, desired = build(root, args.domains)
    new_domain_file(desired, "new1.example", "user1")
    cache = root / "cache"
    os.environ["XDG_CACHE_HOME"] = str(cache)
    paths = ConfigPaths(mox_conf)
    live = read_live(paths)
    if validate_dynamic(live.static, live.dynamic, paths.config_dir).errors:
        raise SystemExit("the live config does not validate")
    Caches.for_cli(None, generate=False).valid.record(paths, live.digest)

    cmd = [sys.executable, "-c", _TIMED, "--config", str(mox_conf), "plan", str(desired)]
    env = {**os.environ, "PYTHONPATH": str(args.code)}
    runs: list[dict[str, list[float]]] = []
    for i in range(args.runs + 1):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=args.code, check=False)  # -c: cwd first
        if done.returncode not in (0, 2):
            raise SystemExit(f"plan failed ({done.returncode}):\n{done.stderr[-2000:]}")
        if i == 0:
            continue  # the parse cache filled
        line = next(x for x in done.stderr.splitlines() if x.startswith("STAGES "))
        runs.append(json.loads(line.removeprefix("STAGES ")))
    print(f"{args.domains} domains + {args.domains} accounts, 1 new domain, {args.runs} plans of {args.code} "
          f"(median wall / CPU seconds), load average {os.getloadavg()[0]:.2f}")
    for name in STAGES:
        print(f"  {name:<14} {statistics.median(r[name][0] for r in runs):6.3f} / "
              f"{statistics.median(r[name][1] for r in runs):6.3f}")
    print(f"  {'the three':<14} {statistics.median(sum(r[s][0] for s in STAGES) for r in runs):6.3f} / "
          f"{statistics.median(sum(r[s][1] for s in STAGES) for r in runs):6.3f}")


if __name__ == "__main__":
    main()
