"""Our verdicts next to the real mox v0.0.17's (`mox config test`) on seeded mutations of the
golden configs, and a sweep over the code points whose lower case Go and Python 3.11 disagree on.

Differences are allowed only where reconciler/mox/README.md says why ("Differences from mox"):
the kinds in `mutate.DELIBERATE`, and FromID login addresses whose verdict depends on the order
Go's map iteration happens to visit accounts in (mox accepts them on some runs only). Skips when
there is no mox v0.0.17 (tests/moxserver.py says why). Held-out seeds: `python -m tests.differential`.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import pytest

from reconciler.mox import unicode_tables
from reconciler.mox.golang import go_lower
from reconciler.mox.live import locate, read_live
from reconciler.mox.names import Address, parse_address
from reconciler.mox.validate import validate_dynamic

from . import moxserver
from .differential import Outcome, compare, describe, our_errors
from .mutate import domains_mutations, golden, static_mutations

SEED = 1  # the held-out seeds are 1000 and up (docs/differential.md)
DOMAIN_MUTATIONS = 160
STATIC_MUTATIONS = 80


def _fromid_order_dependent(o: Outcome, root: Path) -> bool:
    """mox accepted, we refused only FromID addresses that another account's address or catchall
    covers: mox accepts those when it happens to visit that account first."""
    if not o.mox_ok or not o.ours or not all("fromid login address" in e and "does not match" in e for e in o.ours):
        return False
    live = read_live(locate(str(root / o.mutation.name / "config" / "mox.conf")))
    index = validate_dynamic(live.static, live.dynamic, live.paths.config_dir).addresses
    for e in o.ours:
        addr = parse_address(e.split('"')[3])
        if "@" + addr.domain.name() in index:
            continue
        if not any(k.endswith("@" + addr.domain.name()) for k in index):
            return False
    return True


def _unexplained(outcomes: list[Outcome], root: Path) -> list[str]:
    return [describe(o) for o in outcomes
            if o.differs and not o.mutation.deliberate and not _fromid_order_dependent(o, root)]


@pytest.mark.slow
def test_domains_conf_mutations_have_mox_verdicts(tmp_path: Path) -> None:
    outcomes = compare(moxserver.mox_bin(), domains_mutations(SEED, DOMAIN_MUTATIONS), tmp_path)
    accepted = sum(o.mox_ok for o in outcomes)
    assert 0 < accepted < len(outcomes)  # both verdicts are exercised
    assert _unexplained(outcomes, tmp_path) == []


@pytest.mark.slow
def test_mox_conf_mutations_have_mox_verdicts(tmp_path: Path) -> None:
    outcomes = compare(moxserver.mox_bin(), static_mutations(SEED, STATIC_MUTATIONS), tmp_path)
    accepted = sum(o.mox_ok for o in outcomes)
    assert 0 < accepted < len(outcomes)
    assert _unexplained(outcomes, tmp_path) == []


def _case_sweep() -> list[int]:
    """Every code point whose Go lower case (our UCD tables) differs from Python 3.11's str.lower
    (not the stopgap mappings taken from the UTS #46 table, see unicode_tables.LOWER_FROM_IDNA)."""
    skip = {int(x, 16) for x in zlib.decompress(base64.b85decode(unicode_tables.LOWER_FROM_IDNA)).decode().split(";")}
    out = []
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        py = c.lower() if len(c.lower()) == 1 else c
        if go_lower(c) != py and cp not in skip:
            out.append(cp)
    return out


def test_case_mapping_sweep_matches_mox(tmp_path: Path) -> None:
    """For each such code point, `x<upper>@example.org` and `x<its Go lower case>@example.org` are
    one address to mox: it reports exactly the duplicates we report."""
    sweep = _case_sweep()
    assert {0xA7CB, 0x1C89, 0x10D50, 0xA7CC, 0xA7DA, 0xA7DC} <= set(sweep)  # the pairs of issue 16
    c = golden("34")
    c.add(c.domains, ["Accounts", "alice", "Destinations"], [f"x{chr(cp)}@example.org: nil" for cp in sweep])
    c.add(c.domains, ["Accounts", "bob", "Destinations"], [f"x{go_lower(chr(cp))}@example.org: nil" for cp in sweep])
    conf = c.write(tmp_path)
    verdict = moxserver.config_test(conf)
    ok, output = verdict.ok, verdict.output
    assert not ok
    theirs = sorted(line.split("duplicate canonicalized destination address ", 1)[1].strip()
                    for line in output.splitlines() if "duplicate canonicalized destination address" in line)
    ours = sorted(e.split("duplicate canonicalized destination address ", 1)[1]
                  for e in our_errors(conf) if "duplicate canonicalized destination address" in e)
    assert len(ours) == len(sweep)
    assert ours == theirs
    assert str(Address(go_lower("xꟋ"), parse_address("a@example.org").domain)) == "xɤ@example.org"
