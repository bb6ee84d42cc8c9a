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
    parse_url,
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
    # Underscores between digits (a base prefix counts as a digit), as mox v0.0.17 accepts them.
    for ok, value in [("1_0", 10.0), ("0.9_5", 0.95), ("0x_1p-2", 0.25), ("0.1e1_0", 1e9), ("1_0e-1", 1.0)]:
        assert parse_float(ok) == value
    for bad in [" 1", "", "1e", "nan1", "_0.95", "0.95_", "0.9__5", "1e+_1", "0_x1p-2", "0x1.8", "-nan"]:
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


@pytest.mark.parametrize(("raw", "error"), [
    # Go 1.27's url.Parse, as mox v0.0.17 reports it for a webhook URL (checked with the real mox).
    ("http://a:1:2/", None),
    ("http://[::ffff:1.2.3.4]/", None),
    ("http://[fe80::1%25en0]/", None),
    ("http://a%80b/", None),
    ('http://a"b/', None),
    ("http://a@b@c/", None),
    ("http://[::1%25a%20b]/", None),
    ("http://[::1]:80:90/", 'invalid port ":80:90" after host'),
    ("http://x[y]/", "invalid IP-literal"),
    ("http://[1.2.3.4]/", "invalid IP-literal"),
    ("http://[fe80::1%en0]/", 'invalid URL escape "%en"'),
    ("http://[::1%25]/", 'invalid host: ParseAddr("::1%"): zone must be a non-empty string'),
    ("http://[01.2.3.4]/", 'invalid host: ParseAddr("01.2.3.4"): IPv4 field has octet with leading zero'),
    ("http://[::1]x/", 'invalid port "x" after host'),
    ("http://[::1/", "missing ']' in host"),
    ("http://a%41/", 'invalid URL escape "%41"'),
    ("http://a b/", 'invalid character " " in host name'),
    ("https://ex{ample.org/", 'invalid character "{" in host name'),
    ("https://ex\\ample.org/", 'invalid character "\\\\" in host name'),
    ("http://us er@a/", "net/url: invalid userinfo"),
    ("http://[::1%25%0A]/", 'invalid URL escape "%0A"'),
])
def test_url_parse_host_checks(raw: str, error: str | None) -> None:
    if error is None:
        parse_url(raw)
        return
    with pytest.raises(GoSyntaxError) as e:
        parse_url(raw)
    assert str(e.value) == f"parse {go_quote(raw.partition('#')[0])}: {error}"


def test_url_error_names_the_url_without_its_fragment() -> None:
    for raw, want in [("http://a b/#x", 'parse "http://a b/": invalid character " " in host name'),
                      ("https://example.org/#frag%zz", 'parse "https://example.org/#frag%zz": invalid URL escape "%zz"')]:
        with pytest.raises(GoSyntaxError) as e:
            parse_url(raw)
        assert str(e.value) == want
