"""Go 1.27's regexp.Compile verdicts and messages (reconciler/mox/goregexp.py), and the Unicode 17
tables under them. Every expected text here is what the real mox v0.0.17 printed for the pattern
(tests/test_mox_differential.py compares hundreds more against mox itself)."""

from __future__ import annotations

import pytest

from reconciler.mox import goregexp
from reconciler.mox.golang import go_lower, is_print, nfc, regexp_compile_error, unicode_data


def err(code: str, expr: str) -> str:
    return f"error parsing regexp: {code}: `{expr}`"


ACCEPTED = [
    r"[\d-z]", r"\p{Old_Italic}", r"\p{old italic}", r"\p{OLD-ITALIC}", r"\p{ L}", r"\pl", r"\p{Lc}", r"\p{cn}",
    r"\p{Assigned}", r"\p{any}", r"\p{Cased_Letter}", r"\p{digit}", r"\p{punct}", r"\p{Garay}", r"\p{Sidetic}",
    r"\p{Tolong_Siki}", r"\p{Beria_Erfe}", r"\p{Tai_Yo}", r"\P{^Greek}", r"(?P<n>a)(?P<n>b)", "(?i)K\u212a",
    "[]a]", "[^]a]", "a{,5}", "x{1000,}", "(?ii)", "(?smU-i:a)", r"\08", r"\Q\E", r"\Qab", "[[:word]",
    "()+", "(|)*", "(?:)*", "(?:abcdefghij){1000}", "(?:(?:a{10}){10}){10}",
    "(" * 999 + "a" + ")" * 999, "(?:" * 1001 + "a" + ")" * 1001,  # a non-capturing group is no node
    "(?:" * 998 + "a" + ")*" * 998,
]

REFUSED = [
    (r"\C", err("invalid escape sequence", r"\C")),
    ("x\\", err("trailing backslash at end of expression", "")),
    ("(?P<n>", err("missing closing )", "(?P<n>")),
    (")", err("unexpected )", ")")),
    (r"[a-\d]", err("invalid escape sequence", r"\d")),
    (r"\p", err("invalid character class range", r"\p")),
    (r"\p{Latn}", err("invalid character class range", r"\p{Latn}")),
    (r"\p{Unknown}", err("invalid character class range", r"\p{Unknown}")),
    (r"\p{White_Space}", err("invalid character class range", r"\p{White_Space}")),
    (r"\p{Greek", err("invalid character class range", r"\p{Greek")),
    ("\\p{Gree\u212a}", err("invalid character class range", "\\p{Gree\u212a}")),  # case folding is ASCII only
    ("x{2}{3}", err("invalid nested repetition operator", "{2}{3}")),
    ("x**", err("invalid nested repetition operator", "**")),
    ("é*+", err("invalid nested repetition operator", "*+")),
    ("a|*", err("missing argument to repetition operator", "*")),
    ("a{1001}", err("invalid repeat count", "{1001}")),
    ("x{2,1}", err("invalid repeat count", "{2,1}")),
    ("(?:(?:a{10}){10}){11}", err("invalid repeat count", "{11}")),
    ("(?:a{0}){1001}", err("invalid repeat count", "{1001}")),
    ("(?<=a)", err("invalid named capture", "(?<=a)")),
    ("(?P<é>a)", err("invalid named capture", "(?P<é>")),
    ("(?P<>x)", err("invalid named capture", "(?P<>")),
    ("(?P=a)", err("invalid or unsupported Perl syntax", "(?P")),
    ("(?--i)", err("invalid or unsupported Perl syntax", "(?--")),
    ("(?#c)", err("invalid or unsupported Perl syntax", "(?#")),
    (r"\x{110000}", err("invalid escape sequence", r"\x{110000")),
    (r"\x{}", err("invalid escape sequence", r"\x{}")),
    (r"\18", err("invalid escape sequence", r"\1")),
    (r"[\b]", err("invalid escape sequence", r"\b")),
    ("[z-a]", err("invalid character class range", "z-a")),
    ("[[:wor:]]", err("invalid character class range", "[:wor:]")),
    ("[]", err("missing closing ]", "[]")),
    ("\udcff", err("invalid UTF-8", "\udcff")),  # an undecodable byte of the config file
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_go_accepts(pattern: str) -> None:
    assert regexp_compile_error(pattern) is None


@pytest.mark.parametrize(("pattern", "message"), REFUSED)
def test_go_refuses_with_its_message(pattern: str, message: str) -> None:
    assert regexp_compile_error(pattern) == message


@pytest.mark.parametrize(("pattern", "refused"), [
    ("(" * 1000 + "a" + ")" * 1000, True),  # 1000 captures and the literal: height 1001
    ("(?:" * 999 + "a" + ")*" * 999, False),  # every node counts, stars too
    ("(?:" * 1000 + "a" + ")*" * 1000, True),
])
def test_nesting_limit_counts_every_node(pattern: str, refused: bool) -> None:
    error = regexp_compile_error(pattern)
    assert (error == err("expression nests too deeply", pattern)) is refused
    assert refused or error is None


@pytest.mark.parametrize(("pattern", "refused"), [
    ("(?:" + "ab" * 1677 + "a){1000}", False),  # 3,355,000 instructions
    ("(?:" + "ab" * 1678 + "){1000}", True),  # 3,356,000 > 3,355,443
    ("(?:" + "[ab]" * 3355 + "){1000}", False),  # a class is one instruction
    ("(?:" + "[ab]" * 3356 + "){1000}", True),
    ("(?:" + "a*" * 1118 + "){1000}", False),  # a star is three
    ("(?:" + "a*" * 1119 + "){1000}", True),
])
def test_size_limit_as_go_counts_instructions(pattern: str, refused: bool) -> None:
    error = regexp_compile_error(pattern)
    assert error == (err("expression too large", pattern) if refused else None)


def test_rune_limit_counts_class_ranges() -> None:
    """\\pL is 684 ranges in Unicode 17 (1,368 runes): 24,528 of them fit in Go's 33,554,432."""
    assert goregexp.compile_error(r"\pL" * 24528) is None
    assert goregexp.compile_error(r"\pL" * 24529) == err("expression too large", r"\pL" * 24529)


def test_unicode_17_tables() -> None:
    u = unicode_data()
    assert {"Sidetic", "Tolong_Siki", "Beria_Erfe", "Tai_Yo", "Garay", "Todhri"} <= u.scripts
    assert "Unknown" not in u.scripts  # the default value, not a script Go lists
    assert u.category(0x10940) == "Lo"  # SIDETIC LETTER N01 (new in 17.0)
    assert u.category(0x0295) == "Lo"  # ʕ, Ll until Unicode 16
    assert is_print("\U00010940") and not is_print("\U0001095f")
    assert go_lower("\ua7cb") == "\u0264" and go_lower("\U00010d50") == "\U00010d70"
    assert go_lower("\ua7dc") == "\u019b"
    assert nfc("\U00016d67\U00016d67") == "\U00016d68"  # Kirat Rai (Unicode 16) composes


@pytest.mark.parametrize(("r", "folded"), [
    (ord("A"), ord("a")), (ord("a"), ord("A")), (ord("K"), ord("k")), (ord("k"), 0x212A), (0x212A, ord("K")),
    (ord("1"), ord("1")), (0x130, 0x130), (0x131, 0x131), (0x1C4, 0x1C5), (0x1C5, 0x1C6), (0x1C6, 0x1C4),
    (0xA7CB, 0x264), (0x264, 0xA7CB),
])
def test_simple_fold_orbits(r: int, folded: int) -> None:
    """unicode.SimpleFold: the next code point of the case folding orbit (Go's documented examples)."""
    assert unicode_data().simple_fold(r) == folded
