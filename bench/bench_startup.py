"""Benchmark: wall time of `mox-reconciler --version`, `--help` and each verb's `--help`, as a
user starts them (a new process each time), and the modules `--version` loads.

Run from the repository root:

    .venv/bin/python bench/bench_startup.py             # --runs 10

Each command runs `--runs` times (after one warm-up run that fills the bytecode cache); printed:
the median and the fastest wall time (time.perf_counter around subprocess.run). The goal for
`--version` and `--help` is at most 0.25 s on an idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
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


def timed(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True, cwd=ROOT)  # warm-up: bytecode cache
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, cwd=ROOT)
        out.append(time.perf_counter() - t0)
    return out


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
    print(f"{' '.join(cmd)}, {args.runs} runs each, Python {sys.version.split()[0]}")
    for extra in (["--version"], ["--help"], *([v, "--help"] for v in VERBS)):
        times = timed([*cmd, *extra], args.runs)
        print(f"{' '.join(extra):<22} median {statistics.median(times):.3f}s  fastest {min(times):.3f}s")
    heavy = loaded_by_version()
    print(f"heavy packages imported by --version: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
