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

The machine is rarely idle: `--instructions` also counts the instructions the `plan` process
executes (valgrind's cachegrind, PYTHONHASHSEED=0), a figure that does not depend on the load, to
compare two versions of the code.
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


def plan_example(cmd: list[str], runs: int, *, instructions: bool = False,
                 ) -> tuple[list[float], list[float], int | None]:
    """`plan examples/desired` against a scratch copy of the example config, as the demo runs it;
    with `instructions`, also the instructions of one more run under valgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "examples" / "mox", Path(tmp) / "mox", symlinks=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(XDG_CACHE_HOME=str(Path(tmp) / "cache"), ALICE_PASSWORD="bench-only-not-a-secret-1")
        argv = [*cmd, "--config", str(Path(tmp) / "mox" / "config" / "mox.conf"), "plan",
                str(ROOT / "examples" / "desired")]
        wall, cpu = timed(argv, runs, env)
        return wall, cpu, count_instructions(argv, env) if instructions else None


def count_instructions(argv: list[str], env: dict[str, str]) -> int | None:
    """Instructions one run executes (the reconciler's process, not git's), or None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    run = argv if argv[0] == sys.executable else [sys.executable, *argv]  # the entry point is a Python script
    proc = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *run],
                          capture_output=True, text=True, cwd=ROOT, env={**env, "PYTHONHASHSEED": "0"})
    found = [ln.split(":", 1)[1] for ln in proc.stderr.splitlines() if "I   refs:" in ln]
    return int(found[-1].strip().replace(",", "")) if found else None


def loaded_by_version() -> list[str]:
    code = ("import sys\nfrom reconciler.cli.main import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return [m for m in HEAVY if m in out.stdout.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--instructions", action="store_true",
                    help="also count the instructions of one plan run (valgrind; independent of the load)")
    args = ap.parse_args()
    cmd = entry_point()
    print(f"{' '.join(cmd)}, {args.runs} runs each, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    for extra in (["--version"], ["--help"], *([v, "--help"] for v in VERBS)):
        show(" ".join(extra), *timed([*cmd, *extra], args.runs))
    wall, cpu, count = plan_example(cmd, args.runs, instructions=args.instructions)
    show("plan examples/desired", wall, cpu)
    if args.instructions:
        print(f"plan examples/desired    {count:,} instructions" if count else "valgrind not found: no count")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    heavy = loaded_by_version()
    print(f"heavy packages imported by --version: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
