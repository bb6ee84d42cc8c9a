"""Benchmark: wall time of `mox-reconciler --version`, `--help`, each verb's `--help` and `plan`
on the bundled example, as a user starts them (a new process each time), and the modules
`--version` loads.

Run from the repository root:

    .venv/bin/python bench/bench_startup.py             # --runs 10

Each command runs `--runs` times (after one warm-up run that fills the bytecode cache); printed:
the median and the fastest wall time (time.perf_counter around subprocess.run) and the median CPU
time (user + system of the child: what the wall time would be on an idle core). The goals:
`--version` and `--help` at most 0.25 s, `plan examples/desired` (against a scratch copy of
examples/mox/config, the parse cache warm from the warm-up run) at most 0.6 s on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERBS = ["plan", "apply", "watch", "validate", "import", "records", "config"]
HEAVY = ["pydantic", "cryptography", "git", "yaml", "watchfiles", "prometheus_client", "dns", "rich"]


def entry_point() -> list[str]:
    exe = Path(sys.executable).parent / "mox-reconciler"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mox-reconciler")
    return [found] if found else [sys.executable, "-m", "reconciler"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) of each run."""
    subprocess.run(argv, capture_output=True, check=True, cwd=ROOT, env=env)  # warm-up: bytecode cache
    wall, cpu = [], []
    for _ in range(runs):
        c0, t0 = children_cpu(), time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, cwd=ROOT, env=env)
        wall.append(time.perf_counter() - t0)
        cpu.append(children_cpu() - c0)
    return wall, cpu


def show(label: str, wall: list[float], cpu: list[float]) -> None:
    print(f"{label:<24} median {statistics.median(wall):.3f}s  fastest {min(wall):.3f}s  "
          f"CPU median {statistics.median(cpu):.3f}s")


def plan_example(cmd: list[str], runs: int) -> tuple[list[float], list[float]]:
    """`plan examples/desired` against a scratch copy of the example config, as the demo runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "examples" / "mox", Path(tmp) / "mox", symlinks=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(XDG_CACHE_HOME=str(Path(tmp) / "cache"), ALICE_PASSWORD="bench-only-not-a-secret-1")
        argv = [*cmd, "--config", str(Path(tmp) / "mox" / "config" / "mox.conf"), "plan",
                str(ROOT / "examples" / "desired")]
        return timed(argv, runs, env)


def loaded_by_version() -> list[str]:
    code = ("import sys\nfrom reconciler.cli.main import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return [m for m in HEAVY if m in out.stdout.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    cmd = entry_point()
    print(f"{' '.join(cmd)}, {args.runs} runs each, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    for extra in (["--version"], ["--help"], *([v, "--help"] for v in VERBS)):
        show(" ".join(extra), *timed([*cmd, *extra], args.runs))
    show("plan examples/desired", *plan_example(cmd, args.runs))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    heavy = loaded_by_version()
    print(f"heavy packages imported by --version: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
