"""sconf's fast reader (`sconf._parse_fast`) against the port of sconf's parser (`sconf._Parser`):
for every file, the fast reader gives the parser's value or gives up (`_Fallback`), and `parse`
(fast first, the parser when it gives up) gives the parser's value or its exact error."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.mox import sconf
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.golang import Duration
from reconciler.mox.sconf import SconfError, kind_of

from .conftest import FIXTURES, GOLDEN, GOLDEN_STEPS
from .test_sconf import _strategy

GOLDEN_FILES = [(s / "domains.conf", Dynamic) for s in GOLDEN_STEPS] + [
    (GOLDEN / "instance" / "config" / "mox.conf", Static)]


def _slow(text: str, cls: type) -> Any:
    """What the port of sconf's parser says: a value, or ("error", line, message)."""
    p = sconf._Parser(text)
    try:
        return p.parse_struct0(kind_of(cls))
    except sconf._Stop as e:
        return ("error", p.linenumber, e.message)


def _public(text: str, cls: type) -> Any:
    try:
        return sconf.parse(text, cls, "f")
    except SconfError as e:
        return ("error", e.line, e.message)


def _fast(text: str, cls: type) -> Any:
    try:
        return sconf._parse_fast(text, kind_of(cls))
    except sconf._Fallback:
        return None


def _agree(text: str, cls: type) -> bool:
    """Both readers agree (asserted); True when the fast one read the file itself."""
    slow = _slow(text, cls)
    assert _public(text, cls) == slow
    fast = _fast(text, cls)
    if fast is not None:
        assert fast == slow
        assert _typed(fast) == _typed(slow)
        assert sconf.write(fast) == sconf.write(slow)
    return fast is not None


def _typed(v: Any) -> Any:
    """`v` with the type of every value in it (10, 10.0 and Duration(10) are equal values)."""
    if dataclasses.is_dataclass(v):
        return (type(v), tuple(_typed(getattr(v, f.name)) for f in dataclasses.fields(v)))
    if isinstance(v, dict):
        return (dict, tuple((k, _typed(x)) for k, x in v.items()))
    if isinstance(v, tuple):
        return (tuple, tuple(_typed(x) for x in v))
    return (type(v), v)


def test_the_same_text_is_each_field_s_type() -> None:
    """One text as an int, a float, a duration and a bool in one file, repeated: each read as
    its field's type (the fast reader keeps the scalars it read by their text and type)."""
    text = ("Domains:\n\tx.example: nil\nAccounts:\n"
            + "".join(f"\t{a}:\n\t\tDomain: x.example\n\t\tQuotaMessageSize: {n}\n\t\tKeepRejects: true\n"
                      f"\t\tKeepRetiredMessagePeriod: {n}\n\t\tJunkFilter:\n\t\t\tThreshold: {n}\n"
                      f"\t\t\tParams:\n\t\t\t\tMaxPower: {n}\n\t\t\t\tTopWords: {n}\n"
                      for a, n in (("a", "0"), ("b", "0"), ("c", "1"), ("d", "0")) if n == "0" or a == "c")
            .replace("KeepRetiredMessagePeriod: 1\n", "KeepRetiredMessagePeriod: 1s\n"))
    assert _agree(text, Dynamic)
    acc = sconf.parse(text, Dynamic).Accounts["b"]
    assert acc.JunkFilter is not None
    assert [type(x) for x in (acc.QuotaMessageSize, acc.KeepRetiredMessagePeriod, acc.JunkFilter.Threshold,
                              acc.JunkFilter.Params.MaxPower)] == [int, Duration, float, float]


@pytest.mark.parametrize(("path", "cls"), GOLDEN_FILES, ids=lambda x: x.parent.name if isinstance(x, Path) else x.__name__)
def test_golden_files_read_fast_to_the_same_value(path: Path, cls: type) -> None:
    assert _agree(path.read_text(), cls)  # a file mox wrote takes the fast way


_ODD = [
    "Domains:\n\tx.example: nil\nAccounts:\n\ta:\n\t\tDomain: x.example\n\t\tDestinations:\n\t\t\ta@x.example: nil\n",
    "# a comment\n\nDomains:\n\t\t# indented comment\n\tx.example:\n\t\tDKIM:\n\t\t\tSelectors:\n"
    "\t\t\t\ts:\n\t\t\t\t\tPrivateKeyFile: k # not a comment\nAccounts:\n\ta:\n\t\tDomain: x.example\n"
    "\t\tDestinations:\n\t\t\t a@x: nil\n",  # a map key starting with a space: the parser's way
    "Domains:\n\tx:\n\t\t\tDKIM:\nAccounts:\n\ta: nil\n",  # too deep
    "Domains: x\nAccounts:\n\ta: nil\n",  # a value after a map's key
    "Domains:\nAccounts:\n\ta: nil\n",  # expected indent
    "Domains:\n\tx: nil\nAccounts:\n\ta:\n\t\tDomain: d\n\t\tDomain: d\n",  # duplicate key
    "Domains:\n\tx: nil\nAccounts:\n\ta:\n\t\tKeepRejects:true\n",  # no space after the colon
    "Domains:\n\tx: nil\nAccounts:\n\ta:\n\t\tKeepRejects: yes\n",
    "Domains:\n\tx:\n\t\tDKIM:\n\t\t\tSign:\n\t\t\t\t-a\n\t\t\t\t- \nAccounts:\n\ta: nil\n",
    "Domains:\n\tx:\n\t\tDKIM:\n\t\t\tSign:\n\t\t\t\t- a\n\t\t\t\tb\nAccounts:\n\ta: nil\n",
    "Domains:\n\tx: nil\nAccounts:\n\ta: nil\n\t \n",  # stray whitespace
    "Domains:\n\tx: nil\nAccounts:\n\ta: nil\nUnknown: 1\n",
    "Domains:\n\tx: nil\nAccounts:\n\ta:\n\t\tJunkFilter:\n\t\t\tThreshold: x\n",
    "Domains:\n\tx: nil\n",  # a required key missing
    "",
]


@pytest.mark.parametrize("text", _ODD)
def test_odd_files_give_the_parsers_value_or_error(text: str) -> None:
    _agree(text, Dynamic)


def _mutations(text: str, rng: random.Random, n: int) -> list[str]:
    lines = text.split("\n")
    out = []
    pieces = ["\t", " ", ":", ": ", "#", "-", "- ", "nil", "x", "\n", "true", "1.5", "\t\t"]
    for _ in range(n):
        ls = list(lines)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(ls))
            how = rng.randrange(6)
            if how == 0:
                del ls[i]
            elif how == 1:
                ls.insert(i, ls[rng.randrange(len(ls))])
            elif how == 2 and ls[i]:
                j = rng.randrange(len(ls[i]))
                ls[i] = ls[i][:j] + ls[i][j + 1 :]
            elif how == 3:
                j = rng.randrange(len(ls[i]) + 1)
                ls[i] = ls[i][:j] + rng.choice(pieces) + ls[i][j:]
            elif how == 4:
                ls[i] = "\t" + ls[i]
            else:
                ls[i] = ls[i].removeprefix("\t")
        out.append("\n".join(ls))
    return out


@pytest.mark.parametrize(("path", "cls"), GOLDEN_FILES, ids=lambda x: x.parent.name if isinstance(x, Path) else x.__name__)
def test_mutated_golden_files_give_the_parsers_value_or_error(path: Path, cls: type) -> None:
    rng = random.Random(path.parent.name)
    fast = sum(_agree(text, cls) for text in _mutations(path.read_text(), rng, 60))
    assert fast < 60  # the parser said why for some


def test_mutated_test_fixtures_give_the_parsers_value_or_error() -> None:
    files = sorted(p for p in FIXTURES.rglob("domains.conf") if p.is_file())[:20]
    assert files
    rng = random.Random(7)
    for path in files:
        for text in _mutations(path.read_text(errors="surrogateescape"), rng, 10):
            _agree(text, Dynamic)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_strategy(kind_of(Dynamic)), st.randoms(use_true_random=False))
def test_random_configs_read_fast_to_the_same_value(cfg: Dynamic, rng: random.Random) -> None:
    text = sconf.write(cfg)
    _agree(text, Dynamic)
    for mutated in _mutations(text, rng, 5):
        _agree(mutated, Dynamic)
