"""mox's own name rules: domains, localparts, email addresses, mailbox names, canonical forms.

A port of mox v0.0.17's ``dns.ParseDomain`` (dns/dns.go), ``smtp.ParseLocalpart``,
``smtp.ParseAddress`` and ``Localpart.String`` (smtp/address.go), ``CanonicalLocalpart``
(mox-/lookup.go) and ``config.CheckMailboxName`` / ``checkMailboxNormf`` (config/config.go,
mox-/config.go). The reconciler must compute the very same names and keys as mox: a destination
that mox canonicalizes differently than we do is a destination we cannot find, compare or remove.
The Go library behaviour underneath (IDNA, ``strings.ToLower``, NFC, ``%q``) is in `golang`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.mox.golang import IDNAError, go_lower, go_quote, idna_lookup, nfc, parse_ip, split_first, utf8_len

__all__ = [
    "ZERO_DOMAIN",
    "Address",
    "Domain",
    "LocalpartRules",
    "ParseError",
    "canonical_localpart",
    "check_mailbox_name",
    "check_mailbox_nfc",
    "is_international_localpart",
    "localpart_string",
    "parse_address",
    "parse_domain",
    "parse_domain_or_zero",
    "parse_localpart",
]


class ParseError(ValueError):
    """A name that mox would refuse; ``str()`` is mox's own error text.

    Keeping mox's wording lets validation messages be compared with, and
    searched for in, mox's logs and ``mox config test`` output.
    """


# ---------------------------------------------------------------------------
# Mailbox names (config.CheckMailboxName, mox-/config.go checkMailboxNormf)


def check_mailbox_nfc(what: str, mailbox: str) -> str | None:
    """Return mox's error for a mailbox name that is not NFC, or None if it is.

    mox (checkMailboxNormf) refuses such configs; the message suggests the fix.
    """
    normalized = nfc(mailbox)
    if normalized == mailbox:
        return None
    return (
        f"{what}: mailbox {go_quote(mailbox)} is not in NFC normalized form, should be {go_quote(normalized)}"
    )


def check_mailbox_name(name: str, allow_inbox: bool) -> tuple[str, str | None]:
    """config.CheckMailboxName: (INBOX-normalized name, error text or None)."""
    t = name.split("/")
    # strings.EqualFold(t[0], "inbox"): no non-ASCII letter folds to one of "inbox" in Go.
    if t[0].isascii() and t[0].lower() == "inbox":
        if utf8_len(name) == len("inbox") and not allow_inbox:
            return "", "special mailbox name Inbox not allowed"
        name = "Inbox" + name[len("Inbox") :]
    if nfc(name) != name:
        return "", "non-unicode-normalized mailbox names not allowed"
    for e in t:
        if e == "":
            return "", "empty mailbox name"
        if e == ".":
            return "", '"." not allowed'
        if e == "..":
            return "", '".." not allowed'
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "", "bad slashes in mailbox name"
    if name.startswith("#"):
        return "", "mailbox name cannot start with hash due to conflict with imap namespaces"
    for c in name:
        o = ord(c)
        if o <= 0x1F or 0x7F <= o <= 0x9F or o in (0x2028, 0x2029):
            return "", "control characters not allowed in mailbox name"
    return name, None


# ---------------------------------------------------------------------------
# Domains (mox dns.ParseDomain)


@dataclass(frozen=True, slots=True)
class Domain:
    """A parsed domain, like Go's ``dns.Domain``.

    ``ascii`` is the lower-case A-label (``xn--``) form used on the wire;
    ``unicode`` is the U-label form, or empty when it equals ``ascii``. Parsed
    domains must be compared, never the strings they came from: ``Ⓡ.COM`` and
    ``r.com`` are the same domain.
    """

    ascii: str
    unicode: str = ""

    def name(self) -> str:
        """Unicode form for IDNs, else ASCII: the spelling mox uses as config key."""
        return self.unicode or self.ascii

    def xname(self, utf8: bool) -> str:
        """Unicode form only when ``utf8`` is true (Go's ``XName``)."""
        if utf8 and self.unicode:
            return self.unicode
        return self.ascii

    def log_string(self) -> str:
        """``unicode/ascii`` for IDNs, else ascii (Go's ``Domain.String``)."""
        if not self.unicode:
            return self.ascii
        return self.unicode + "/" + self.ascii

    def is_zero(self) -> bool:
        """True for the empty domain, which mox's ParseDomain returns for ``""``."""
        return not self.ascii and not self.unicode

    def __str__(self) -> str:
        return self.name()


@functools.lru_cache(maxsize=65536)
def _parse_domain_cached(s: str) -> Domain:
    if s.endswith("."):
        raise ParseError("dns name has trailing dot")
    if parse_ip(s) is not None:
        raise ParseError("ip address while name required")
    try:
        ascii_name, unicode_name = idna_lookup(s)
    except IDNAError as e:
        raise ParseError(f"idna: {e.stage}: {e}") from None
    return Domain(ascii_name, "" if unicode_name == ascii_name else unicode_name)


def parse_domain(s: str) -> Domain:
    """Parse a domain name like mox's ``dns.ParseDomain`` (IDNA2008/UTS #46 lookup).

    Trailing dots and IP addresses are refused, names are lower-cased and
    mapped (``Ⓡ`` → ``r``, ``ß`` kept). Results are cached: a config load
    parses the same few domains for each of thousands of addresses.
    """
    return _parse_domain_cached(s)


ZERO_DOMAIN = Domain("", "")


def parse_domain_or_zero(s: str) -> tuple[Domain, str | None]:
    """``d, err := dns.ParseDomain(s)`` as mox's validation uses it: the zero Domain and the error
    text on failure (mox goes on with the zero value), else the domain and None."""
    try:
        return parse_domain(s), None
    except ParseError as e:
        return ZERO_DOMAIN, str(e)


# ---------------------------------------------------------------------------
# Localparts (mox smtp.ParseLocalpart / Localpart.String)

_ATEXT_SPECIALS = frozenset("!#$%&'*+-/=?^_`{|}~")
_ATEXT_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") | _ATEXT_SPECIALS
_ATOM_CLASS = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_ASCII_DOT_ATOM_RE = re.compile(rf"{_ATOM_CLASS}(?:\.{_ATOM_CLASS})*")


def _is_atext(c: str) -> bool:
    """RFC 5321/6531 atext as mox accepts it: ASCII atext or any non-ASCII code point."""
    return c in _ATEXT_ASCII or ord(c) > 0x7F


class _LocalpartParser:
    """Mirror of mox's smtp parser, so inputs fail at the same place with the same text."""

    __slots__ = ("o", "s")

    def __init__(self, s: str) -> None:
        self.s = s
        self.o = 0

    def _atom(self) -> str:
        s, o = self.s, self.o
        if o == len(s):
            raise ParseError("need at least one char for atom")
        end = o
        while end < len(s) and _is_atext(s[end]):
            end += 1
        if end == o:
            raise ParseError(f"expected at least one char for atom, got char {s[o]}")
        self.o = end
        return s[o:end]

    def _quoted_string(self) -> str:
        s = self.s
        self.o += 1  # opening quote, checked by caller
        out: list[str] = []
        esc = False
        while True:
            if self.o == len(s):
                raise ParseError("need another character")
            c = s[self.o]
            self.o += 1
            cp = ord(c)
            if esc:
                if 0x20 <= cp < 0x7F:
                    out.append(c)
                    esc = False
                    continue
                raise ParseError(f"invalid localpart, bad escaped char {c}")
            if c == "\\":
                esc = True
                continue
            if c == '"':
                return "".join(out)
            if 0x20 <= cp < 0x7F or cp > 0x7F:
                out.append(c)
                continue
            raise ParseError(f"invalid localpart, invalid character {c}")

    def localpart(self, pedantic: bool) -> str:
        if self.s.startswith('"', self.o):
            lp = self._quoted_string()
        else:
            parts = [self._atom()]
            while self.s.startswith(".", self.o):
                self.o += 1
                parts.append(self._atom())
            lp = ".".join(parts)
        n = utf8_len(lp)
        if (pedantic and n > 64) or n > 128:
            # mox says "64 octets" also when the (default) limit of 128 is exceeded.
            raise ParseError("localpart longer than 64 octets")
        return nfc(lp)


def _parse_localpart_prefix(s: str, pedantic: bool) -> tuple[str, str]:
    """Parse a localpart at the start of ``s``; return it and the rest of ``s``."""
    p = _LocalpartParser(s)
    try:
        lp = p.localpart(pedantic)
    except ParseError as exc:
        raise ParseError(f"invalid localpart: {exc}") from None
    return lp, s[p.o :]


def _plain_address_localpart(s: str, pedantic: bool) -> str | None:
    """The localpart of `localpart@...` when it is a plain ASCII dot-atom within the length
    limit: what `_LocalpartParser` reads of `s` (it stops at the `@`), without parsing it."""
    lp, at, _ = s.partition("@")
    if at and len(lp) <= (64 if pedantic else 128) and _ASCII_DOT_ATOM_RE.fullmatch(lp):
        return lp
    return None


@functools.lru_cache(maxsize=65536)
def _parse_localpart_cached(s: str, pedantic: bool) -> str:
    if _ASCII_DOT_ATOM_RE.fullmatch(s) and len(s) <= (64 if pedantic else 128):
        return s
    lp = _plain_address_localpart(s, pedantic)
    if lp is not None:  # an address, not a localpart (validation tries both): the parser's error
        raise ParseError(f"invalid localpart: remaining after localpart: {go_quote(s[len(lp):])}")
    lp, rest = _parse_localpart_prefix(s, pedantic)
    if rest:
        raise ParseError(f"invalid localpart: remaining after localpart: {go_quote(rest)}")
    return lp


def parse_localpart(s: str, pedantic: bool = False) -> str:
    """Parse an (encoded) localpart like mox's ``smtp.ParseLocalpart``.

    Accepts a dot-atom or a quoted-string, UTF-8 allowed; returns the decoded
    localpart (unquoted, unescaped) in NFC. At most 128 octets, 64 when
    ``pedantic`` (mox's ``-pedantic`` flag).
    """
    return _parse_localpart_cached(s, pedantic)


def localpart_string(lp: str) -> str:
    """Encode a localpart like mox's ``Localpart.String()``.

    Dot-atom form when every dot-separated part is non-empty atext (non-ASCII
    allowed), otherwise a quoted-string with ``"`` and ``\\`` escaped. This is
    the spelling of the localpart in mox's address keys.
    """
    if _ASCII_DOT_ATOM_RE.fullmatch(lp):
        return lp
    if lp and all(part and all(_is_atext(c) for c in part) for part in lp.split(".")):
        return lp
    return '"' + lp.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_international_localpart(lp: str) -> bool:
    """Whether the localpart has non-ASCII characters (needs SMTPUTF8)."""
    return not lp.isascii()


# ---------------------------------------------------------------------------
# Addresses (mox smtp.ParseAddress)


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed email address: decoded localpart and parsed domain (Go's ``smtp.Address``)."""

    localpart: str
    domain: Domain

    def is_zero(self) -> bool:
        """True for the zero address, which Go formats as the empty string."""
        return not self.localpart and self.domain.is_zero()

    def pack(self, smtputf8: bool) -> str:
        """Encoded localpart + ``@`` + domain, Unicode domain only if ``smtputf8``."""
        if self.is_zero():
            return ""
        return localpart_string(self.localpart) + "@" + self.domain.xname(smtputf8)

    def __str__(self) -> str:
        """Address with Unicode domain: the canonical spelling of mox's address keys."""
        return self.pack(True)


def parse_address(s: str, *, pedantic: bool = False) -> Address:
    """Parse ``localpart@domain`` like mox's ``smtp.ParseAddress`` (no address literals).
    Results are cached: a plan parses each address of 10,000 accounts several times."""
    return _parse_address_cached(s, pedantic)


@functools.lru_cache(maxsize=1 << 17)
def _parse_address_cached(s: str, pedantic: bool) -> Address:
    lp = _plain_address_localpart(s, pedantic)
    if lp is not None:
        try:
            domain = parse_domain(s[len(lp) + 1 :])
        except ParseError as exc:
            raise ParseError(f"invalid email address: {exc}") from None
        return Address(lp, domain)
    return _parse_address_by_parser(s, pedantic)


def _parse_address_by_parser(s: str, pedantic: bool) -> Address:
    try:
        lp, rest = _parse_localpart_prefix(s, pedantic)
    except ParseError as exc:
        raise ParseError(f"invalid email address: {exc}") from None
    if not rest.startswith("@"):
        raise ParseError("invalid email address: expected @")
    try:
        domain = parse_domain(rest[1:])
    except ParseError as exc:
        raise ParseError(f"invalid email address: {exc}") from None
    return Address(lp, domain)


# ---------------------------------------------------------------------------
# Canonical localparts (mox mox-/lookup.go CanonicalLocalpart)


def _match_reporting(lp: str, rlp: str, separators: Sequence[str]) -> bool:
    """mox's matchReportingSeparators: ``rlp`` alone or followed by a separator."""
    if not lp.startswith(rlp):
        return False
    if len(lp) == len(rlp):
        return True
    rest = lp[len(rlp) :]
    return any(rest.startswith(sep) for sep in separators)


@dataclass(frozen=True, slots=True)
class LocalpartRules:
    """What CanonicalLocalpart reads from a domain's config; see `canonical_localpart`."""

    case_sensitive: bool = False
    separators: tuple[str, ...] = ()
    dmarc_localpart: str | None = None
    tlsrpt_localpart: str | None = None

    def canonical(self, lp: str) -> str:
        return canonical_localpart(
            lp,
            case_sensitive=self.case_sensitive,
            separators=self.separators,
            dmarc_localpart=self.dmarc_localpart,
            tlsrpt_localpart=self.tlsrpt_localpart,
        )


def canonical_localpart(
    lp: str,
    *,
    case_sensitive: bool,
    separators: Sequence[str],
    dmarc_localpart: str | None,
    tlsrpt_localpart: str | None,
) -> str:
    """Canonical form of a decoded localpart, as mox uses for its address index.

    Lower-cases (Go simple mapping) unless the domain is case-sensitive; a
    DMARC or TLSRPT reporting localpart, alone or followed by a separator and
    anything, maps to that reporting localpart (old configs may have
    separators in them); otherwise everything from the first occurrence of
    each separator, in order, is cut off.

    ``separators`` are the domain's *effective* separators
    (``LocalpartCatchallSeparators`` plus ``LocalpartCatchallSeparator``).
    ``dmarc_localpart``/``tlsrpt_localpart`` are the parsed reporting localparts
    as mox stores them (``ParsedLocalpart``: already lower-cased unless the
    reporting address's domain is case-sensitive), or None when the domain has
    no DMARC/TLSRPT config. They are compared after lower-casing ``lp``.
    """
    if not case_sensitive:
        lp = go_lower(lp)
    if dmarc_localpart is not None and _match_reporting(lp, dmarc_localpart, separators):
        return dmarc_localpart
    if tlsrpt_localpart is not None and _match_reporting(lp, tlsrpt_localpart, separators):
        return tlsrpt_localpart
    for sep in separators:
        lp = split_first(lp, sep)
    return lp
