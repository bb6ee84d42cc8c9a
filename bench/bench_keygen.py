"""Benchmark: how DKIM keys are best generated on all cores (reconciler.apply.keymaker).

Run from the repository root:

    .venv/bin/python bench/bench_keygen.py              # --keys 40 --runs 3

1. Does `cryptography` release the GIL while it generates an RSA key? A second thread counts in
   a pure-Python loop while the main thread generates keys; the CPU time each thread got is
   printed. With the GIL held during generation the counting thread would get next to nothing.
2. RSA-2048 keys one after the other, and in threads on every core (KeyMaker, what apply uses):
   wall time and speed-up (median of --runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cryptography
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.apply.keymaker import KeyMaker, cores
from reconciler.mox import keygen

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def gil_check(keys: int) -> tuple[float, float, float]:
    """(CPU s of the generating thread, CPU s of the counting thread, wall s)."""
    spun: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        t0 = time.thread_time()
        while not stop.is_set():
            pass
        spun.append(time.thread_time() - t0)

    sys.setswitchinterval(0.001)
    counter = threading.Thread(target=spin)
    counter.start()
    c0, w0 = time.thread_time(), time.perf_counter()
    for _ in range(keys):
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    gen, wall = time.thread_time() - c0, time.perf_counter() - w0
    stop.set()
    counter.join()
    return gen, spun[0], wall


def timed(workers: int, n: int) -> float:
    reqs = [keygen.KeyRequest(f"s{i}", "bench.example", keygen.RSA2048, NOW) for i in range(n)]
    t0 = time.perf_counter()
    with KeyMaker(workers) as maker:
        maker.pems(reqs)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"cryptography {cryptography.__version__}, Python {sys.version.split()[0]}, {cores()} cores")
    gen, spun, wall = gil_check(10)
    print(f"GIL: 10 RSA keys in the main thread took {gen:.2f}s of its CPU; meanwhile the counting thread got "
          f"{spun:.2f}s of CPU in {wall:.2f}s wall ({'released' if spun > 0.5 * gen else 'held'} during generation)")
    one = [timed(1, args.keys) for _ in range(args.runs)]
    threads = [timed(cores(), args.keys) for _ in range(args.runs)]
    print(f"{args.keys} RSA-2048 keys, one after the other:  median {statistics.median(one):.2f}s")
    print(f"{args.keys} RSA-2048 keys, {cores()} threads (KeyMaker): median {statistics.median(threads):.2f}s "
          f"(speed-up {statistics.median(one) / statistics.median(threads):.2f}x)")


if __name__ == "__main__":
    main()
