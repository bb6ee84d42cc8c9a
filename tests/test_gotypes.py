"""Go scalar syntax: durations, integers, floats, quoting as Go prints them."""

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
    go_quote,
    parse_duration,
    parse_float,
    parse_int,
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
