"""Our verdict on a config dir next to the real mox's (`mox config test`), for many configs at once.

Used by tests/test_mox_differential.py, and runnable to count the differences on any seed range:

    MOX_BIN=$(../shared/mox/get-mox) .venv/bin/python -m tests.differential --seed 1 --count 400

prints one line per difference and the totals (domains.conf and mox.conf mutations separately).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import REPORTED
from reconciler.mox.live import locate, read_live
from reconciler.mox.validate import check_live

from . import moxdns
from .mutate import Mutation, domains_mutations, static_mutations
from .mutate_records import RecordsCase, records_cases

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


# --- DNS records: `records --format mox` next to `mox config dnsrecords`


def our_records(mox_conf: Path, domain: str, dnssec: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `mox-reconciler records --format mox`, in process."""
    from reconciler.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["--config", str(mox_conf), "records", "--domain", domain, "--format", "mox", *(["--dnssec"] if dnssec else [])]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _spf_ips_sorted(text: str) -> str:
    """The SPF record's ip4:/ip6: terms in sorted order (their order follows Go's map iteration
    over SMTP listeners when there are several)."""
    def sort_terms(m: re.Match[str]) -> str:
        terms = m.group(1).split(" ")
        ips = iter(sorted(t for t in terms if t.startswith(("ip4:", "ip6:"))))
        return '"v=spf1 ' + " ".join(next(ips) if t.startswith(("ip4:", "ip6:")) else t for t in terms) + '"'
    return re.sub(r'"v=spf1 ([^"]*)"', sort_terms, text)


@dataclass(frozen=True)
class RecordsOutcome:
    queries: int  # domains asked for, over all cases
    refused: int  # of them in configs mox refuses to load (and so do we): nothing to compare
    differences: list[str]


def records_differences(mox: str, cases: Sequence[RecordsCase], root: Path) -> RecordsOutcome:
    """Every domain each case asks for: exit code and output of ours against mox's (mox run in a
    private network, tests/moxdns.py); one line per difference."""
    jobs: dict[bool, list[tuple[Path, str, RecordsCase]]] = {False: [], True: []}
    case_conf = {}
    for case in cases:
        conf = case_conf[case.name] = case.config.write(root / case.name)
        for domain, dnssec in case.queries:
            jobs[dnssec].append((conf, domain, case))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        batches = {dnssec: pool.submit(moxdns.dnsrecords, mox, [(c, d) for c, d, _ in js], dnssec=dnssec)
                   for dnssec, js in jobs.items()}
        ours = {dnssec: [our_records(c, d, dnssec) for c, d, _ in js] for dnssec, js in jobs.items()}
        theirs = {dnssec: b.result() for dnssec, b in batches.items()}
    diffs = []
    refused = 0
    for dnssec, js in jobs.items():
        for (_, domain, case), mine, mox_result in zip(js, ours[dnssec], theirs[dnssec], strict=True):
            a, b = mine[1], mox_result[1]
            if case.smtp_listeners > 1:
                a, b = _spf_ips_sorted(a), _spf_ips_sorted(b)
            if mox_result[0] != 0 and "config" in mox_result[2] and our_errors(case_conf[case.name]):
                refused += 1  # a config mox refuses to load, and so do we (the verdict tests compare why)
                continue
            if (mine[0] == 0) != (mox_result[0] == 0) or a != b:
                line = next((f"{x!r} != {y!r}" for x, y in zip(a.splitlines(), b.splitlines(), strict=False) if x != y),
                            f"exit {mine[0]} {mine[2].strip()[:200]!r} / mox exit {mox_result[0]} {mox_result[2].strip()[-200:]!r}")
                diffs.append(f"{case.name} {domain}{' (dnssec)' if dnssec else ''}: {line[:400]}")
    return RecordsOutcome(sum(len(js) for js in jobs.values()), refused, diffs)


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
