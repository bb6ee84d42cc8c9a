"""The desired-state checks find white space and control characters with patterns: the same
characters as `str.isspace` and `ord(c) < 0x20 or ord(c) == 0x7F`, over every code point."""

from __future__ import annotations

from reconciler.desired import checks


def test_patterns_match_exactly_the_characters_of_the_rules() -> None:
    chars = [chr(i) for i in range(0x110000)]
    assert [c for c in chars if bool(checks._SPACE.search(c)) != c.isspace()] == []
    assert [c for c in chars if bool(checks._CONTROL.search(c)) != (ord(c) < 0x20 or ord(c) == 0x7F)] == []
