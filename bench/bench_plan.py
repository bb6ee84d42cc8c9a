"""Benchmark: `plan` and `apply` at scale, each a new `mox-reconciler` process as an operator (or
the watcher's cron twin) runs it, with the cache dir in use.

Run from the repository root:

    .venv/bin/python bench/bench_plan.py                       # --domains 10000 --runs 5
    .venv/bin/python bench/bench_plan.py --domains 1000        # the same at 1,000 (for the growth)

The live config has N domains and N accounts, shaped like `mox config domain add` makes them:
two RSA-2048 DKIM selectors per domain (pointing round-robin at 50 real key files), DMARC and
TLSRPT reports to the domain's account, a catchall separator; each account has two addresses,
junk flags and a junk filter. The desired state is what `mox-reconciler import` writes for it:
one file per domain and accounts.yaml. Then, timed (wall clock, median of --runs where repeated,
and the peak RSS of each process):

1. `plan` with an empty cache dir (the first run reads every file);
2. `plan` with nothing changed (the steady state of a watcher's twin or a CI job): planned again
   (the plan memo removed before each run; the parse cache stays), then answered from the plan
   memo (`reconciler.planmemo`);
3. `apply --yes` after adding one new domain file (DomainAdd: two RSA keys), --runs times;
4. `apply --yes` after adding 100 new domain files (200 RSA keys), compared with the time to
   generate 200 RSA-2048 keys on all cores (the same threads the apply uses).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_validate import make_config, make_keys  # noqa: E402

from reconciler.apply.keymaker import KeyMaker, cores  # noqa: E402
from reconciler.desired.importer import import_files  # noqa: E402
from reconciler.mox import keygen, sconf  # noqa: E402
from reconciler.mox.admin import now_local  # noqa: E402
from reconciler.mox.config import Static  # noqa: E402

GOLDEN = ROOT / "tests" / "fixtures" / "golden"


def entry_point() -> list[str]:
    exe = Path(sys.executable).parent / "mox-reconciler"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "reconciler"]


def build(root: Path, n: int) -> tuple[Path, Path]:
    """The live config dir and the desired-state dir for N domains and N accounts."""
    cfg = root / "config"
    shutil.copytree(GOLDEN / "instance" / "config", cfg)
    (root / "data").mkdir()
    (cfg / "dkim").mkdir()
    keys = make_keys(cfg, 50)
    static = sconf.parse((cfg / "mox.conf").read_text(), Static)
    dyn = make_config(n, keys)
    (cfg / "domains.conf").write_bytes(sconf.write_bytes(dyn))
    desired = root / "desired"
    desired.mkdir()
    for name, text in import_files(static, dyn).items():
        (desired / name).write_text(text)
    return cfg / "mox.conf", desired


def new_domain_file(desired: Path, name: str, account: str) -> None:
    """A domain as an operator adds one: a file naming its reports account (DomainAdd's defaults)."""
    (desired / f"domain-{name}.yaml").write_text(f"Domains:\n  {name}:\n    ReportsAccount: {account}\n")


class Runner:
    def __init__(self, mox_conf: Path, cache: Path) -> None:
        self.cmd = [*entry_point(), "--config", str(mox_conf)]
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["XDG_CACHE_HOME"] = str(cache)
        self.peak_rss_kb = 0


def rss_of(runner: Runner, *args: str) -> tuple[float, str, int]:
    """Run and measure one process's peak RSS (ru_maxrss of that child alone)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*runner.cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runner.env,
                            cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t0
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    runner.peak_rss_kb = max(runner.peak_rss_kb, usage.ru_maxrss)
    return dt, out.decode(), usage.ru_maxrss


def keygen_time(n: int) -> float:
    """Seconds to generate `n` RSA-2048 keys on all cores, as apply does (KeyMaker threads)."""
    now = now_local()
    reqs = [keygen.KeyRequest(f"s{i}", "bench.example", keygen.RSA2048, now) for i in range(n)]
    t0 = time.perf_counter()
    with KeyMaker() as maker:
        maker.pems(reqs)
    return time.perf_counter() - t0


def summary(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith(("Plan:", "No changes", "Applied"))]
    return "; ".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--domains", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--add", type=int, default=100, help="domains added in the last step")
    args = ap.parse_args()
    print(f"{args.domains} domains + {args.domains} accounts, {cores()} cores, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        # Built in a process of its own: a child's peak RSS (ru_maxrss) starts at its parent's
        # RSS when it is started, so a bench process that held the built config would make every
        # measured process look at least that large (it did: 177 MB for a 54 MB plan).
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            mox_conf, desired = pool.submit(build, root / "mox", args.domains).result()
        conf_kb = (mox_conf.parent / "domains.conf").stat().st_size // 1024
        print(f"built in {time.perf_counter() - t0:.1f}s: domains.conf {conf_kb} KB, "
              f"{len(list(desired.iterdir()))} desired-state files")
        run = Runner(mox_conf, root / "cache")
        rows: list[tuple[str, float, int]] = []

        dt, out, rss = rss_of(run, "plan", str(desired))
        rows.append(("plan, empty cache dir (first run)", dt, rss))
        print(f"  {summary(out)}")
        memos = root / "cache" / "mox-reconciler" / "plans"
        for remembered in (False, True):
            times, peak = [], 0
            for _ in range(args.runs):
                if not remembered:
                    shutil.rmtree(memos, ignore_errors=True)
                dt, out, rss = rss_of(run, "plan", str(desired))
                times.append(dt)
                peak = max(peak, rss)
            print(f"  no-op plans, {'memo' if remembered else 'no memo'}: "
                  + ", ".join(f"{t:.2f}s" for t in times) + f" (peak RSS {peak // 1024} MB)")
            how = "remembered (plan memo)" if remembered else "planned again (no memo)"
            rows.append((f"plan, no changes, {how} (median of {args.runs})", statistics.median(times), peak))
            print(f"  {summary(out)}")

        times, peak = [], 0
        for i in range(args.runs):
            new_domain_file(desired, f"new{i}.example", f"user{i}")
            dt, out, rss = rss_of(run, "apply", "--yes", str(desired))
            times.append(dt)
            peak = max(peak, rss)
        rows.append((f"apply, 1 new domain (median of {args.runs})", statistics.median(times), peak))
        print(f"  {summary(out)}")

        for i in range(args.add):
            new_domain_file(desired, f"more{i}.example", f"user{i}")
        dt, out, rss = rss_of(run, "apply", "--yes", str(desired))
        rows.append((f"apply, {args.add} new domains ({2 * args.add} RSA keys)", dt, rss))
        print(f"  {summary(out)}")
        kg = keygen_time(2 * args.add)

        for label, secs, rss_kb in rows:
            print(f"{label:<60} {secs:7.2f}s  peak RSS {rss_kb // 1024:4d} MB")
        print(f"{'generating ' + str(2 * args.add) + ' RSA-2048 keys on all cores':<60} {kg:7.2f}s")
        print(f"apply of {args.add} new domains / (1.3 x keygen + 1 s): {rows[-1][1] / (1.3 * kg + 1):.2f} "
              "(<= 1 meets the goal)")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
