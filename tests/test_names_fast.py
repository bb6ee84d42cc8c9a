"""The shortcuts of `parse_address` and `parse_localpart` for plain `localpart@domain` give what
`_LocalpartParser` gives: the same address, or the same error."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.mox import names
from reconciler.mox.golang import go_quote
from reconciler.mox.names import Address, ParseError, parse_address, parse_localpart


def _outcome(f: Any, *args: Any) -> Any:
    try:
        return f(*args)
    except ParseError as e:
        return ("error", str(e))


_address_by_parser = names._parse_address_by_parser  # parse_address without its shortcut


def _address(s: str, pedantic: bool) -> Address:
    return parse_address(s, pedantic=pedantic)


def _localpart_by_parser(s: str, pedantic: bool) -> str:
    """parse_localpart without its shortcuts."""
    lp, rest = names._parse_localpart_prefix(s, pedantic)
    if rest:
        raise ParseError(f"invalid localpart: remaining after localpart: {go_quote(rest)}")
    return lp


_PLAIN = ["a@example.org", "A.b+c@Example.ORG", "x@café.example", "x@[1.2.3.4]", "x@1.2.3.4", "x@ex.org.",
          "a..b@x.org", ".a@x.org", "a.@x.org", '"a b"@x.org', '"a@b"', "a@", "@x.org", "é@x.org", "a@b@c.org",
          "x" * 64 + "@x.org", "x" * 65 + "@x.org", "x" * 128 + "@x.org", "x" * 129 + "@x.org", "a@x_y.org",
          "a b@x.org", "a\t@x.org", "user0@d0.example", "postmaster@d1.example"]
_CHARS = st.sampled_from([*'aZ09.@"\\ +-_é\t!~', "x" * 40])


@given(st.lists(_CHARS, max_size=12).map("".join) | st.sampled_from(_PLAIN), st.booleans())
@settings(max_examples=150, deadline=None)
def test_address_and_localpart_shortcuts_agree_with_the_parser(s: str, pedantic: bool) -> None:
    names._parse_address_cached.cache_clear()
    assert _outcome(_address, s, pedantic) == _outcome(_address_by_parser, s, pedantic)
    assert _outcome(parse_localpart, s, pedantic) == _outcome(_localpart_by_parser, s, pedantic)


def test_plain_addresses_take_the_shortcut() -> None:
    assert names._plain_address_localpart("A.b+c@Example.ORG", False) == "A.b+c"
    assert names._plain_address_localpart('"a"@x', False) is None
    assert names._plain_address_localpart("x" * 65 + "@x", True) is None
    for s in _PLAIN:
        for pedantic in (False, True):
            assert _outcome(_address, s, pedantic) == _outcome(_address_by_parser, s, pedantic)
            assert _outcome(parse_localpart, s, pedantic) == _outcome(_localpart_by_parser, s, pedantic)
