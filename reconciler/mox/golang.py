"""Go's behaviour where mox's results depend on it: one home for every emulation of Go.

mox is written in Go, and what it accepts, writes and says follows Go's standard library and
x/ packages, which differ from Python's in many small ways (`int("1_000")`, `float(" 1")`,
`"%f" % inf`, `repr` vs `%q`, `str.lower` vs `strings.ToLower`, IDNA2003 vs UTS #46, `re` vs
RE2, no duration type). Everything here follows Go (1.27, as mox v0.0.17 is built) so the rest of
the port can say "as mox does" and mean it. One section per Go package (the regexp/syntax parser,
large, is goregexp.py); each function names the Go function it stands for. Deliberate
differences are listed in `reconciler/mox/README.md`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import errno
import functools
import ipaddress
import math
import os
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class GoSyntaxError(ValueError):
    """A value that Go's parser rejects; the message is Go's."""


# ---------------------------------------------------------------------------------------------
# strconv: Quote (%q), ParseInt, ParseFloat; fmt: %f, Sprintf without arguments


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _go_quote_char(c: str) -> str:
    """Escape one code point like Go's strconv.appendEscapedRune (ASCIIonly=false)."""
    cp = ord(c)
    if c == '"' or c == "\\":
        return "\\" + c
    if 0xD800 <= cp <= 0xDFFF:
        # A Python str can hold lone surrogates (e.g. from surrogateescape); they
        # stand for bytes that are invalid UTF-8, which Go prints as \xNN each.
        if 0xDC80 <= cp <= 0xDCFF:
            return f"\\x{cp - 0xDC00:02x}"
        return "".join(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogatepass"))
    if is_print(c):
        return c
    special = _GO_ESCAPES.get(c)
    if special is not None:
        return special
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def go_quote(s: str) -> str:
    """Quote like Go's ``strconv.Quote`` / ``%q``, the quoting in mox's error texts.

    Python's ``repr`` differs (single quotes, ``\\xe9`` for printable letters),
    so messages built with it would not match mox's.
    """
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return '"' + "".join(_go_quote_char(c) for c in s) + '"'


_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_SPECIAL_FLOATS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


def parse_int(s: str) -> int:
    """strconv.ParseInt(s, 10, 64): ASCII digits with an optional sign, nothing else."""
    if not _INT_RE.match(s):
        raise GoSyntaxError(f"strconv.ParseInt: parsing {go_quote(s)}: invalid syntax")
    value = int(s)
    if not INT64_MIN <= value <= INT64_MAX:
        raise GoSyntaxError(f"strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    return value


def parse_uint(s: str, bits: int = 64) -> int:
    """strconv.ParseUint(s, 10, bits): ASCII digits only (no sign, no underscores)."""
    if not s or not s.isascii() or not s.isdigit():
        raise GoSyntaxError(f"strconv.ParseUint: parsing {go_quote(s)}: invalid syntax")
    value = int(s)
    if value >= 1 << bits:
        raise GoSyntaxError(f"strconv.ParseUint: parsing {go_quote(s)}: value out of range")
    return value


def _atoi_ok(s: str) -> bool:
    """Whether strconv.Atoi(s) succeeds: an optional sign, ASCII digits, within int64."""
    try:
        parse_int(s)
    except GoSyntaxError:
        return False
    return True


def _underscore_ok(s: str) -> bool:
    """strconv's underscoreOK: underscores only between digits (a base prefix counts as a digit)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    for c in s[i:]:
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _read_float(s: str) -> bool:
    """Whether strconv's readFloat takes all of `s`: sign, digits (hex with 0x and a p exponent),
    one dot, an exponent, underscores where underscoreOK allows them."""
    i, n = 0, len(s)
    underscores = False
    if i < n and s[i] in "+-":
        i += 1
    hexa = i + 2 < n and s[i] == "0" and s[i + 1] in "xX"
    if hexa:
        i += 2
    sawdot = sawdigits = False
    while i < n:
        c = s[i]
        if c == "_":
            underscores = True
        elif c == ".":
            if sawdot:
                break
            sawdot = True
        elif "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            sawdigits = True
        else:
            break
        i += 1
    if not sawdigits:
        return False
    if i < n and s[i].lower() == ("p" if hexa else "e"):
        i += 1
        if i < n and s[i] in "+-":
            i += 1
        if i >= n or not "0" <= s[i] <= "9":
            return False
        while i < n and ("0" <= s[i] <= "9" or s[i] == "_"):
            underscores = underscores or s[i] == "_"
            i += 1
    elif hexa:
        return False  # a hex mantissa needs an exponent
    if underscores and not _underscore_ok(s[:i]):
        return False
    return i == n


def parse_float(s: str) -> float:
    """strconv.ParseFloat(s, 64): decimal or hex (with p exponent) with Go's underscore rules,
    inf/infinity/nan; Go's error texts."""
    body = s[1:] if s[:1] in "+-" else s
    special = _SPECIAL_FLOATS.get(body.lower())
    if special is not None and not (math.isnan(special) and body != s):
        return -special if s.startswith("-") else special
    if not s.isascii() or not _read_float(s):
        raise GoSyntaxError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax")
    clean = s.replace("_", "")
    value = float.fromhex(clean) if "x" in clean[:3].lower() else float(clean)
    if math.isinf(value):
        raise GoSyntaxError(f"strconv.ParseFloat: parsing {go_quote(s)}: value out of range")
    return value


def format_float(value: float) -> str:
    """fmt's %f: six decimals, and Go's spelling of the special values."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:f}"


def float_is_zero(value: float) -> bool:
    """Go's reflect IsZero for floats: +0.0 only (-0.0 and NaN are not zero)."""
    return value == 0.0 and math.copysign(1.0, value) > 0


_GO_VERB_RE = re.compile(r"%(%|[-+# 0]*(?:\d+|\*)?(?:\.(?:\d+|\*)?)?(.)?)", re.DOTALL)


def sprintf_noargs(s: str) -> str:
    """fmt.Sprintf(s) without arguments: `%%` becomes `%`, other verbs `%!x(MISSING)`.

    mox builds some errors as addErrorf(fmt.Sprintf(...)), so a finished message is used as a
    format string once more.
    """
    if "%" not in s:
        return s

    def repl(m: re.Match[str]) -> str:
        if m.group(1) == "%":
            return "%"
        verb = m.group(2)
        if verb is None:
            return "%!(NOVERB)"
        return f"%!{verb}(MISSING)"

    return _GO_VERB_RE.sub(repl, s)


# ---------------------------------------------------------------------------------------------
# unicode: the tables of unicode_tables.py (Unicode 17.0.0, as Go 1.27), NFC


def _unpack(packed: str) -> str:
    return zlib.decompress(base64.b64decode(packed)).decode()


def _ranges(packed: str) -> tuple[list[int], list[str]]:
    starts: list[int] = []
    values: list[str] = []
    for item in _unpack(packed).split(";"):
        start, _, value = item.partition(":")
        starts.append(int(start, 16))
        values.append(value)
    return starts, values


def _mapping(packed: str) -> dict[int, int]:
    return {int(k, 16): int(v, 16) for k, _, v in (x.partition(":") for x in _unpack(packed).split(";"))}


class _Unicode:
    """The generated Unicode tables, each decoded on first use (a plan of one IDNA domain needs
    the IDNA and normalization tables, not the case or script ones; decoding all took longer
    than the plan)."""

    cat_starts: list[int]
    cats: list[str]
    ccc_starts: list[int]
    ccc_values: list[int]
    bidi_starts: list[int]
    bidis: list[str]
    idna_starts: list[int]
    idnas: list[str]
    lower_cp: dict[int, int]
    lower: dict[int, str]
    upper_cp: dict[int, int]
    orbit: dict[int, int]
    script_starts: list[int]
    script_names: list[str]
    scripts: frozenset[str]
    decomp: dict[int, tuple[int, ...]]
    compose: dict[tuple[int, ...], int]

    def __getattr__(self, name: str) -> object:
        """A table's attributes, decoded when one of them is first read (then plain attributes)."""
        from reconciler.mox import unicode_tables as u

        d = self.__dict__
        if name in ("cat_starts", "cats"):
            d["cat_starts"], d["cats"] = _ranges(u.CATEGORY)
        elif name in ("ccc_starts", "ccc_values"):
            d["ccc_starts"], ccc = _ranges(u.CCC)
            d["ccc_values"] = [int(v) for v in ccc]
        elif name in ("bidi_starts", "bidis"):
            d["bidi_starts"], d["bidis"] = _ranges(u.BIDI)
        elif name in ("idna_starts", "idnas"):
            d["idna_starts"], d["idnas"] = _ranges(u.IDNA)
        elif name in ("lower_cp", "lower"):
            d["lower_cp"] = _mapping(u.LOWER)
            d["lower"] = {k: chr(v) for k, v in d["lower_cp"].items()}
        elif name == "upper_cp":
            d["upper_cp"] = _mapping(u.UPPER)
        elif name == "orbit":
            d["orbit"] = _mapping(u.ORBIT)
        elif name in ("script_starts", "script_names", "scripts"):
            d["script_starts"], d["script_names"] = _ranges(u.SCRIPT)
            d["scripts"] = frozenset(n for n in d["script_names"] if n)
        elif name in ("decomp", "compose"):
            decomp: dict[int, tuple[int, ...]] = {}
            for item in _unpack(u.DECOMP).split(";"):
                k, _, v = item.partition(":")
                decomp[int(k, 16)] = tuple(int(x, 16) for x in v.split(","))
            exclusions = {int(x, 16) for x in _unpack(u.EXCLUSIONS).split(";")}
            d["decomp"] = decomp
            d["compose"] = {dd: c for c, dd in decomp.items() if len(dd) == 2 and c not in exclusions}
        else:
            raise AttributeError(name)
        return d[name]

    @staticmethod
    def _at(starts: list[int], values: list[str], cp: int) -> str:
        return values[bisect.bisect_right(starts, cp) - 1]

    def category(self, cp: int) -> str:
        return self._at(self.cat_starts, self.cats, cp)

    def ccc(self, cp: int) -> int:
        return self.ccc_values[bisect.bisect_right(self.ccc_starts, cp) - 1]

    def bidi(self, cp: int) -> str:
        return self._at(self.bidi_starts, self.bidis, cp)

    def idna(self, cp: int) -> str:
        return self._at(self.idna_starts, self.idnas, cp)

    def simple_fold(self, cp: int) -> int:
        """unicode.SimpleFold: the next code point of `cp`'s simple case folding orbit."""
        nxt = self.orbit.get(cp)
        if nxt is not None:
            return nxt
        low = self.lower_cp.get(cp, cp)
        return low if low != cp else self.upper_cp.get(cp, cp)

    def runs(self, which: str, name: str) -> list[tuple[int, int]]:
        """The code point ranges of general category `name` (one or two letters) or script `name`,
        as Go's unicode.Categories/Scripts tables hold them (category C: Cc, Cf, Cs and Co)."""
        if which == "category":
            starts, values = self.cat_starts, self.cats
        else:
            starts, values = self.script_starts, self.script_names

        def match(v: str) -> bool:
            if which == "category" and len(name) == 1:
                return v[:1] == name and v != "Cn"
            return v == name

        out: list[tuple[int, int]] = []
        for i, v in enumerate(values):
            if match(v):
                hi = (starts[i + 1] if i + 1 < len(starts) else 0x110000) - 1
                if out and out[-1][1] + 1 == starts[i]:
                    out[-1] = (out[-1][0], hi)
                else:
                    out.append((starts[i], hi))
        return out

    # NFC: canonical decomposition, canonical order, canonical composition (Hangul included).

    def _decompose(self, cp: int, out: list[int]) -> None:
        if 0xAC00 <= cp < 0xAC00 + 11172:
            si = cp - 0xAC00
            out.append(0x1100 + si // 588)
            out.append(0x1161 + (si % 588) // 28)
            if si % 28:
                out.append(0x11A7 + si % 28)
            return
        d = self.decomp.get(cp)
        if d is None:
            out.append(cp)
            return
        for x in d:
            self._decompose(x, out)

    def nfc(self, s: str) -> str:
        cps: list[int] = []
        for c in s:
            self._decompose(ord(c), cps)
        classes = [self.ccc(cp) for cp in cps]
        i = 0
        while i < len(cps):  # stable sort of each run of non-starters by combining class
            if classes[i] == 0:
                i += 1
                continue
            j = i
            while j < len(cps) and classes[j] != 0:
                j += 1
            run = sorted(zip(classes[i:j], cps[i:j], strict=True), key=lambda t: t[0])
            classes[i:j] = [t[0] for t in run]
            cps[i:j] = [t[1] for t in run]
            i = j
        out: list[int] = []
        out_ccc: list[int] = []
        starter = -1
        for cp, cc in zip(cps, classes, strict=True):
            if starter >= 0:
                last = out_ccc[-1] if len(out) - 1 > starter else -1
                blocked = last != -1 and (last == 0 or last >= cc)
                if not blocked:
                    composed = self._pair(out[starter], cp)
                    if composed is not None:
                        out[starter] = composed
                        continue
            out.append(cp)
            out_ccc.append(cc)
            if cc == 0:
                starter = len(out) - 1
        return "".join(map(chr, out))

    def _pair(self, a: int, b: int) -> int | None:
        if 0x1100 <= a < 0x1113 and 0x1161 <= b < 0x1176:
            return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28
        if 0xAC00 <= a < 0xAC00 + 11172 and (a - 0xAC00) % 28 == 0 and 0x11A7 < b < 0x11C3:
            return a + (b - 0x11A7)
        return self.compose.get((a, b))


@functools.cache
def _unicode() -> _Unicode:
    return _Unicode()


def unicode_data() -> _Unicode:
    """The generated Unicode 17 tables (decoded once), for the other ports of Go's packages."""
    return _unicode()


def is_print(c: str) -> bool:
    """unicode.IsPrint (Go 1.27): letters, marks, numbers, punctuation, symbols and U+0020."""
    if c == " ":
        return True
    if c.isascii():
        return c.isprintable()
    return _unicode().category(ord(c))[0] in "LMNPS"


# ---------------------------------------------------------------------------------------------
# strings, unicode/utf8, x/text/unicode/norm: ToLower, SplitN, len, NFC, string order


def go_lower(s: str) -> str:
    """Lower-case like Go's ``strings.ToLower``: per code point, simple case mapping (generated tables).

    Python's ``str.lower`` uses full, context-sensitive mappings (``İ`` becomes two code points, a
    word-final ``Σ`` becomes ``ς``) and Python 3.11's Unicode 14 tables; mox's canonical localparts
    are computed with Go's mapping, so ours must be too.
    """
    if s.isascii():
        return s.lower()
    return s.translate(_unicode().lower)


def split_first(s: str, sep: str) -> str:
    """``strings.SplitN(s, sep, 2)[0]``, including Go's behaviour for an empty ``sep``."""
    if sep == "":
        # Go splits after the first UTF-8 sequence. (For s == "" Go would panic
        # on the empty result; we return "".)
        return s[:1]
    i = s.find(sep)
    return s if i < 0 else s[:i]


def utf8_len(s: str) -> int:
    """Length in octets, as Go's ``len`` on a string."""
    if s.isascii():
        return len(s)
    return len(s.encode("utf-8", "surrogatepass"))


def nfc(s: str) -> str:
    """``norm.NFC.String(s)``: ``s`` in Unicode NFC, with the generated tables."""
    if s.isascii():
        return s
    return _unicode().nfc(s)


def _string_order(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def sorted_strings(keys: Iterable[str]) -> list[str]:
    """``slices.Sort`` of strings: bytewise, as Go compares strings.

    Python's code point order is the same for valid UTF-8; bytes kept as surrogate escapes
    (invalid UTF-8 in a file) sort by their byte value, as in Go.
    """
    out = list(keys)
    if all(k.isascii() for k in out):
        return sorted(out)
    return sorted(out, key=_string_order)


# ---------------------------------------------------------------------------------------------
# time: Duration (ParseDuration, String), Format layouts


class Duration(int):
    """A Go time.Duration: whole nanoseconds, written as Go's Duration.String()."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Duration({format_duration(self)!r})"

    def __str__(self) -> str:
        return format_duration(self)


_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _time_quote(s: str) -> str:
    """The time package's own quoting in its errors (not strconv.Quote)."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


def parse_duration(s: str) -> Duration:
    """time.ParseDuration, including its float64 rounding of fractions and its errors."""
    orig = s
    invalid = GoSyntaxError(f"time: invalid duration {_time_quote(orig)}")
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return Duration(0)
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        i = 0
        v = 0
        while i < len(s) and "0" <= s[i] <= "9":
            if v > (1 << 63) // 10:
                raise invalid
            v = v * 10 + ord(s[i]) - 48
            if v > 1 << 63:
                raise invalid
            i += 1
        pre = i > 0
        s = s[i:]
        post = False
        f, scale = 0, 1.0
        if s and s[0] == ".":
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and "0" <= s[i] <= "9":
                if not overflow:
                    if f > ((1 << 63) - 1) // 10:
                        overflow = True
                    else:
                        y = f * 10 + ord(s[i]) - 48
                        if y > 1 << 63:
                            overflow = True
                        else:
                            f = y
                            scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise GoSyntaxError(f"time: missing unit in duration {_time_quote(orig)}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise GoSyntaxError(
                f"time: unknown unit {_time_quote(unit_name)} in duration {_time_quote(orig)}"
            )
        if v > (1 << 63) // unit:
            raise invalid
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                raise invalid
        total += v
        if total > 1 << 63:
            raise invalid
    if neg:
        return Duration(-total)
    if total > INT64_MAX:
        raise invalid
    return Duration(total)


def _fraction(v: int, prec: int) -> tuple[str, int]:
    digits: list[str] = []
    printed = False
    for _ in range(prec):
        d = v % 10
        printed = printed or d != 0
        if printed:
            digits.append(str(d))
        v //= 10
    return ("." + "".join(reversed(digits)) if printed else ""), v


def format_duration(ns: int) -> str:
    """Go's Duration.String(): 0s, 1.5s, 500ms, 1m30s, 72h0m0s."""
    neg, u = ns < 0, abs(ns)
    if u < 1_000_000_000:
        if u == 0:
            return "0s"
        if u < 1_000:
            unit, prec = "ns", 0
        elif u < 1_000_000:
            unit, prec = "\u00b5s", 3
        else:
            unit, prec = "ms", 6
        frac, u = _fraction(u, prec)
        out = f"{u}{frac}{unit}"
    else:
        frac, u = _fraction(u, 9)
        out = f"{u % 60}{frac}s"
        u //= 60
        if u:
            out = f"{u % 60}m{out}"
            u //= 60
            if u:
                out = f"{u}h{out}"
    return ("-" if neg else "") + out


def format_compact(t: datetime) -> str:
    """``t.Format("20060102T150405")``, the layout of mox's key file names and MTA-STS policy IDs."""
    return t.strftime("%Y%m%dT%H%M%S")


def format_rfc3339(t: datetime) -> str:
    """``t.Format(time.RFC3339)`` of an aware datetime: `Z` for UTC, else `+01:00`."""
    off = t.utcoffset()
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if off is None or off.total_seconds() == 0:
        return base + "Z"
    secs = int(off.total_seconds())
    sign = "+" if secs >= 0 else "-"
    secs = abs(secs)
    return f"{base}{sign}{secs // 3600:02d}:{secs % 3600 // 60:02d}"


# ---------------------------------------------------------------------------------------------
# net: ParseIP, IP.To4


IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPV4_CHARS_RE = re.compile(r"[0-9.]+")


def parse_ip(s: str) -> IP | None:
    """``net.ParseIP``: dotted IPv4 or IPv6 without zone, else None."""
    if ":" in s:
        if "%" in s:  # Go's ParseIP rejects zones; Python's ipaddress accepts them.
            return None
    elif not _IPV4_CHARS_RE.fullmatch(s):
        return None
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def ip_to4(ip: IP) -> ipaddress.IPv4Address | None:
    """``IP.To4``: the IPv4 address of an IPv4 or IPv4-mapped IPv6 address, else None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    return ip.ipv4_mapped


# ---------------------------------------------------------------------------------------------
# net/url: Parse


_HEX = frozenset("0123456789abcdefABCDEF")
# Bytes net/url's shouldEscape leaves alone in a host (encodeHost) besides letters and digits.
_HOST_OK = frozenset("!$&'()*+,;=:[]<>\"-_.~")
# Bytes validUserinfo allows besides letters and digits.
_USERINFO_OK = frozenset("-._:~!$&'()*+,;=%@")


class _URLError(Exception):
    """An error inside url.Parse, before Parse wraps it as `parse "URL": ...`."""


def _url_unescape(s: str, mode: str) -> str:
    """net/url unescape (mode "host", "zone" or "other"): its checks, then `s` with %XX decoded."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise _URLError(f"invalid URL escape {go_quote(s[i : i + 3])}")
            if mode == "host" and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise _URLError(f"invalid URL escape {go_quote(s[i : i + 3])}")
            if mode == "zone":
                v = chr(int(s[i + 1 : i + 3], 16))
                if s[i : i + 3] != "%25" and v != " " and _host_should_escape(v):
                    raise _URLError(f"invalid URL escape {go_quote(s[i : i + 3])}")
            i += 3
            continue
        if mode in ("host", "zone") and ord(c) < 0x80 and _host_should_escape(c):
            raise _URLError(f"invalid character {go_quote(c)} in host name")
        i += 1
    return _percent_decode(s) if "%" in s else s


def _host_should_escape(c: str) -> bool:
    return not (c.isascii() and c.isalnum()) and c not in _HOST_OK


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _netip_parse_addr(s: str) -> IP:
    """netip.ParseAddr's verdict (zones allowed on IPv6 only); _URLError with a Go-like text."""

    def fail(why: str) -> _URLError:
        return _URLError(f"invalid host: ParseAddr({go_quote(s)}): {why}")

    addr, pct, zone = s.partition("%")
    if ":" not in addr:
        if pct:
            raise fail(f"unexpected character (at {go_quote(pct + zone)})")
        if "." in addr and any(len(f) > 1 and f[0] == "0" for f in addr.split(".")):
            raise fail("IPv4 field has octet with leading zero")
        try:
            return ipaddress.IPv4Address(addr)
        except ValueError:
            raise fail("unable to parse IP" if "." not in addr else "unexpected character") from None
    if pct and not zone:
        raise fail("zone must be a non-empty string")
    try:
        return ipaddress.IPv6Address(addr)
    except ValueError:
        raise fail("unable to parse IP") from None


def _url_parse_host(host: str) -> None:
    """net/url parseHost (Go 1.27): IP literals must be IPv6 addresses, ports digits only, host
    bytes from the allowed set, %-escapes only for non-ASCII bytes (and %25 before a zone)."""
    bracket = host.rfind("[")
    if bracket > 0:
        raise _URLError("invalid IP-literal")
    if bracket == 0:
        close = host.rfind("]")
        if close < 0:
            raise _URLError("missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise _URLError(f"invalid port {go_quote(colon_port)} after host")
        hostname = host[1:close]
        zone = hostname.find("%25")
        if zone >= 0:
            unescaped = _url_unescape(hostname[:zone], "host") + _url_unescape(hostname[zone:], "zone")
        else:
            unescaped = _url_unescape(hostname, "host")
        if isinstance(_netip_parse_addr(unescaped), ipaddress.IPv4Address):
            raise _URLError("invalid IP-literal")
        return
    colon = host.rfind(":")
    if colon >= 0 and not _valid_optional_port(host[colon:]):
        raise _URLError(f"invalid port {go_quote(host[colon:])} after host")
    _url_unescape(host, "host")


def _percent_decode(s: str) -> str:
    """%XX to bytes (the escapes were checked), the result as UTF-8 with bad bytes kept as escapes."""
    out = bytearray()
    i = 0
    raw = s.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x25:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class URL:
    """The parts of Go's url.URL that mox's checks look at."""

    scheme: str
    path: str


def parse_url(raw: str) -> URL:
    """Go's url.Parse (net/url, Go 1.27): the verdict and Go's message (GoSyntaxError).

    Scheme, opaque and relative forms, authority with userinfo and host (IP literals checked with
    netip.ParseAddr, host characters and escapes as parseHost allows them), ports, path and
    fragment escapes. The text after `ParseAddr(...)` of an invalid IP literal is approximate.
    """
    u, sharp, frag = raw.partition("#")
    try:
        url = _url_parse(u)
    except _URLError as e:
        raise GoSyntaxError(f"parse {go_quote(u)}: {e}") from None
    if sharp and frag:
        try:
            _url_unescape(frag, "other")
        except _URLError as e:
            raise GoSyntaxError(f"parse {go_quote(raw)}: {e}") from None
    return url


def _url_parse(raw: str) -> URL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise _URLError("net/url: invalid control character in URL")
    if raw == "*":
        return URL("", "*")
    scheme, rest = "", raw
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                break
            continue
        if c == ":":
            if i == 0:
                raise _URLError("missing protocol scheme")
            scheme, rest = raw[:i].lower(), raw[i + 1 :]
        break
    rest = rest[:-1] if rest.endswith("?") and rest.count("?") == 1 else rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return URL(scheme, "")  # opaque
        if ":" in rest.partition("/")[0]:
            raise _URLError("first path segment in URL cannot contain colon")
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, after = rest[2:].partition("/")
        rest = slash + after
        at = authority.rfind("@")
        _url_parse_host(authority[at + 1 :])
        if at >= 0:
            userinfo = authority[:at]
            if not all((c.isascii() and c.isalnum()) or c in _USERINFO_OK for c in userinfo):
                raise _URLError("net/url: invalid userinfo")
            for part in userinfo.split(":", 1):
                _url_unescape(part, "other")
    return URL(scheme, _url_unescape(rest, "other"))


# ---------------------------------------------------------------------------------------------
# x/net/idna: Lookup.ToASCII and Lookup.ToUnicode (UTS #46, IDNA2008)


class IDNAError(GoSyntaxError):
    """A name x/net/idna's Lookup profile refuses; `str()` is Go's text, `stage` says which call."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage  # "to ascii" or "to unicode"


# Plain, already-canonical-when-lowered ASCII names: LDH labels of 1..63 chars, no leading or
# trailing hyphen and no "--" (A-labels, hyphens in positions 3-4): Go's answer is the name.
_FAST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FAST_DOMAIN_RE = re.compile(rf"{_FAST_LABEL}(?:\.{_FAST_LABEL})*")


class _LabelError(Exception):
    """x/net/idna's labelError and runeError; str() is Go's text."""


def _label_error(label: str) -> _LabelError:
    return _LabelError(f"idna: invalid label {go_quote(label)}")


def _rune_error(cp: int) -> _LabelError:
    return _LabelError(f"idna: disallowed rune U+{cp:04X}")


# x/net/idna's joinStates: state -> joining type -> next state (missing: stateStart).
_START, _VIRAMA, _BEFORE, _BEFORE_VIRAMA, _AFTER, _FAIL = range(6)
_JL, _JD, _JT, _JR, _ZWJ, _ZWNJ, _JVIRAMA = range(1, 8)
_JOIN_STATES: dict[int, dict[int, int]] = {
    _START: {_JL: _BEFORE, _JD: _BEFORE, _ZWNJ: _FAIL, _ZWJ: _FAIL, _JVIRAMA: _VIRAMA},
    _VIRAMA: {_JL: _BEFORE, _JD: _BEFORE},
    _BEFORE: {_JL: _BEFORE, _JD: _BEFORE, _JT: _BEFORE, _ZWNJ: _AFTER, _ZWJ: _FAIL, _JVIRAMA: _BEFORE_VIRAMA},
    _BEFORE_VIRAMA: {_JL: _BEFORE, _JD: _BEFORE, _JT: _BEFORE},
    _AFTER: {_JL: _FAIL, _JD: _BEFORE, _JT: _AFTER, _JR: _START, _ZWNJ: _FAIL, _ZWJ: _FAIL, _JVIRAMA: _AFTER},
    _FAIL: dict.fromkeys((0, _JL, _JD, _JT, _JR, _ZWNJ, _ZWJ, _JVIRAMA), _FAIL),
}
_RTL = frozenset(("R", "AL", "AN"))


def _idna_info(cp: int) -> str:
    """The IDNA table entry: status V, X, I (then attribute r/m/v, joining type, n) or M/D + mapping."""
    return _unicode().idna(cp)


def _is_bidi(cp: int, info: str) -> bool:
    if info[0] in "MD":
        return _unicode().bidi(cp) in _RTL
    return len(info) > 1 and info[1] == "r"


def _validate_and_map(s: str) -> tuple[str, bool]:
    """x/net/idna validateAndMap (Unicode 16+ rules: disallowed runes are kept for validateLabel)."""
    out: list[str] = []
    bidi = changed = may_norm = False
    for c in s:
        cp = ord(c)
        info = _idna_info(cp)
        bidi = bidi or _is_bidi(cp, info)
        status = info[0]
        if status == "M":
            out.append("".join(chr(int(x, 16)) for x in info[1:].split(",") if x))
            changed = True
        elif status == "I":
            changed = True
        else:  # V, X, and D (a deviation is valid when not transitional)
            out.append(c)
            may_norm = may_norm or info.endswith("n")
    mapped = "".join(out)
    if changed or may_norm:
        mapped = nfc(mapped) if not mapped.isascii() else mapped
    return mapped, bidi


def _allowed_std3(c: str) -> bool:
    return ord(c) >= 0x80 or "a" <= c <= "z" or "0" <= c <= "9" or c in "-."


def _validate_label(s: str) -> None:
    """x/net/idna validateLabel for the Lookup profile: hyphens, rune validity, STD3, joiners."""
    if s == "":
        return
    b = s.encode("utf-8", "surrogateescape")
    if len(b) > 4 and b[2:4] == b"--":
        raise _label_error(s)
    if s[0] == "-" or s[-1] == "-":
        raise _label_error(s)
    for c in s:
        if _idna_info(ord(c))[0] not in "VD":
            raise _label_error(s)
        if ord(c) < 0x80 and not _allowed_std3(c):
            raise _rune_error(ord(c))
    first = _idna_info(ord(s[0]))
    if first[0] not in "MD" and len(first) > 1 and first[1] in "mv":
        raise _label_error(s)
    if "\u200c" not in s and "\u200d" not in s:
        return
    st = _START
    for c in s:
        info = _idna_info(ord(c))
        mapped = info[0] in "MD"
        jt = 0 if mapped or len(info) < 3 else int(info[2])
        if c == "\u200d":
            jt = _ZWJ
        elif c == "\u200c":
            jt = _ZWNJ
        st = _JOIN_STATES[st].get(jt, _START)
        if not mapped and len(info) > 1 and info[1] == "v":
            st = _JOIN_STATES[st].get(_JVIRAMA, _START)
    if st in (_FAIL, _AFTER):
        raise _label_error(s)


def _bidi_direction_rtl(s: str) -> bool:
    """bidirule.DirectionString(s) == RightToLeft."""
    u = _unicode()
    return any(u.bidi(ord(c)) in _RTL for c in s)


_BIDI_TRANSITIONS = {  # bidirule: state -> ((next, classes), (next, classes))
    "initial": (("ltr-final", {"L"}), ("rtl-final", {"R", "AL"})),
    "rtl": (("rtl-final", {"R", "AL", "EN", "AN"}), ("rtl", {"ES", "CS", "ET", "ON", "BN", "NSM"})),
    "rtl-final": (("rtl-final", {"R", "AL", "EN", "AN", "NSM"}), ("rtl", {"ES", "CS", "ET", "ON", "BN"})),
    "ltr": (("ltr-final", {"L", "EN"}), ("ltr", {"ES", "CS", "ET", "ON", "BN", "NSM"})),
    "ltr-final": (("ltr-final", {"L", "EN", "NSM"}), ("ltr", {"ES", "CS", "ET", "ON", "BN"})),
}


def _bidi_valid(s: str) -> bool:
    """bidirule.ValidString: the RFC 5893 bidi rule as x/text implements it."""
    u = _unicode()
    state = "initial"
    seen: set[str] = set()
    for c in s:
        cls = u.bidi(ord(c))
        seen.add(cls)
        if "EN" in seen and "AN" in seen:
            return False
        (n0, m0), (n1, m1) = _BIDI_TRANSITIONS[state]
        if cls in m0:
            state = n0
        elif cls in m1:
            state = n1
        else:
            return False  # ruleInvalid is never final
    return state in ("initial", "ltr-final", "rtl-final")


_PUNY_BASE, _TMIN, _TMAX, _SKEW, _DAMP = 36, 1, 26, 38, 700
_MAXINT32 = (1 << 31) - 1


def _puny_adapt(delta: int, num_points: int, first: bool) -> int:
    delta = delta // _DAMP if first else delta // 2
    delta += delta // num_points
    k = 0
    while delta > ((_PUNY_BASE - _TMIN) * _TMAX) // 2:
        delta //= _PUNY_BASE - _TMIN
        k += _PUNY_BASE
    return k + (_PUNY_BASE - _TMIN + 1) * delta // (delta + _SKEW)


def _puny_decode(encoded: str) -> str:
    """x/net/idna decode (RFC 3492 with its checks); _LabelError(encoded) when invalid."""
    if encoded == "":
        return ""
    pos = 1 + encoded.rfind("-")
    if pos == 1:
        raise _label_error(encoded)
    if pos == len(encoded):
        return encoded[:-1]
    output = list(encoded[: pos - 1]) if pos else []
    i, n, bias = 0, 128, 72
    while pos < len(encoded):
        old_i, w = i, 1
        k = _PUNY_BASE
        while True:
            if pos == len(encoded):
                raise _label_error(encoded)
            x = encoded[pos]
            if "0" <= x <= "9":
                digit = ord(x) - ord("0") + 26
            elif "A" <= x <= "Z":
                digit = ord(x) - ord("A")
            elif "a" <= x <= "z":
                digit = ord(x) - ord("a")
            else:
                raise _label_error(encoded)
            pos += 1
            if digit * w > _MAXINT32 - i:
                raise _label_error(encoded)
            i += digit * w
            t = _TMIN if k <= bias else _TMAX if k >= bias + _TMAX else k - bias
            if digit < t:
                break
            if w * (_PUNY_BASE - t) > _MAXINT32:
                raise _label_error(encoded)
            w *= _PUNY_BASE - t
            k += _PUNY_BASE
        if len(output) >= 1024:
            raise _label_error(encoded)
        x_len = len(output) + 1
        bias = _puny_adapt(i - old_i, x_len, old_i == 0)
        n += i // x_len
        i %= x_len
        if n < 0 or n > 0x10FFFF:
            raise _label_error(encoded)
        output.insert(i, chr(n))
        i += 1
    return "".join(output)


def _puny_encode(s: str) -> str:
    """x/net/idna encode with the "xn--" prefix; _LabelError when it cannot."""
    if "\ufffd" in s:
        raise _label_error(s)
    output = [c for c in s if ord(c) < 0x80]
    b = h = len(output)
    if b:
        output.append("-")
    delta, n, bias = 0, 128, 72
    remaining = len(s) - b
    cps = [ord(c) for c in s]
    while remaining:
        m = min(c for c in cps if c >= n)
        if (m - n) * (h + 1) > _MAXINT32 - delta:
            raise _label_error(s)
        delta += (m - n) * (h + 1)
        n = m
        for c in cps:
            if c < n:
                delta += 1
                continue
            if c > n:
                continue
            q = delta
            k = _PUNY_BASE
            while True:
                t = _TMIN if k <= bias else _TMAX if k >= bias + _TMAX else k - bias
                if q < t:
                    break
                d = t + (q - t) % (_PUNY_BASE - t)
                output.append(chr(d + ord("a")) if d < 26 else chr(d - 26 + ord("0")))
                q = (q - t) // (_PUNY_BASE - t)
                k += _PUNY_BASE
            output.append(chr(q + ord("a")) if q < 26 else chr(q - 26 + ord("0")))
            bias = _puny_adapt(delta, h + 1, h == b)
            delta = 0
            h += 1
            remaining -= 1
        delta += 1
        n += 1
    return "xn--" + "".join(output)


def _label_indexes(labels: list[str]) -> range:
    """x/net/idna's labelIter: every label except a last empty one (a trailing dot)."""
    if labels == [""]:
        return range(0)
    return range(len(labels) - 1 if len(labels) > 1 and labels[-1] == "" else len(labels))


def _idna_process(s: str, to_ascii: bool) -> str:
    """x/net/idna Profile.process for the Lookup profile (Go 1.27: the Unicode 16+ algorithm, UTS #46 17.0.0)."""
    s, is_bidi = _validate_and_map(s)
    labels = s.split(".")
    err: _LabelError | None = None
    for i in _label_indexes(labels):
        label = labels[i]
        if label == "":
            continue
        if label.startswith("xn--"):
            enc = label[4:]
            try:
                u = _puny_decode(enc)
            except _LabelError as e:
                err = err or e
                continue
            if err is None and u and u.isascii():
                err = _label_error(enc)
            is_bidi = is_bidi or _bidi_direction_rtl(u)
            labels[i] = u
            if err is None and (nfc(u) != u or any(_idna_info(ord(c))[0] not in "VD" for c in u)):
                err = _label_error(u)
            if err is None:
                try:
                    _validate_label(u)
                except _LabelError as e:
                    err = e
        elif err is None:
            try:
                _validate_label(label)
            except _LabelError as e:
                err = e
    if is_bidi and err is None:
        for i in _label_indexes(labels):
            if not _bidi_valid(labels[i]):
                err = _label_error(s)
                break
    if to_ascii:
        for i in _label_indexes(labels):
            if not labels[i].isascii():
                try:
                    labels[i] = _puny_encode(labels[i])
                except _LabelError as e:
                    err = err or e
    if err is not None:
        raise err
    return ".".join(labels)


def idna_lookup(s: str) -> tuple[str, str]:
    """``idna.Lookup.ToASCII(s)`` and ``ToUnicode(s)`` of Go's x/net/idna (generated tables).

    Raises IDNAError with Go's message. Stricter than Go where Go is lax (see the README): empty
    labels and over-long labels and names are refused.
    """
    if s == "":
        return "", ""  # Go's idna accepts the empty name.
    if s.isascii():
        low = s.lower()  # For ASCII, UTS #46 mapping is exactly lower-casing.
        if len(low) <= 253 and "--" not in low and _FAST_DOMAIN_RE.fullmatch(low):
            return low, low
    try:
        ascii_name = _idna_process(s, True)
    except _LabelError as e:
        raise IDNAError("to ascii", str(e)) from None
    try:
        unicode_name = _idna_process(s, False)
    except _LabelError as e:
        raise IDNAError("to unicode", str(e)) from None
    for label in ascii_name.split("."):
        if label == "":
            raise IDNAError("to ascii", f"idna: empty label in {go_quote(s)}")
        if len(label) > 63:
            raise IDNAError("to ascii", f"idna: label {go_quote(label)} longer than 63 octets")
    if len(ascii_name) > 253:
        raise IDNAError("to ascii", f"idna: domain name {go_quote(s)} longer than 253 octets")
    return ascii_name, unicode_name


# ---------------------------------------------------------------------------------------------
# regexp: Compile


@functools.lru_cache(maxsize=16384)
def regexp_compile_error(pattern: str) -> str | None:
    """regexp.Compile's verdict on `pattern` (Go 1.27's regexp/syntax, ported in goregexp): Go's
    error text, or None."""
    from reconciler.mox import goregexp

    return goregexp.compile_error(pattern)


# ---------------------------------------------------------------------------------------------
# encoding/base64, encoding/pem


_RAWURL_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def base64_rawurl_error(buf: bytes) -> str | None:
    """base64.RawURLEncoding.Decode's error, or None (Go skips CR and LF)."""
    n = 0
    for b in buf:
        if b in (0x0A, 0x0D):
            continue
        if b not in _RAWURL_ALPHABET:
            return f"illegal base64 data at input byte {n}"
        n += 1
    if n % 4 == 1:
        return f"illegal base64 data at input byte {n}"
    return None


@dataclass(frozen=True, slots=True)
class PEMBlock:
    """A decoded PEM block: its type (`PRIVATE KEY`) and DER bytes (headers are dropped)."""

    type: str
    der: bytes


def pem_decode_rest(data: bytes) -> tuple[PEMBlock | None, bytes]:
    """``pem.Decode``: the first well-formed block anywhere in `data` (or None) and the rest after it.

    Go skips text before `-----BEGIN `, needs a matching `-----END <type>-----` and valid base64;
    a malformed block is skipped and the search continues after its BEGIN line. Headers
    (`Key: value` lines) are allowed and ignored, like mox ignores them.
    """
    rest = data
    while True:
        i = rest.find(b"-----BEGIN ")
        if i < 0:
            return None, data
        if i > 0 and rest[i - 1 : i] not in (b"\n",):
            # Go requires BEGIN at the start of a line (or of the input).
            rest = rest[i + 11 :]
            continue
        after = rest[i + 11 :]
        eol = after.find(b"\n")
        line = after if eol < 0 else after[:eol]
        line = line.rstrip(b" \t\r")
        if not line.endswith(b"-----"):
            rest = after
            continue
        typ = line[:-5]
        body = b"" if eol < 0 else after[eol + 1 :]
        end_marker = b"-----END " + typ + b"-----"
        j = body.find(b"\n" + end_marker)
        if body.startswith(end_marker):
            j = -1
            content = b""
            after_end = body[len(end_marker):]
        elif j < 0:
            rest = after
            continue
        else:
            content = body[:j]
            after_end = body[j + 1 + len(end_marker):]
        lines = content.split(b"\n")
        # Skip headers: lines containing ':' before the first blank line.
        if any(b":" in ln for ln in lines[:1]):
            k = 0
            while k < len(lines) and lines[k].strip() and b":" in lines[k]:
                k += 1
            lines = lines[k:]
        b64 = b"".join(ln.strip(b" \t\r") for ln in lines)
        try:
            der = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            rest = after
            continue
        nl = after_end.find(b"\n")
        return PEMBlock(typ.decode("ascii", "replace"), der), (b"" if nl < 0 else after_end[nl + 1 :])


def pem_decode(data: bytes) -> PEMBlock | None:
    """``pem.Decode``'s block: the first well-formed block anywhere in `data`, or None."""
    return pem_decode_rest(data)[0]


def pem_encode(block_type: str, der: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """``pem.Encode``: headers (Proc-Type first, the others sorted), a blank line, base64 in 64 columns."""
    b64 = base64.b64encode(der).decode("ascii")
    body = "".join(b64[i : i + 64] + "\n" for i in range(0, len(b64), 64))
    hdrs = headers or {}
    keys = sorted(hdrs, key=lambda k: (k != "Proc-Type", k))
    head = "".join(f"{k}: {hdrs[k]}\n" for k in keys)
    if head:
        head += "\n"
    return f"-----BEGIN {block_type}-----\n{head}{body}-----END {block_type}-----\n".encode()


# ---------------------------------------------------------------------------------------------
# os/user: Lookup as a static Go binary (no cgo) does it, reading /etc/passwd itself

PASSWD = Path("/etc/passwd")


@dataclass(frozen=True, slots=True)
class User:
    """The fields of Go's user.User that mox reads."""

    username: str
    uid: str
    gid: str


def user_lookup(name: str, passwd: Path = PASSWD) -> User | None:
    """user.Lookup(name) in pure Go (os/user lookup_unix.go findUsername): the first line of
    /etc/passwd, after trimming blanks, that is not a comment, has at least six fields, this name
    (not starting with + or -) and numeric uid and gid (strconv.Atoi). None when there is no such
    line or the file cannot be read (Go then returns an error; mox treats both alike)."""
    try:
        data = passwd.read_bytes()
    except OSError:
        return None
    needle = (name + ":").encode("utf-8", "surrogateescape")
    for raw in data.split(b"\n"):
        line = raw.strip(b" \t\r\n\v\f")
        if not line or line.startswith(b"#") or needle not in line or line.count(b":") < 6:
            continue
        parts = line.decode("utf-8", "surrogateescape").split(":", 6)
        if len(parts) < 6 or parts[0] != name or parts[0][:1] in ("", "+", "-"):
            continue
        if not (_atoi_ok(parts[2]) and _atoi_ok(parts[3])):
            continue
        return User(parts[0], parts[2], parts[3])
    return None


# ---------------------------------------------------------------------------------------------
# os: the text of ReadFile's errors


def _errno_text(e: OSError) -> str:
    """Go's syscall.Errno text: the C strerror, lower-cased first letter (e.g. `no such file ...`)."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


def read_file_error(path: Path, e: OSError) -> str:
    """os.ReadFile's error: `open <path>: <errno text>`, `read <path>: is a directory`."""
    op = "read" if e.errno == errno.EISDIR else "open"
    return f"{op} {path}: {_errno_text(e)}"
