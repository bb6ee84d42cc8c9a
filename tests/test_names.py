"""Tests for reconciler.mox.names: mox's domain, localpart, address and mailbox name rules."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.mox import golang
from reconciler.mox.golang import nfc
from reconciler.mox.names import (
    Address,
    Domain,
    ParseError,
    canonical_localpart,
    check_mailbox_name,
    check_mailbox_nfc,
    is_international_localpart,
    localpart_string,
    parse_address,
    parse_domain,
    parse_localpart,
)

# --------------------------------------------------------------------------
# Domains


@pytest.mark.parametrize(
    ("given_name", "ascii_name", "unicode_name"),
    [
        ("Example.COM", "example.com", ""),
        ("example.com", "example.com", ""),
        ("münchen.DE", "xn--mnchen-3ya.de", "münchen.de"),
        ("ⓡ.com", "r.com", ""),
        ("Ⓡ.COM", "r.com", ""),
        ("faß.de", "xn--fa-hia.de", "faß.de"),
        ("xn--caf-dma.example", "xn--caf-dma.example", "café.example"),
        ("XN--CAF-DMA.EXAMPLE", "xn--caf-dma.example", "café.example"),
        ("a--b.example", "a--b.example", ""),
        ("1.2.3", "1.2.3", ""),
        ("01.2.3.4", "01.2.3.4", ""),  # leading zero: not an IP for Go either
        ("", "", ""),  # mox's ParseDomain accepts the empty string
    ],
)
def test_parse_domain_ok(given_name: str, ascii_name: str, unicode_name: str) -> None:
    d = parse_domain(given_name)
    assert d == Domain(ascii_name, unicode_name)
    assert d.name() == (unicode_name or ascii_name)
    assert str(d) == d.name()


def test_domain_forms() -> None:
    d = parse_domain("münchen.de")
    assert d.name() == "münchen.de"
    assert d.xname(False) == "xn--mnchen-3ya.de"
    assert d.xname(True) == "münchen.de"
    assert d.log_string() == "münchen.de/xn--mnchen-3ya.de"
    assert parse_domain("a.example").log_string() == "a.example"
    assert parse_domain("").is_zero()
    assert not parse_domain("a.example").is_zero()


@pytest.mark.parametrize(
    ("given_name", "message"),
    [
        ("example.com.", "dns name has trailing dot"),
        ("1.2.3.4", "ip address while name required"),
        ("::1", "ip address while name required"),
        ("2001:db8::1", "ip address while name required"),
        ("::ffff:1.2.3.4", "ip address while name required"),
        ("a_b.example", "idna: to ascii: idna: disallowed rune U+005F"),
        ("_dmarc.example", "idna: to ascii: idna: disallowed rune U+005F"),
        ("fe80::1%eth0", "idna: to ascii: idna: disallowed rune U+003A"),  # zones: no IP for Go
        ("-a.example", 'idna: to ascii: idna: invalid label "-a"'),
        ("-A.example", 'idna: to ascii: idna: invalid label "-a"'),
        ("a-.example", 'idna: to ascii: idna: invalid label "a-"'),
        ("ab--c.example", 'idna: to ascii: idna: invalid label "ab--c"'),
        ("ü-.de", 'idna: to ascii: idna: invalid label "ü-"'),
        ("\u0301a.example", 'idna: to ascii: idna: invalid label "\u0301a"'),
        ("a\u200db.example", 'idna: to ascii: idna: invalid label "a\\u200db"'),
        ("xn--zz.example", 'idna: to ascii: idna: invalid label "zz"'),  # Go names the punycode part
        ("\u05d0a.example", 'idna: to ascii: idna: invalid label "\u05d0a.example"'),
    ],
)
def test_parse_domain_errors(given_name: str, message: str) -> None:
    with pytest.raises(ParseError) as exc_info:
        parse_domain(given_name)
    assert str(exc_info.value) == message
    assert isinstance(exc_info.value, ValueError)


@pytest.mark.parametrize("given_name", ["a..b", ".a", "a." + "b" * 64, ("a" * 60 + ".") * 5 + "com"])
def test_parse_domain_stricter_than_go(given_name: str) -> None:
    # Go's idna.Lookup accepts these (no DNS length checks); we refuse them.
    with pytest.raises(ParseError, match=r"^idna: to ascii: idna: (empty label|label|domain name)"):
        parse_domain(given_name)


@pytest.mark.parametrize(
    "given_name",
    [
        "example.com",
        "Mail.Example.COM",
        "a-b.c-d.example",
        "x" * 63 + ".example",
        "0.example",
        "a1.b2.c3",
        ("a" * 50 + ".") * 4 + "com",
    ],
)
def test_parse_domain_fast_path_agrees_with_idna(given_name: str) -> None:
    assert parse_domain(given_name) == Domain(_full_path(given_name), "")


def _full_path(s: str) -> str:
    """The port of x/net/idna without the ASCII fast path (raises IDNAError like parse_domain)."""
    saved = golang._FAST_DOMAIN_RE
    golang._FAST_DOMAIN_RE = re.compile(r"(?!)")
    try:
        return golang.idna_lookup(s)[0]
    finally:
        golang._FAST_DOMAIN_RE = saved


@given(st.text(alphabet="abcXYZ019-.", min_size=1, max_size=30))
def test_parse_domain_matches_idna_on_ascii(s: str) -> None:
    """Fast path or not, the result equals the full port's."""
    try:
        expected: Domain | None = Domain(_full_path(s), "")
    except golang.IDNAError:
        expected = None
    if s.endswith("."):
        expected = None
    try:
        got: Domain | None = parse_domain(s)
    except ParseError:
        got = None
    assert got == expected


# --------------------------------------------------------------------------
# Mailbox names


def test_mailbox_name_inbox_is_ascii_case_insensitive_only() -> None:
    """config.CheckMailboxName compares with strings.EqualFold: only ASCII letters fold to "inbox"
    (Go's simple folding has no mapping from İ or ı to i), so "İnbox" is an ordinary mailbox."""
    assert check_mailbox_name("INBOX", False) == ("", "special mailbox name Inbox not allowed")
    assert check_mailbox_name("iNbOx/Sub", False) == ("Inbox/Sub", None)
    assert check_mailbox_name("INBOX", True) == ("Inbox", None)
    assert check_mailbox_name("İnbox", False) == ("İnbox", None)
    assert check_mailbox_name("ınbox/x", False) == ("ınbox/x", None)


def test_nfc_and_mailbox_check() -> None:
    decomposed = "Inbox/cafe\u0301"
    assert nfc(decomposed) == "Inbox/café"
    assert nfc("plain") == "plain"
    assert check_mailbox_nfc("postmaster mailbox", "Inbox") is None
    assert check_mailbox_nfc("postmaster mailbox", "Café") is None
    assert (
        check_mailbox_nfc("postmaster mailbox", decomposed)
        == 'postmaster mailbox: mailbox "Inbox/cafe\u0301" is not in NFC normalized form, '
        'should be "Inbox/café"'
    )


# --------------------------------------------------------------------------
# Localparts


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("user", "user"),
        ("User.Name", "User.Name"),
        ("a+tag", "a+tag"),
        ("!#$%&'*+-/=?^_`{|}~", "!#$%&'*+-/=?^_`{|}~"),
        ("jürgen", "jürgen"),
        ("\u0080", "\u0080"),
        ('"a b"', "a b"),
        ('"a\\"b"', 'a"b'),
        ('"a\\\\b"', "a\\b"),
        ('"\\a"', "a"),
        ('""', ""),
        ('"a..b"', "a..b"),
        ('"jür gen"', "jür gen"),
        ("cafe\u0301", "café"),  # NFC-normalized
        ('"cafe\u0301"', "café"),
        ("x" * 128, "x" * 128),
    ],
)
def test_parse_localpart_ok(encoded: str, decoded: str) -> None:
    assert parse_localpart(encoded) == decoded


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("", "invalid localpart: need at least one char for atom"),
        ("a.", "invalid localpart: need at least one char for atom"),
        (".a", "invalid localpart: expected at least one char for atom, got char ."),
        ("a..b", "invalid localpart: expected at least one char for atom, got char ."),
        ("a b", 'invalid localpart: remaining after localpart: " b"'),
        ("a@b", 'invalid localpart: remaining after localpart: "@b"'),
        ('"a"b', 'invalid localpart: remaining after localpart: "b"'),
        ("(a)", "invalid localpart: expected at least one char for atom, got char ("),
        ('"abc', "invalid localpart: need another character"),
        ('"abc\\', "invalid localpart: need another character"),
        ('"a\x01"', "invalid localpart: invalid localpart, invalid character \x01"),
        ('"a\x7f"', "invalid localpart: invalid localpart, invalid character \x7f"),
        ('"\\é"', "invalid localpart: invalid localpart, bad escaped char é"),
        ('"\\\n"', "invalid localpart: invalid localpart, bad escaped char \n"),
        ("x" * 129, "invalid localpart: localpart longer than 64 octets"),
        ("é" * 65, "invalid localpart: localpart longer than 64 octets"),  # 130 octets
    ],
)
def test_parse_localpart_errors(encoded: str, message: str) -> None:
    with pytest.raises(ParseError) as exc_info:
        parse_localpart(encoded)
    assert str(exc_info.value) == message


def test_parse_localpart_pedantic_limit() -> None:
    assert parse_localpart("x" * 65) == "x" * 65
    with pytest.raises(ParseError, match="localpart longer than 64 octets"):
        parse_localpart("x" * 65, pedantic=True)
    assert parse_localpart("x" * 64, pedantic=True) == "x" * 64
    # The limit counts octets of the unquoted localpart, before NFC.
    assert parse_localpart('"' + "\\x" * 64 + '"', pedantic=True) == "x" * 64
    with pytest.raises(ParseError):
        parse_localpart("é" * 33, pedantic=True)


@pytest.mark.parametrize(
    ("decoded", "encoded"),
    [
        ("user", "user"),
        ("a.b", "a.b"),
        ("jürgen", "jürgen"),
        ("", '""'),
        ("a b", '"a b"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        (".a", '".a"'),
        ("a.", '"a."'),
        ("a..b", '"a..b"'),
        ("a@b", '"a@b"'),
        ("a,b", '"a,b"'),
    ],
)
def test_localpart_string(decoded: str, encoded: str) -> None:
    assert localpart_string(decoded) == encoded
    assert parse_localpart(encoded) == decoded


def test_is_international_localpart() -> None:
    assert is_international_localpart("jürgen")
    assert not is_international_localpart("juergen")
    assert not is_international_localpart("")


_localpart_chars = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from(["é", "e\u0301", "ß", "İ", "Σ", "\u037e", "\u212a", "日", "😀", "\u0080"]),
)


@given(st.lists(_localpart_chars, max_size=40).map("".join))
def test_localpart_string_round_trip(x: str) -> None:
    encoded = localpart_string(x)
    lp = parse_localpart(encoded)
    assert lp == unicodedata.normalize("NFC", x)
    again = localpart_string(lp)
    assert parse_localpart(again) == lp
    assert localpart_string(parse_localpart(again)) == again


# --------------------------------------------------------------------------
# Addresses


def test_parse_address() -> None:
    a = parse_address("User@München.DE")
    assert a == Address("User", Domain("xn--mnchen-3ya.de", "münchen.de"))
    assert str(a) == "User@münchen.de"
    assert a.pack(False) == "User@xn--mnchen-3ya.de"
    q = parse_address('"a b"@example.com')
    assert q.localpart == "a b"
    assert str(q) == '"a b"@example.com'
    assert str(Address("", Domain(""))) == ""


_BAD_ATOM = "invalid email address: invalid localpart: expected at least one char for atom, got char "


@pytest.mark.parametrize(
    ("given_address", "message"),
    [
        ("user", "invalid email address: expected @"),
        ("a b@example.com", "invalid email address: expected @"),
        ("@example.com", _BAD_ATOM + "@"),
        ("a..b@example.com", _BAD_ATOM + "."),
        ("user@example.com.", "invalid email address: dns name has trailing dot"),
        ("user@[1.2.3.4]", "invalid email address: idna: to ascii: idna: disallowed rune U+005B"),
        ("user@1.2.3.4", "invalid email address: ip address while name required"),
        ("user@a_b.example", "invalid email address: idna: to ascii: idna: disallowed rune U+005F"),
        ("user@-a.example", 'invalid email address: idna: to ascii: idna: invalid label "-a"'),
        ("user@a@b.example", "invalid email address: idna: to ascii: idna: disallowed rune U+0040"),
    ],
)
def test_parse_address_errors(given_address: str, message: str) -> None:
    with pytest.raises(ParseError) as exc_info:
        parse_address(given_address)
    assert str(exc_info.value) == message


# --------------------------------------------------------------------------
# Canonical localparts


def _canon(
    lp: str,
    *,
    case_sensitive: bool = False,
    separators: tuple[str, ...] = (),
    dmarc: str | None = None,
    tlsrpt: str | None = None,
) -> str:
    return canonical_localpart(
        lp,
        case_sensitive=case_sensitive,
        separators=separators,
        dmarc_localpart=dmarc,
        tlsrpt_localpart=tlsrpt,
    )


def test_canonical_localpart_case() -> None:
    assert _canon("User") == "user"
    assert _canon("User", case_sensitive=True) == "User"
    assert _canon("İSTANBUL") == "istanbul"
    assert _canon("ΟΔΟΣ") == "οδοσ"


def test_canonical_localpart_separators() -> None:
    assert _canon("user+tag", separators=("+",)) == "user"
    assert _canon("user+a+b", separators=("+",)) == "user"
    assert _canon("user-a+b", separators=("+", "-")) == "user"
    assert _canon("user+a-b", separators=("-", "+")) == "user"
    assert _canon("User+Tag", separators=("+",), case_sensitive=True) == "User"
    assert _canon("+tag", separators=("+",)) == ""
    assert _canon("user", separators=("+",)) == "user"
    assert _canon("userXXtag", separators=("XX",), case_sensitive=True) == "user"
    assert _canon("userXXtag", separators=("XX",)) == "userxxtag"  # lower-cased first
    assert _canon("abc", separators=("",)) == "a"  # Go's SplitN with an empty separator


def test_canonical_localpart_reporting() -> None:
    seps = ("+",)
    assert _canon("dmarc-reports", separators=seps, dmarc="dmarc-reports") == "dmarc-reports"
    assert _canon("DMARC-Reports", separators=seps, dmarc="dmarc-reports") == "dmarc-reports"
    assert _canon("dmarc-reports+x", separators=seps, dmarc="dmarc-reports") == "dmarc-reports"
    # A reporting localpart with a separator in it (old configs) is kept whole.
    assert _canon("dmarc+reports", separators=seps, dmarc="dmarc+reports") == "dmarc+reports"
    assert _canon("dmarc+reports+x", separators=seps, dmarc="dmarc+reports") == "dmarc+reports"
    assert _canon("dmarc+other", separators=seps, dmarc="dmarc+reports") == "dmarc"
    # Only a full reporting localpart or one followed by a separator matches.
    assert _canon("dmarc-reportsx", separators=seps, dmarc="dmarc-reports") == "dmarc-reportsx"
    assert _canon("tls+reports+1", separators=seps, tlsrpt="tls+reports") == "tls+reports"
    assert _canon("tls+x", separators=seps, dmarc="d+r", tlsrpt="tls+reports") == "tls"
    # Compared after lower-casing: an upper-case reporting localpart on a
    # case-insensitive domain never matches (mox lower-cases it when parsing).
    assert _canon("Dmarc+x", separators=seps, dmarc="Dmarc") == "dmarc"
    assert _canon("Dmarc+x", separators=seps, dmarc="Dmarc", case_sensitive=True) == "Dmarc"
    # DMARC is checked before TLSRPT.
    assert _canon("reports+x", separators=seps, dmarc="reports", tlsrpt="reports+x") == "reports"
