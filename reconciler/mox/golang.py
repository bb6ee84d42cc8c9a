"""Go's scalar syntax, as mox's config files use it.

sconf reads and writes scalars with Go's strconv/time/fmt rules, which differ from Python's
(`int("1_000")`, `float(" 1")`, `"%f" % inf`, no duration type). Everything here follows Go so a
value reads and writes exactly as mox would.
"""

from __future__ import annotations

import math
import re

_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_DEC_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HEX_FLOAT_RE = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+\Z")
_SPECIAL_FLOATS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class GoSyntaxError(ValueError):
    """A scalar that Go's parser rejects; the message is Go's."""


class Duration(int):
    """A Go time.Duration: whole nanoseconds, written as Go's Duration.String()."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Duration({format_duration(self)!r})"

    def __str__(self) -> str:
        return format_duration(self)


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
    if c.isprintable():
        # Python's isprintable (not C*, not Z* except ASCII space) is the same
        # definition as Go's unicode.IsPrint (L, M, N, P, S and U+0020).
        return c
    special = _GO_ESCAPES.get(c)
    if special is not None:
        return special
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(s: str) -> str:
    """Quote like Go's ``strconv.Quote`` / ``%q``, the quoting in mox's error texts.

    Python's ``repr`` differs (single quotes, ``\\xe9`` for printable letters),
    so messages built with it would not match mox's.
    """
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return '"' + "".join(_go_quote_char(c) for c in s) + '"'


def parse_int(s: str) -> int:
    """strconv.ParseInt(s, 10, 64): ASCII digits with an optional sign, nothing else."""
    if not _INT_RE.match(s):
        raise GoSyntaxError(f"strconv.ParseInt: parsing {go_quote(s)}: invalid syntax")
    value = int(s)
    if not INT64_MIN <= value <= INT64_MAX:
        raise GoSyntaxError(f"strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    return value


def parse_float(s: str) -> float:
    """strconv.ParseFloat(s, 64): decimal, hex (with p exponent), inf/infinity/nan."""
    body = s[1:] if s[:1] in "+-" else s
    special = _SPECIAL_FLOATS.get(body.lower())
    if special is not None and not (math.isnan(special) and body != s):
        return -special if s.startswith("-") else special
    if _DEC_FLOAT_RE.match(s):
        value = float(s)
    elif _HEX_FLOAT_RE.match(s):
        value = float.fromhex(s)
    else:
        raise GoSyntaxError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax")
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
