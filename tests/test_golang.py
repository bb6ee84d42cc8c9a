"""Go behaviour as mox relies on it: durations, integers, floats, quoting, case mapping, fmt."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.mox.golang import (
    Duration,
    GoSyntaxError,
    format_duration,
    format_float,
    go_lower,
    go_quote,
    parse_duration,
    parse_float,
    parse_int,
    sprintf_noargs,
)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (500_000_000, "500ms"),
        (1_500_000_000, "1.5s"),
        (90_000_000_000, "1m30s"),
        (12 * 3600 * 10**9, "12h0m0s"),
        (72 * 3600 * 10**9, "72h0m0s"),
        (-(10**9), "-1s"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
    ],
)
def test_format_duration_matches_go(ns: int, text: str) -> None:
    assert format_duration(ns) == text
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "ns"),
    [("72h", 72 * 3600 * 10**9), ("1.5h", 5_400_000_000_000), ("0", 0), ("+5m", 300 * 10**9),
     ("1h1m1s1ms1us1ns", 3_661_001_001_001), (".5s", 500_000_000), ("1.s", 10**9), ("3μs", 3000)],
)
def test_parse_duration_accepts_go_grammar(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3d", 'time: unknown unit "d" in duration "3d"'),
        ("10", 'time: missing unit in duration "10"'),
        (".s", 'time: invalid duration ".s"'),
        ("1h 2m", 'time: unknown unit "h " in duration "1h 2m"'),
        ("9999999999999h", 'time: invalid duration "9999999999999h"'),
    ],
)
def test_parse_duration_rejects_like_go(text: str, message: str) -> None:
    with pytest.raises(GoSyntaxError) as exc:
        parse_duration(text)
    assert str(exc.value) == message


@given(st.integers(min_value=-(1 << 63) + 1, max_value=(1 << 63) - 1))
def test_duration_round_trip(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns


def test_int_is_strict() -> None:
    assert parse_int("-3") == -3
    assert parse_int("+7") == 7
    for bad in ["1_000", " 1", "0x10", "", "1.0"]:
        with pytest.raises(GoSyntaxError, match="invalid syntax"):
            parse_int(bad)
    with pytest.raises(GoSyntaxError, match="value out of range"):
        parse_int(str(1 << 63))


def test_float_follows_go() -> None:
    assert parse_float("0.95") == 0.95
    assert parse_float("1e-7") == 1e-7
    assert parse_float("Inf") == math.inf
    assert parse_float("-infinity") == -math.inf
    assert math.isnan(parse_float("NaN"))
    assert parse_float("0x1p-2") == 0.25
    for bad in ["1_0", " 1", "", "1e", "nan1"]:
        with pytest.raises(GoSyntaxError, match="invalid syntax"):
            parse_float(bad)
    with pytest.raises(GoSyntaxError, match="out of range"):
        parse_float("1e400")
    assert format_float(0.95) == "0.950000"
    assert format_float(1e-7) == "0.000000"
    assert format_float(math.inf) == "+Inf"
    assert format_float(math.nan) == "NaN"


def test_go_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\t\n") == '"\\t\\n"'
    assert go_quote("café") == '"café"'
    assert go_quote("\ufeffx") == '"\\ufeffx"'
    assert go_quote("\x00") == '"\\x00"'


def test_duration_repr_and_str() -> None:
    assert str(Duration(3600 * 10**9)) == "1h0m0s"
    assert repr(Duration(10**9)) == "Duration('1s')"


# --------------------------------------------------------------------------
# strings.ToLower, strconv.Quote


def test_go_lower_simple_case_mapping() -> None:
    assert go_lower("İ") == "i"
    assert "İ".lower() != "i"  # the reason go_lower exists
    assert go_lower("ΟΔΟΣ") == "οδοσ"  # word-final sigma stays σ, not ς
    assert "ΟΔΟΣ".lower() == "οδος"
    assert go_lower("ΣΑ Σ") == "σα σ"
    assert go_lower("Ab.C-D") == "ab.c-d"
    assert go_lower("ÀÉÎ") == "àéî"
    assert go_lower("ǅ") == "ǆ"  # title-case letter
    assert go_lower("straße") == "straße"


@given(st.text())
def test_go_lower_keeps_length(s: str) -> None:
    assert len(go_lower(s)) == len(s)


@pytest.mark.parametrize(
    ("given_text", "quoted"),
    [
        ("", '""'),
        ("abc", '"abc"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("\n\t\r", '"\\n\\t\\r"'),
        ("\a\b\f\v", '"\\a\\b\\f\\v"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("é ü", '"é ü"'),
        ("\u00a0", '"\\u00a0"'),
        ("\u200b", '"\\u200b"'),
        ("😀", '"😀"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("\udcff", '"\\xff"'),
    ],
)
def test_go_quote_table(given_text: str, quoted: str) -> None:
    assert go_quote(given_text) == quoted


def test_sprintf_noargs() -> None:
    assert sprintf_noargs("a %% b") == "a % b"
    assert sprintf_noargs("x%d y%-5.2f z%") == "x%!d(MISSING) y%!f(MISSING) z%!(NOVERB)"
    assert sprintf_noargs("plain") == "plain"
