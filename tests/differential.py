"""Our results next to the real mox's, for many configs at once: verdicts (`mox config test`),
regexp verdicts and error texts, the Unicode sweep, and DNS records (`mox config dnsrecords`).

mox's side is started first for everything (`Run.submit_*`: a pool of mox processes), ours is
computed in process while they run (`Run.*_outcomes`), so both cores work. Used by
tests/test_mox_differential.py, and runnable to count the differences on any seed:

    MOX_BIN=$(../shared/mox/get-mox) .venv/bin/python -m tests.differential --seed 1000 --count 400

prints one line per difference and the totals per kind (docs/differential.md).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import io
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import REPORTED
from reconciler.mox.golang import go_lower, unicode_data
from reconciler.mox.live import locate, read_live
from reconciler.mox.names import parse_address
from reconciler.mox.validate import check_live, validate_dynamic

from . import moxdns, regexps
from .mutate import Config, Mutation, domains_mutations, golden, static_mutations
from .mutate_records import RecordsCase, records_cases

WORKERS = max(2, 2 * (os.cpu_count() or 1))  # mox config test mostly waits on its own start-up


# --- running either side


def our_errors(mox_conf: Path) -> tuple[str, ...]:
    """What `mox-reconciler config test` says: () when it accepts."""
    try:
        return tuple(check_live(read_live(locate(str(mox_conf)))))
    except REPORTED as e:
        return (str(e),)


GO_ENV = {**os.environ, "GOMAXPROCS": "1"}  # one thread each: many run at once, a quarter less CPU


def mox_config_test(mox: str, mox_conf: Path) -> tuple[bool, str]:
    r = subprocess.run([mox, "-config", str(mox_conf), "config", "test"], capture_output=True, text=True,
                       timeout=120, errors="replace", env=GO_ENV)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


_DUPLICATE = "duplicate canonicalized destination address "


def error_lines(output: str | Sequence[str]) -> set[str]:
    """The errors of a config test's output, one per line (mox lists several after "multiple errors:").
    Of two destinations that are one address, the one visited second gets the error: for mox
    that is up to Go's map order, so only the address is kept."""
    lines = output.splitlines() if isinstance(output, str) else output
    return {ln[ln.index(_DUPLICATE):] if _DUPLICATE in ln else ln
            for ln in lines if ln.strip() and ln != "multiple errors:" and ln != "config OK"}


def our_records(mox_conf: Path, domain: str, dnssec: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `mox-reconciler records --format mox`, in process."""
    from reconciler.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["--config", str(mox_conf), "records", "--domain", domain, "--format", "mox",
            *(["--dnssec"] if dnssec else [])]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


# --- what is compared


@dataclass(frozen=True)
class Outcome:
    """One mutation's verdicts."""

    mutation: Mutation
    conf: Path
    ours: tuple[str, ...]  # our errors (empty: accepted)
    mox_ok: bool
    mox_output: str

    @property
    def differs(self) -> bool:
        return (not self.ours) != self.mox_ok

    def kind(self) -> str:
        """"same", "deliberate" (reconciler/mox/README.md), "fromid-order" or "DIFFERENT"."""
        if not self.differs:
            return "same"
        if self.mutation.deliberate:
            return "deliberate"
        return "fromid-order" if _fromid_order_dependent(self) else "DIFFERENT"

    def describe(self) -> str:
        who = "we refuse, mox accepts" if self.ours else "we accept, mox refuses"
        why = self.ours[0] if self.ours else self.mox_output.splitlines()[-1] if self.mox_output else ""
        return f"{self.mutation.name} {list(self.mutation.kinds)}: {who}: {why[:300]}"


def _fromid_order_dependent(o: Outcome) -> bool:
    """mox accepted, we refused only FromID addresses that another account's address or catchall
    covers: mox accepts those when Go's map order happens to visit that account first."""
    if not o.mox_ok or not o.ours or not all("fromid login address" in e and "does not match" in e for e in o.ours):
        return False
    live = read_live(locate(str(o.conf)))
    index = validate_dynamic(live.static, live.dynamic, live.paths.config_dir).addresses
    for e in o.ours:
        addr = parse_address(e.split('"')[3])
        if "@" + addr.domain.name() not in index and not any(k.endswith("@" + addr.domain.name()) for k in index):
            return False
    return True


@dataclass(frozen=True)
class Comparison:
    """A sweep's result: how many items, how many mox refuses, one line per difference."""

    items: int
    refused: int
    differences: list[str]


def _spf_ips_sorted(text: str) -> str:
    """The SPF record's ip4:/ip6: terms in sorted order (their order follows Go's map iteration
    over SMTP listeners when there are several)."""
    def sort_terms(m: re.Match[str]) -> str:
        terms = m.group(1).split(" ")
        ips = iter(sorted(t for t in terms if t.startswith(("ip4:", "ip6:"))))
        return '"v=spf1 ' + " ".join(next(ips) if t.startswith(("ip4:", "ip6:")) else t for t in terms) + '"'
    return re.sub(r'"v=spf1 ([^"]*)"', sort_terms, text)


@functools.cache
def unicode_sweep_points() -> tuple[list[int], list[int]]:
    """(code points whose lower case differs between Python 3.11 and Go 1.27 (Unicode 17), code
    points whose general category differs: the first and last of every run of them with equal
    properties in our tables)."""
    u = unicode_data()
    python_lower = {cp for cp in range(0x80, 0x110000)
                    if not 0xD800 <= cp < 0xE000 and len(chr(cp).lower()) == 1 and chr(cp).lower() != chr(cp)}
    lower = sorted(cp for cp in python_lower | u.lower_cp.keys()
                   if cp >= 0x80 and go_lower(chr(cp)) != (chr(cp).lower() if cp in python_lower else chr(cp)))
    ours = [""] * 0x110000
    for i, start in enumerate(u.cat_starts):
        end = u.cat_starts[i + 1] if i + 1 < len(u.cat_starts) else 0x110000
        ours[start:end] = [u.cats[i]] * (end - start)
    new = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000 and unicodedata.category(chr(cp)) != ours[cp]]

    def props(cp: int) -> tuple[object, ...]:
        return (u.category(cp), u.bidi(cp), u.idna(cp), u.ccc(cp), u.lower_cp.get(cp, cp) - cp,
                u.upper_cp.get(cp, cp) - cp, u.orbit.get(cp, cp) - cp)

    picked: list[int] = []
    for i, cp in enumerate(new):
        first = i == 0 or new[i - 1] != cp - 1 or props(new[i - 1]) != props(cp)
        last = i + 1 == len(new) or new[i + 1] != cp + 1 or props(new[i + 1]) != props(cp)
        if first or last:
            picked.append(cp)
    return lower, picked


def unicode_sweep() -> Config:
    """One config for the Unicode tables (`unicode_sweep_points`): per case-mapping code point,
    destinations `x<upper>@` and `x<Go's lower>@` (mox reports them as duplicates exactly when they
    are one address); per new code point a domain `x<cp>.example` (IDNA status and mapping, bidi,
    joining, marks, NFC, and how names are quoted in errors)."""
    lower, picked = unicode_sweep_points()
    c = golden("34")
    c.add(c.domains, ["Accounts", "alice", "Destinations"], [f"x{chr(cp)}@example.org: nil" for cp in lower])
    c.add(c.domains, ["Accounts", "bob", "Destinations"], [f"x{go_lower(chr(cp))}@example.org: nil" for cp in lower])
    c.add(c.domains, ["Domains"], [f"x{chr(cp)}.example: nil" for cp in picked])
    return c


# --- one run: mox's side submitted first, ours after

Verdict = tuple[bool, str]  # mox config test: accepted, output
VerdictJobs = list[tuple[Mutation, Path, Future[Verdict]]]
ConfigJob = tuple[Path, Future[Verdict]]
RegexpJob = tuple[list[str], Path, Future[Verdict]]
RecordsJobs = dict[bool, tuple[list[tuple[Path, str, RecordsCase]], Future[list[tuple[int, str, str]]]]]


class Run:
    """Writes configs under `root`, runs mox for them in `pool` at once, compares on request."""

    def __init__(self, mox: str, root: Path, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        self.mox, self.root, self.pool = mox, root, pool

    def submit_verdicts(self, mutations: Sequence[Mutation]) -> VerdictJobs:
        out = []
        for m in mutations:
            conf = m.config.write(self.root / m.name)
            out.append((m, conf, self.pool.submit(mox_config_test, self.mox, conf)))
        return out

    @staticmethod
    def verdict_outcomes(submitted: VerdictJobs) -> list[Outcome]:
        ours = [our_errors(conf) for _, conf, _ in submitted]
        return [Outcome(m, conf, mine, *fut.result()) for (m, conf, fut), mine in zip(submitted, ours, strict=True)]

    def submit_config(self, name: str, config: Config) -> ConfigJob:
        conf = config.write(self.root / name)
        return conf, self.pool.submit(mox_config_test, self.mox, conf)

    @staticmethod
    def config_outcome(submitted: ConfigJob) -> Comparison:
        """All error lines of one config, ours against mox's (as sets: mox's order is random)."""
        conf, fut = submitted
        ours = error_lines(our_errors(conf))
        theirs = error_lines(fut.result()[1])
        diffs = [f"ours only: {e[:300]}" for e in sorted(ours - theirs)]
        diffs += [f"mox only:  {e[:300]}" for e in sorted(theirs - ours)]
        return Comparison(len(ours | theirs), len(theirs), diffs)

    def submit_regexps(self, patterns: list[str]) -> RegexpJob:
        conf, fut = self.submit_config(f"regexps-{len(patterns)}", regexps.config(patterns))
        return patterns, conf, fut

    @staticmethod
    def regexp_outcome(submitted: RegexpJob) -> Comparison:
        """Per pattern: mox's error text (or none) against ours."""
        patterns, conf, fut = submitted
        ours = regexps.verdicts("\n".join(our_errors(conf)))
        output = fut.result()[1]
        theirs = regexps.verdicts(output)
        other = [ln for ln in error_lines(output) if "SMTPMailFrom regular expression" not in ln]
        diffs = [f"mox: {ln[:300]}" for ln in other]
        diffs += [f"#{i} {p[:100]!r}: ours {str(ours.get(i))[:200]!r}, mox {str(theirs.get(i))[:200]!r}"
                  for i, p in enumerate(patterns) if ours.get(i) != theirs.get(i)]
        return Comparison(len(patterns), len(theirs), diffs)

    def submit_records(self, cases: Sequence[RecordsCase]) -> RecordsJobs:
        jobs: dict[bool, list[tuple[Path, str, RecordsCase]]] = {False: [], True: []}
        for case in cases:
            conf = case.config.write(self.root / case.name)
            for domain, dnssec in case.queries:
                jobs[dnssec].append((conf, domain, case))
        return {dnssec: (js, self.pool.submit(moxdns.dnsrecords, self.mox, [(c, d) for c, d, _ in js], dnssec=dnssec))
                for dnssec, js in jobs.items()}

    @staticmethod
    def records_outcome(submitted: RecordsJobs) -> Comparison:
        """Per domain asked for: our exit code and output against mox's. A config mox refuses to
        load is only checked to be refused by us too (the verdict tests compare why)."""
        diffs = []
        refused = queries = 0
        for dnssec, (js, fut) in submitted.items():
            ours = [our_records(c, d, dnssec) for c, d, _ in js]
            for (conf, domain, case), mine, theirs in zip(js, ours, fut.result(), strict=True):
                queries += 1
                if theirs[0] != 0 and "config" in theirs[2]:
                    refused += 1
                    if our_errors(conf):
                        continue
                a, b = mine[1], theirs[1]
                if case.smtp_listeners > 1:
                    a, b = _spf_ips_sorted(a), _spf_ips_sorted(b)
                if (mine[0] == 0) != (theirs[0] == 0) or a != b:
                    line = next((f"{x!r} != {y!r}" for x, y in zip(a.splitlines(), b.splitlines(), strict=False)
                                 if x != y), f"exit {mine[0]} {mine[2].strip()[:200]!r} / "
                                             f"mox exit {theirs[0]} {theirs[2].strip()[-200:]!r}")
                    diffs.append(f"{case.name} {domain}{' (dnssec)' if dnssec else ''}: {line[:400]}")
        return Comparison(queries, refused, diffs)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=300,
                   help="domains.conf mutations (mox.conf: half as many; regexps: as many; records: a tenth)")
    p.add_argument("--only", choices=("domains", "static", "regexps", "records", "unicode"), help="one kind only")
    p.add_argument("--heavy", action="store_true",
                   help="regexps also just under Go's size and rune limits (mox compiles each for seconds)")
    p.add_argument("--keep", type=Path, help="write the configs here (default: a temporary directory)")
    args = p.parse_args(argv)
    mox = os.environ.get("MOX_BIN", "")
    if not mox:
        print("MOX_BIN is not set", file=sys.stderr)
        return 2
    wanted = {args.only} if args.only else {"domains", "static", "regexps", "records", "unicode"}
    if "records" in wanted and moxdns.unavailable():
        print(f"records skipped: {moxdns.unavailable()}", file=sys.stderr)
        wanted.discard("records")
    total = 0
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        run = Run(mox, args.keep or Path(tmp), pool)
        records = run.submit_records(records_cases(args.seed, max(1, args.count // 10))) if "records" in wanted else None
        rx = run.submit_regexps(regexps.patterns(args.seed, args.count, heavy=args.heavy)) if "regexps" in wanted else None
        uni = run.submit_config("unicode", unicode_sweep()) if "unicode" in wanted else None
        for label, muts in (("domains", domains_mutations(args.seed, args.count)),
                            ("static", static_mutations(args.seed, args.count // 2))):
            if label not in wanted:
                continue
            outcomes = Run.verdict_outcomes(run.submit_verdicts(muts))
            kinds = [o.kind() for o in outcomes]
            for o, k in zip(outcomes, kinds, strict=True):
                if k != "same":
                    print(f"{k:12} {o.describe()}")
            print(f"{label}: {len(outcomes)} mutations, mox accepts {sum(o.mox_ok for o in outcomes)}, "
                  f"{len(outcomes) - kinds.count('same')} verdicts differ: "
                  f"{kinds.count('deliberate')} deliberate, {kinds.count('fromid-order')} FromID order, "
                  f"{kinds.count('DIFFERENT')} not documented")
            total += kinds.count("DIFFERENT")
        for label, result in (("regexps", rx and Run.regexp_outcome(rx)), ("unicode", uni and Run.config_outcome(uni)),
                              ("records", records and Run.records_outcome(records))):
            if result:
                for d in result.differences:
                    print(f"DIFFERENT    {label}: {d}")
                print(f"{label}: {result.items} compared, mox refuses {result.refused}, "
                      f"{len(result.differences)} differ")
                total += len(result.differences)
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
