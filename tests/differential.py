"""Our verdict on a config dir next to the real mox's (`mox config test`), for many configs at once.

Used by tests/test_mox_differential.py, and runnable to count the differences on any seed range:

    MOX_BIN=$(../shared/mox/get-mox) .venv/bin/python -m tests.differential --seed 1 --count 400

prints one line per difference and the totals (domains.conf and mox.conf mutations separately).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import REPORTED
from reconciler.mox.live import locate, read_live
from reconciler.mox.validate import check_live

from .mutate import Mutation, domains_mutations, static_mutations

WORKERS = max(2, 2 * (os.cpu_count() or 1))  # mox config test mostly waits on its own start-up


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    ours: tuple[str, ...]  # our errors (empty: accepted)
    mox_ok: bool
    mox_output: str

    @property
    def differs(self) -> bool:
        return (not self.ours) != self.mox_ok


def our_errors(mox_conf: Path) -> tuple[str, ...]:
    """What `mox-reconciler config test` says: () when it accepts."""
    try:
        return tuple(check_live(read_live(locate(str(mox_conf)))))
    except REPORTED as e:
        return (str(e),)


def mox_config_test(mox: str, mox_conf: Path) -> tuple[bool, str]:
    r = subprocess.run([mox, "-config", str(mox_conf), "config", "test"], capture_output=True, text=True,
                       timeout=120, errors="replace")
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def compare(mox: str, mutations: Sequence[Mutation], root: Path) -> list[Outcome]:
    """Write every mutation under `root`, run ours in process and mox's in parallel."""
    confs = [m.config.write(root / m.name) for m in mutations]
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        theirs = list(pool.map(lambda p: mox_config_test(mox, p), confs))
    return [Outcome(m, our_errors(p), ok, out) for m, p, (ok, out) in zip(mutations, confs, theirs, strict=True)]


def describe(o: Outcome) -> str:
    who = "we refuse, mox accepts" if o.ours else "we accept, mox refuses"
    why = o.ours[0] if o.ours else o.mox_output.splitlines()[-1] if o.mox_output else ""
    return f"{o.mutation.name} {list(o.mutation.kinds)}: {who}: {why[:300]}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=300, help="domains.conf mutations (mox.conf: half as many)")
    p.add_argument("--only", choices=("domains", "static"), help="one kind of mutation only")
    p.add_argument("--keep", type=Path, help="write the configs here (default: a temporary directory)")
    args = p.parse_args(argv)
    mox = os.environ.get("MOX_BIN", "")
    if not mox:
        print("MOX_BIN is not set", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        total = 0
        for label, muts in (("domains.conf", domains_mutations(args.seed, args.count)),
                            ("mox.conf", static_mutations(args.seed, args.count // 2))):
            if args.only and not label.startswith({"domains": "domains", "static": "mox"}[args.only]):
                continue
            outcomes = compare(mox, muts, root)
            diffs = [o for o in outcomes if o.differs]
            for o in diffs:
                print(("deliberate " if o.mutation.deliberate else "DIFFERENT  ") + describe(o))
            real = sum(not o.mutation.deliberate for o in diffs)
            print(f"{label}: {len(outcomes)} mutations, mox accepts {sum(o.mox_ok for o in outcomes)}, "
                  f"{len(diffs)} verdicts differ ({real} not deliberate)")
            total += real
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
