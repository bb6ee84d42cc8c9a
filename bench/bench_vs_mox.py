"""Benchmark: adding N domains with mox's own CLI loop vs one `mox-reconciler apply`, against a
real `mox serve` (v0.0.17) on loopback, from the same starting config, in one run.

Run from the repository root, as root, with the real mox (`MOX_BIN`, or shared/mox/get-mox above
the repository):

    .venv/bin/python bench/bench_vs_mox.py                    # --runs 3; all four scenarios
    .venv/bin/python bench/bench_vs_mox.py --scenario 20@1000 # N new domains @ base config size
    .venv/bin/python bench/bench_vs_mox.py --scenario 20@10000 --runs 1   # on request only (minutes)

Scenarios (N new domains on a config of B domains): 1@1, 20@1, 50@1 start from the golden
bootstrap (one domain, the admin account); 20@1000 starts from 1,000 domains made like mox's
DomainAdd makes them (two RSA-2048 key files each, DMARC/TLSRPT to admin, MTA-STS); 20@10000
(only when asked for) the same from 10,000 domains.

Per run and scenario, two copies of the starting instance are served by their own `mox serve`
(tests/moxserver.py: private namespaces, loopback only), each for more than mox's one-second
reload throttle before the timed part (an idle server that has been running; until 2026-11-30
05:30 UTC the apply started right after mox had read its config, which made it wait that second
out: the 1 @ 1 figures before then include it):
* mox: `mox config domain add new<i>.example admin` for each new domain, one after the other,
  each a new process (as an operator's script would);
* reconciler: the desired state (`mox-reconciler import` of the starting config, not timed) plus
  one file per new domain (`ReportsAccount: admin`, so DomainAdd's defaults as mox), then one
  `mox-reconciler apply --yes` (a new process), then the confirmation that the running mox
  loaded the write (docs/operations.md): wait until a second has passed since the write, make
  mox take its config lock once (`accountlist` over the control socket) and check that
  domains.conf is still what apply wrote. The ratio uses apply + confirmation: that is the cost
  of a safe apply beside a running mox. When apply confirms by itself (it prints
  "mox loaded the change"), the bench adds nothing.
Both results are checked: N new domains, each with two RSA DKIM keys, and `mox config test` passes.
After each run, the floor: the time to generate the apply's 2N RSA-2048 keys on all cores in this
process (reconciler.apply.keymaker, the threads apply uses), and apply / (1.3 x floor + 0.5 s)
(at most 1 meets the key-generation goal).
Printed: the median of --runs per scenario, the ratio mox / reconciler, and its cap, mox / floor:
the ratio an apply would reach if it did nothing but generate its keys (both sides generate the
same two RSA-2048 keys per domain, so no apply can pass it on this machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.apply.keymaker import KeyMaker  # noqa: E402
from reconciler.mox import config as mc  # noqa: E402
from reconciler.mox import keygen, sconf  # noqa: E402
from reconciler.mox.admin import make_domain_config, mtasts_listener  # noqa: E402
from reconciler.mox.names import parse_domain  # noqa: E402
from tests import moxserver  # noqa: E402

SCENARIOS = ("1@1", "20@1", "50@1", "20@1000")
# On request only: mox's `config domain add` takes about 13 s per domain at 10,000 domains here, so
# one run of its loop takes minutes.
LARGE_SCENARIOS = ("20@10000",)
RELOAD_WINDOW = 1.0  # mox checks domains.conf's mtime at most once a second (mox-/config.go)


def reconciler_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "mox-reconciler"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "reconciler"]


def child_env() -> dict[str, str]:
    """Our environment, except that bytecode may be cached (an installed package has it)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def grow(instance: moxserver.MoxInstance, domains: int, pool: list[bytes]) -> None:
    """Add `domains` domains to the instance's config as mox's DomainAdd writes them (two RSA key
    files each, contents taken round-robin from `pool`; reports to admin)."""
    if domains <= 1:
        return
    paths = instance.config_paths
    static = sconf.parse(paths.mox_conf.read_text(), mc.Static)
    dyn = sconf.parse(paths.domains_conf.read_text(), mc.Dynamic)
    host = parse_domain(static.Hostname)
    now = datetime(2026, 1, 1, 12, 0, 0).astimezone()
    added: dict[str, mc.Domain] = {}
    for i in range(domains - len(dyn.Domains)):
        name = f"base{i:04d}.example"
        conf, keys = make_domain_config(parse_domain(name), host, "admin", mtasts_listener(static), now)
        for j, req in enumerate(keys):
            target = paths.config_dir / req.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(pool[(2 * i + j) % len(pool)])
        added[name] = conf
    dyn = dataclasses.replace(dyn, Domains={**dyn.Domains, **added})
    paths.domains_conf.write_bytes(sconf.write_bytes(dyn))


def copy_instance(src: moxserver.MoxInstance) -> moxserver.MoxInstance:
    """A second instance with the same config (its own directory and ports)."""
    dst = moxserver.build_instance("00")
    shutil.rmtree(dst.config_dir)
    shutil.copytree(src.config_dir, dst.config_dir, symlinks=True)
    dst.ports = dict(src.ports)  # the ports in the copied mox.conf, replaced by fresh ones
    dst.assign_ports()
    return dst


def settle() -> None:
    """Let the mox just started serve for longer than its reload throttle, like a server that has
    been running: a mox that read its config less than a second ago does not look at the file at
    the apply's first command, so the apply cannot see it holding the write at once and waits the
    second out (docs/operations.md, "Confirmed at once"). Not timed; both sides get it."""
    time.sleep(RELOAD_WINDOW + 0.1)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def mox_loop(instance: moxserver.MoxInstance, n: int) -> float:
    def run() -> None:
        for i in range(n):
            r = instance.mox("config", "domain", "add", f"new{i}.example", "admin")
            if r.returncode != 0:
                raise SystemExit(f"mox config domain add failed: {r.stderr}")

    with moxserver.serve(instance):
        settle()
        return timed(run)


def reconciler_apply(instance: moxserver.MoxInstance, n: int, work: Path) -> tuple[float, float]:
    """(apply, apply + confirmation) seconds."""
    desired = work / "desired"
    cmd = [*reconciler_cmd(), "--config", str(instance.mox_conf)]
    env = child_env()
    subprocess.run([*cmd, "import", "-o", str(desired)], check=True, capture_output=True, env=env)
    for i in range(n):
        (desired / f"domain-new{i}.example.yaml").write_text(
            f"Domains:\n  new{i}.example:\n    ReportsAccount: admin\n")
    with moxserver.serve(instance) as served:
        settle()
        t0 = time.perf_counter()
        out = subprocess.run([*cmd, "apply", "--yes", str(desired)], capture_output=True, text=True, env=env)
        applied = time.perf_counter()
        if out.returncode != 0:
            raise SystemExit(f"mox-reconciler apply failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        if "mox loaded the change" not in out.stdout:
            written = instance.domains_conf.read_bytes()
            mtime = instance.domains_conf.stat().st_mtime
            time.sleep(max(0.0, mtime + RELOAD_WINDOW + 0.05 - time.time()))
            served.ctl().account_list()
            if instance.domains_conf.read_bytes() != written:
                raise SystemExit("mox wrote over the apply: not confirmed")
        confirmed = time.perf_counter()
    return applied - t0, confirmed - t0


def check_result(instance: moxserver.MoxInstance, n: int, base: int) -> None:
    verdict = instance.config_test()
    if not verdict.ok:
        raise SystemExit(f"mox config test failed on {instance.root}: {verdict.output}")
    dyn = sconf.parse(instance.domains_conf.read_text(), mc.Dynamic)
    new = [d for d in dyn.Domains if d.startswith("new")]
    if len(new) != n or len(dyn.Domains) != base + n:
        raise SystemExit(f"{instance.root}: expected {n} new domains on {base}, found {len(new)} of {len(dyn.Domains)}")
    if any(len(dyn.Domains[d].DKIM.Selectors) != 2 for d in new):
        raise SystemExit(f"{instance.root}: a new domain lacks DomainAdd's two DKIM selectors")


def keygen_floor(keys: int) -> float:
    """Seconds to generate `keys` RSA-2048 keys on all cores, as apply does (KeyMaker threads)."""
    now = datetime.now().astimezone()
    reqs = [keygen.KeyRequest(f"s{i}", "floor.example", keygen.RSA2048, now) for i in range(keys)]
    t0 = time.perf_counter()
    with KeyMaker() as maker:
        maker.pems(reqs)
    return time.perf_counter() - t0


def run_scenario(n: int, base: int, pool: list[bytes], work: Path) -> tuple[float, float, float, float]:
    start = moxserver.build_instance("00")
    grow(start, base, pool)
    other = copy_instance(start)
    try:
        t_mox = mox_loop(start, n)
        check_result(start, n, base)
        t_apply, t_confirmed = reconciler_apply(other, n, work)
        check_result(other, n, base)
        return t_mox, t_apply, t_confirmed, keygen_floor(2 * n)
    finally:
        start.remove()
        other.remove()


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scenario", action="append", choices=SCENARIOS + LARGE_SCENARIOS,
                    help=f"default: all but {', '.join(LARGE_SCENARIOS)}")
    args = ap.parse_args()
    reason = moxserver.serve_reason()
    if reason:
        print(f"cannot serve mox here: {reason}", file=sys.stderr)
        return 1
    scenarios = args.scenario or list(SCENARIOS)
    subprocess.run([*reconciler_cmd(), "--version"], check=True, capture_output=True, env=child_env())  # bytecode
    pool = [keygen.generate(keygen.KeyRequest("p", "pool.example", keygen.RSA2048, datetime.now().astimezone()))
            for _ in range(50)]
    print(f"mox {moxserver.MOX_VERSION} at {moxserver.mox_bin()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start; {args.runs} runs, medians in seconds")
    rows = []
    for sc in scenarios:
        n, base = map(int, sc.split("@"))
        results = []
        for r in range(args.runs):
            work = Path(tempfile.mkdtemp(prefix="bench-vs-mox-"))
            try:
                results.append(run_scenario(n, base, pool, work))
            finally:
                shutil.rmtree(work, ignore_errors=True)
            m, a, c, k = results[-1]
            print(f"  {sc} run {r + 1}: mox {m:.2f}s, apply {a:.2f}s, apply+confirm {c:.2f}s, "
                  f"keygen floor {k:.2f}s", flush=True)
        med = [statistics.median(x[i] for x in results) for i in range(4)]
        rows.append((sc, *med))
    print(f"\n{'new @ config':<14}{'mox CLI loop':>14}{'apply':>9}{'+confirm':>10}{'ratio':>8}"
          f"{'keygen':>9}{'cap':>8}{'apply/(1.3 keygen+0.5)':>24}")
    for sc, m, a, c, k in rows:
        n, base = sc.split("@")
        print(f"{n + ' @ ' + base:<14}{m:>14.2f}{a:>9.2f}{c:>10.2f}{m / c:>7.1f}x{k:>9.2f}{m / k:>7.1f}x"
              f"{a / (1.3 * k + 0.5):>24.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
