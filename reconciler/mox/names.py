"""Domain names, localparts and email addresses, parsed exactly like mox v0.0.17.

This is a port of mox's Go packages ``dns`` (``ParseDomain``) and ``smtp``
(``ParseLocalpart``, ``ParseAddress``, ``Localpart.String``), plus the small Go
standard-library behaviours they rely on (``strings.ToLower``, ``%q``) and
mox's ``CanonicalLocalpart``. The reconciler must compute the very same names
and keys as mox: a destination that mox canonicalizes differently than we do
is a destination we cannot find, compare or remove.

Known, deliberate differences from mox (we are stricter, never more lenient):

* Go's ``idna.Lookup`` does not verify DNS lengths, so mox accepts empty
  labels (``a..b``, ``.a``), labels longer than 63 octets and names longer
  than 253 octets. The ``idna`` package rejects them, and so do we. The empty
  string itself is accepted, as in mox (it gives the zero ``Domain``).
* Go treats UTS #46 "NV8/XV8" code points (symbols, emoji such as ``☕``) as
  valid and implements no CONTEXTO rules; ``idna`` applies the IDNA2008
  code point tables and CONTEXTO rules (e.g. ``a·b``), so we reject those.
* Go applies the bidi rule to every label once any label is right-to-left;
  ``idna`` checks each label on its own.
* Case mapping and normalization use Python's Unicode tables (``unicodedata``)
  and the ``idna`` package's tables, which may be a different Unicode version
  than Go's; only code points new in one of those versions are affected.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import idna

from reconciler.mox.golang import go_quote

__all__ = [
    "Address",
    "Domain",
    "ParseError",
    "canonical_localpart",
    "check_mailbox_nfc",
    "go_lower",
    "go_quote",
    "is_international_localpart",
    "localpart_string",
    "nfc",
    "parse_address",
    "parse_domain",
    "parse_localpart",
]


class ParseError(ValueError):
    """A name that mox would refuse; ``str()`` is mox's own error text.

    Keeping mox's wording lets validation messages be compared with, and
    searched for in, mox's logs and ``mox config test`` output.
    """


# ---------------------------------------------------------------------------
# Go helpers


class _GoLowerTable(dict[int, str]):
    """Lazily filled ``str.translate`` table with Go's simple lower-case mapping."""

    def __missing__(self, cp: int) -> str:
        c = chr(cp)
        low = c.lower()
        if len(low) != 1:
            # Only U+0130 (İ) has a multi-character full lower-case mapping
            # ("i" + U+0307); its simple mapping, which Go uses, is "i".
            low = _GO_LOWER_SPECIAL.get(cp, low[0])
        self[cp] = low
        return low


_GO_LOWER_SPECIAL = {0x130: "i"}
_GO_LOWER_TABLE = _GoLowerTable()


def go_lower(s: str) -> str:
    """Lower-case like Go's ``strings.ToLower``: per code point, simple case mapping.

    Python's ``str.lower`` uses full, context-sensitive mappings (``İ`` becomes
    two code points, a word-final ``Σ`` becomes ``ς``); mox's canonical
    localparts are computed with Go's mapping, so ours must be too.
    """
    if s.isascii():
        return s.lower()
    return s.translate(_GO_LOWER_TABLE)


def nfc(s: str) -> str:
    """Return ``s`` in Unicode NFC, the form mox keeps localparts and mailboxes in."""
    if s.isascii():
        return s
    return unicodedata.normalize("NFC", s)


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


_IDNA_PREFIX = "idna: to ascii: idna: "
# Plain, already-canonical-when-lowered ASCII names: LDH labels of 1..63 chars,
# no leading/trailing hyphen. Names with "--" anywhere (A-labels, hyphens in
# positions 3-4) take the slow path so idna validates them.
_FAST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FAST_DOMAIN_RE = re.compile(rf"{_FAST_LABEL}(?:\.{_FAST_LABEL})*")
_IPV4_CHARS_RE = re.compile(r"[0-9.]+")
_LABEL_SPLIT_RE = re.compile("[.\u3002\uff0e\uff61]")


def _is_ip(s: str) -> bool:
    """Whether Go's ``net.ParseIP`` would accept ``s`` (dotted IPv4 or IPv6, no zone)."""
    if ":" in s:
        if "%" in s:  # Go's ParseIP rejects zones; Python's ipaddress accepts them.
            return False
    elif not _IPV4_CHARS_RE.fullmatch(s):
        return False
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _idna_codepoint(exc: UnicodeError) -> int | None:
    """The offending code point of an idna error (attribute in idna >= 3.11, else the text)."""
    cp = getattr(exc, "codepoint", None)
    if isinstance(cp, int):
        return cp
    m = re.search(r"U\+([0-9A-F]{4,6})", str(exc))
    return int(m.group(1), 16) if m else None


def _idna_error(s: str, exc: UnicodeError) -> ParseError:
    """Translate an ``idna`` exception into the message Go's x/net/idna would give.

    Go reports the first code point that UTS #46 (with STD3 rules) disallows,
    else the first invalid label (in mapped, lower-case form), quoted.
    """
    for c in s:
        if c == ".":
            continue
        try:
            idna.uts46_remap(c, std3_rules=True, transitional=False)
        except UnicodeError:
            return ParseError(f"{_IDNA_PREFIX}disallowed rune U+{ord(c):04X}")

    try:
        mapped = idna.uts46_remap(s, std3_rules=True, transitional=False)
    except UnicodeError:
        mapped = s
    if isinstance(exc, idna.IDNABidiError):
        # Go reports bidi-rule failures with the whole mapped name as "label".
        return ParseError(f"{_IDNA_PREFIX}invalid label {go_quote(mapped)}")

    for label in _LABEL_SPLIT_RE.split(mapped):
        if not label:
            return ParseError(f"{_IDNA_PREFIX}empty label in {go_quote(s)}")
        try:
            idna.alabel(label)
        except UnicodeError as lexc:
            msg = str(lexc).lower()
            if "too long" in msg:
                return ParseError(f"{_IDNA_PREFIX}label {go_quote(label)} longer than 63 octets")
            if isinstance(lexc, idna.InvalidCodepoint) and not label.startswith("xn--"):
                cp = _idna_codepoint(lexc)
                if cp is not None:
                    return ParseError(f"{_IDNA_PREFIX}disallowed rune U+{cp:04X}")
            shown = label
            if label.startswith("xn--") and "canonical" not in msg:
                # Go reports the decoded U-label when it fails validation.
                try:
                    shown = label[4:].encode("ascii").decode("punycode")
                except UnicodeError:
                    shown = label
            return ParseError(f"{_IDNA_PREFIX}invalid label {go_quote(shown)}")
    if "domain too long" in str(exc).lower():
        return ParseError(f"{_IDNA_PREFIX}domain name {go_quote(s)} longer than 253 octets")
    return ParseError(f"{_IDNA_PREFIX}{str(exc).lower()}")


@functools.lru_cache(maxsize=65536)
def _parse_domain_cached(s: str) -> Domain:
    if s.endswith("."):
        raise ParseError("dns name has trailing dot")
    if _is_ip(s):
        raise ParseError("ip address while name required")
    if s == "":
        return Domain("", "")  # Go's idna accepts the empty name.
    if s.isascii():
        low = s.lower()  # For ASCII, UTS #46 mapping is exactly lower-casing.
        if len(low) <= 253 and "--" not in low and _FAST_DOMAIN_RE.fullmatch(low):
            return Domain(low, "")
    try:
        ascii_name = idna.encode(s, uts46=True, std3_rules=True, transitional=False).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError, or a codec error from punycode
        raise _idna_error(s, exc) from None
    try:
        unicode_name = idna.decode(ascii_name)
    except UnicodeError as exc:
        raise ParseError(f"idna: to unicode: idna: {str(exc).lower()}") from None
    if unicode_name == ascii_name:
        unicode_name = ""
    return Domain(ascii_name, unicode_name)


def parse_domain(s: str) -> Domain:
    """Parse a domain name like mox's ``dns.ParseDomain`` (IDNA2008/UTS #46 lookup).

    Trailing dots and IP addresses are refused, names are lower-cased and
    mapped (``Ⓡ`` → ``r``, ``ß`` kept). Results are cached: a config load
    parses the same few domains for each of thousands of addresses.
    """
    return _parse_domain_cached(s)


# ---------------------------------------------------------------------------
# Localparts (mox smtp.ParseLocalpart / Localpart.String)

_ATEXT_SPECIALS = frozenset("!#$%&'*+-/=?^_`{|}~")
_ATEXT_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") | _ATEXT_SPECIALS
_ATOM_CLASS = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_ASCII_DOT_ATOM_RE = re.compile(rf"{_ATOM_CLASS}(?:\.{_ATOM_CLASS})*")


def _is_atext(c: str) -> bool:
    """RFC 5321/6531 atext as mox accepts it: ASCII atext or any non-ASCII code point."""
    return c in _ATEXT_ASCII or ord(c) > 0x7F


def _utf8_len(s: str) -> int:
    """Length in octets, as Go's ``len`` on a string."""
    if s.isascii():
        return len(s)
    return len(s.encode("utf-8", "surrogatepass"))


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
        n = _utf8_len(lp)
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


@functools.lru_cache(maxsize=65536)
def _parse_localpart_cached(s: str, pedantic: bool) -> str:
    if _ASCII_DOT_ATOM_RE.fullmatch(s) and len(s) <= (64 if pedantic else 128):
        return s
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

    def pack_ascii(self) -> str:
        """Address with the ASCII (A-label) domain, mox's ``Pack(false)``."""
        return self.pack(False)

    def __str__(self) -> str:
        """Address with Unicode domain: the canonical spelling of mox's address keys."""
        return self.pack(True)


def parse_address(s: str, *, pedantic: bool = False) -> Address:
    """Parse ``localpart@domain`` like mox's ``smtp.ParseAddress`` (no address literals)."""
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


def _go_split_first(s: str, sep: str) -> str:
    """``strings.SplitN(s, sep, 2)[0]``, including Go's behaviour for an empty ``sep``."""
    if sep == "":
        # Go splits after the first UTF-8 sequence. (For s == "" Go would panic
        # on the empty result; we return "".)
        return s[:1]
    i = s.find(sep)
    return s if i < 0 else s[:i]


def _match_reporting(lp: str, rlp: str, separators: Sequence[str]) -> bool:
    """mox's matchReportingSeparators: ``rlp`` alone or followed by a separator."""
    if not lp.startswith(rlp):
        return False
    if len(lp) == len(rlp):
        return True
    rest = lp[len(rlp) :]
    return any(rest.startswith(sep) for sep in separators)


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
        lp = _go_split_first(lp, sep)
    return lp
