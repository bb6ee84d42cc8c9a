"""Our results next to the real mox v0.0.17's, on cases the rest of the suite never wrote by hand.

- verdicts of `mox config test` on seeded mutations of the golden configs (domains.conf, mox.conf);
- regexps: Go's verdict and error text per pattern, for every Unicode name Go knows and seeded
  patterns around its grammar and its limits (one config, one mox run);
- the Unicode tables: case mapping and the code points new since Python's Unicode (one config);
- DNS records: `records --format mox` byte for byte against `mox config dnsrecords` for seeded
  configs (Unicode names and selectors, DKIM/DMARC/TLSRPT/MTA-STS/client settings, host keys,
  listeners), mox's DNSSEC lookup answered in a private network (tests/moxdns.py).

Each test submits mox's side to the module's pool of mox processes and computes ours while they
run. Differences are allowed only where reconciler/mox/README.md says why
("Differences from mox"): the kinds in `mutate.DELIBERATE`, and FromID login addresses whose verdict
depends on the order Go's map iteration visits accounts in. Skips when there is no mox v0.0.17
(tests/moxserver.py says why). Held-out seeds: `python -m tests.differential` (docs/differential.md).
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Iterator

import pytest

from reconciler.mox.golang import go_lower
from reconciler.mox.names import Address, parse_address

from . import moxdns, moxserver, regexps
from .differential import (
    WORKERS,
    ConfigJob,
    RecordsJobs,
    RegexpJob,
    Run,
    VerdictJobs,
    unicode_sweep,
    unicode_sweep_points,
)
from .mutate import domains_mutations, static_mutations
from .mutate_records import records_cases

SEED = 1  # the held-out seeds are 1000 and up (docs/differential.md)
DOMAIN_MUTATIONS = 160
STATIC_MUTATIONS = 80
REGEXPS = 250
RECORDS_CONFIGS = 12


class Started:
    """mox's side of each test, submitted to the module's pool of mox processes when the test first
    asks for it. Not all at once: pytest-xdist may run this module's tests in different workers,
    and each worker would start mox for every test."""

    def __init__(self, run: Run) -> None:
        self.run = run

    @functools.cached_property
    def domains(self) -> VerdictJobs:
        return self.run.submit_verdicts(domains_mutations(SEED, DOMAIN_MUTATIONS))

    @functools.cached_property
    def static(self) -> VerdictJobs:
        return self.run.submit_verdicts(static_mutations(SEED, STATIC_MUTATIONS))

    @functools.cached_property
    def regexps(self) -> RegexpJob:
        return self.run.submit_regexps(regexps.unicode_names() + regexps.patterns(SEED, REGEXPS))

    @functools.cached_property
    def unicode(self) -> ConfigJob:
        return self.run.submit_config("unicode", unicode_sweep())

    @functools.cached_property
    def records(self) -> RecordsJobs:
        return self.run.submit_records(records_cases(SEED, RECORDS_CONFIGS))


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """The module's pool of mox processes (cancelled when the module ends)."""
    mox = moxserver.mox_bin()
    pool = concurrent.futures.ThreadPoolExecutor(WORKERS)
    try:
        yield Started(Run(mox, tmp_path_factory.mktemp("differential"), pool))
    finally:
        pool.shutdown(cancel_futures=True)


@pytest.mark.slow
def test_domains_conf_mutations_have_mox_verdicts(started: Started) -> None:
    outcomes = Run.verdict_outcomes(started.domains)
    assert 0 < sum(o.mox_ok for o in outcomes) < len(outcomes)  # both verdicts are exercised
    assert [o.describe() for o in outcomes if o.kind() == "DIFFERENT"] == []


@pytest.mark.slow
def test_mox_conf_mutations_have_mox_verdicts(started: Started) -> None:
    outcomes = Run.verdict_outcomes(started.static)
    assert 0 < sum(o.mox_ok for o in outcomes) < len(outcomes)
    assert [o.describe() for o in outcomes if o.kind() == "DIFFERENT"] == []


@pytest.mark.slow
def test_regexps_have_go_verdicts_and_error_texts(started: Started) -> None:
    """Every \\p{...} name Go 1.27 knows (Unicode 17 scripts included) and seeded patterns:
    for each, mox's error text (or none) is ours."""
    result = Run.regexp_outcome(started.regexps)
    assert 0 < result.refused < result.items
    assert result.differences == []


@pytest.mark.slow
def test_unicode_tables_match_mox(started: Started) -> None:
    """Case pairs that Python 3.11 does not know are one address to mox as to us (the pairs of
    issue 16 among them), and the code points new since Unicode 14 get the same verdict and
    message as names: all of mox's errors are ours and no more."""
    lower, new = unicode_sweep_points()
    assert {0xA7CB, 0x1C89, 0x10D50, 0xA7CC, 0xA7DA, 0xA7DC} <= set(lower)
    assert len(new) > 300
    result = Run.config_outcome(started.unicode)
    assert result.refused > len(lower)  # every pair is a duplicate, and some names are refused
    assert result.differences == []
    assert str(Address(go_lower("xꟋ"), parse_address("a@example.org").domain)) == "xɤ@example.org"


@pytest.mark.slow
def test_records_match_mox_dnsrecords(started: Started) -> None:
    if moxdns.unavailable():
        pytest.skip(moxdns.unavailable())
    result = Run.records_outcome(started.records)
    assert result.items >= 3 * RECORDS_CONFIGS and result.refused == 0  # every config is one mox loads
    assert result.differences == []
