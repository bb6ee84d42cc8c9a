"""Seeded regexps for comparing our verdicts (reconciler/mox/goregexp.py) with the real mox's.

`patterns(seed, n)` mixes three kinds, each drawn where Go's regexp/syntax decides something a
grammar alone does not: random compositions of its syntax (escapes, classes, Unicode names of
several Unicode versions, flags, named groups, repetitions, invalid UTF-8 aside), and patterns at
its limits (nesting height 1000 counted over every kind of node, repeat counts and their products
around 1000, compiled size around 3,355,443 instructions). The same seed gives the same patterns
on every machine. `config(patterns)` puts them into one domains.conf (one destination ruleset per
pattern), so one `mox config test` judges hundreds: mox reports every invalid one on its own line.
"""

from __future__ import annotations

import random

from .mutate import Config, golden

UNICODE_NAMES = [
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "LC", "Lc", "lc", "M", "Mn", "Nd", "N", "P", "Pd", "S", "Sm", "Z", "Zl", "Zp",
    "Zs", "C", "Cc", "Cf", "Co", "Cs", "Cn", "Any", "any", "ASCII", "Ascii", "Assigned", "Greek", "greek", "Latin",
    "Han", "Cyrillic", "Old_Italic", "old italic", "OLD-ITALIC", "Common", "Inherited", "Unknown", "Zzzz", "Latn",
    "Garay", "Todhri", "Kawi", "Nag_Mundari", "Sidetic", "Tolong_Siki", "Beria_Erfe", "Tai_Yo", "Letter",
    "Cased_Letter", "Uppercase_Letter", "digit", "punct", "cntrl", "Combining_Mark", "Unassigned", "Other",
    "Private_Use", "White_Space", "Katakana_Or_Hiragana", "L&", "gc=L", "", "^", "^Greek", "^L", "Nope", "Lx",
    "Ĳ", "GreeK",
]
ATOMS = [
    "a", "b", "K", "k", "\u212a", "ß", "ſ", "é", "Σ", "σ", "ς", "ǅ", "İ", "ı", "\U00010d50", "\U00010d70", "☕",
    ".", "^", "$", "\\A", "\\z", "\\Z", "\\b", "\\B", "\\C", "\\d", "\\D", "\\s", "\\S", "\\w", "\\W", "\\.",
    "\\-", "\\_", "\\ ", "\\#", "\\q", "\\8", "\\1", "\\0", "\\07", "\\177", "\\400", "\\x41", "\\x4", "\\xZZ",
    "\\x{41}", "\\x{}", "\\x{10FFFF}", "\\x{110000}", "\\x{1F600}", "\\a", "\\f", "\\n", "\\r", "\\t", "\\v",
    "\\e", "\\Qa.b\\E", "\\Q*", "\\E", "\\pL", "\\PL", "\\pN", "\\pl", "\\pX", "\\p", "\\p{", "\\p{Greek",
    "{", "}", "{,1}", "{1", "]", "[", "(?:)", "()", "|", "\\", "/", "#", "@",
]
CLASS_ITEMS = [
    "a", "z", "a-z", "z-a", "A-Z", "0-9", "a-", "-a", "-", "]", "^", "\\d", "\\D", "\\s", "\\w", "\\W", "\\b",
    "\\n", "\\x41", "\\x{10FFFF}", "[:alpha:]", "[:^alpha:]", "[:word:]", "[:foo:]", "[:ALPHA:]", "[:alpha",
    "[", "\\pL", "\\P{Greek}", "\\p{Foo}", "\\d-z", "a-\\d", "\\.-\\/", "\\x00-\\x{10FFFF}", "é-ü", "K-k",
    "\\x{1e900}-\\x{1e943}", "\u212a", "ſ",
]
REPEATS = ["*", "+", "?", "*?", "+?", "??", "{2}", "{0}", "{0,}", "{2,5}", "{5,2}", "{1000}", "{1001}",
           "{0,1000}", "{0,1001}", "{999,1000}", "{01}", "{1,01}", "{99999999999}", "{1,99999999999}", "{,3}",
           "{3,}?", "{ 1}", "**", "*+", "{2}{3}", "{2}*"]
GROUP_OPEN = ["(", "(?:", "(?i)", "(?i:", "(?s:", "(?m)", "(?U)", "(?-i)", "(?i-s:", "(?-)", "(?i-)", "(?x)",
              "(?P<name>", "(?P<n1>", "(?<n>", "(?P<>", "(?P<é>", "(?P<a-b>", "(?'n'", "(?=", "(?!", "(?<=",
              "(?<!", "(?#", "(?P=n)", "(?P<n", "(?", "(?i:(?-i:"]


def _class(rng: random.Random) -> str:
    body = "".join(rng.choice(CLASS_ITEMS) for _ in range(rng.randint(0, 3)))
    if rng.random() < 0.3:
        body = "^" + body
    if rng.random() < 0.2:
        body = "\\p{" + rng.choice(UNICODE_NAMES) + "}" + body
    return "[" + body + ("]" if rng.random() < 0.9 else "")


def _piece(rng: random.Random, depth: int) -> str:
    r = rng.random()
    if r < 0.35:
        piece = rng.choice(ATOMS)
    elif r < 0.5:
        piece = _class(rng)
    elif r < 0.65:
        piece = "\\" + rng.choice("pP") + "{" + rng.choice(UNICODE_NAMES) + "}"
    elif r < 0.85 and depth < 3:
        inner = "".join(_piece(rng, depth + 1) for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.3:
            inner += "|" + "".join(_piece(rng, depth + 1) for _ in range(rng.randint(0, 2)))
        piece = rng.choice(GROUP_OPEN) + inner + (")" if rng.random() < 0.9 else "")
    else:
        piece = rng.choice(ATOMS[:20]) * rng.randint(1, 4)
    if rng.random() < 0.35:
        piece += rng.choice(REPEATS)
    return piece


def _syntax(rng: random.Random) -> str:
    flags = rng.choice(["", "", "", "(?i)", "(?s)", "(?U)", "(?im)"])
    return flags + "".join(_piece(rng, 0) for _ in range(rng.randint(1, 5)))


# Kinds of nesting: (opening, innermost, closing), each repeated n times around the innermost.
NESTINGS = {
    "capture": ("(", "a", ")"), "noncapture-star": ("(?:", "a*", ")"), "star-group": ("(?:", "a", ")*"),
    "plus-capture": ("(", "a", ")+"), "alt": ("(?:a|", "b", ")"), "concat-capture": ("(x", "", ")"),
    "repeat-group": ("(?:", "a", "){1}"), "named": ("(?P<g>", "a", ")"), "flags": ("(?i:", "a", ")"),
    "class-capture": ("([ab]", "", ")"),
}


def _nesting(rng: random.Random) -> str:
    """Around Go's maximum tree height (1000): every node counts, not only captures."""
    n = rng.choice([997, 998, 999, 1000, 1001, 499, 500, 501, 332, 333, 334])
    opening, inner, closing = NESTINGS[rng.choice(list(NESTINGS))]
    return opening * n + inner + closing * n


def _limits(rng: random.Random, heavy: bool) -> str:
    """Repeat counts and compiled size around Go's limits (3,355,443 instructions, 33,554,432 runes
    in classes). Go compiles what it accepts, which takes mox seconds for a program near the size
    limit: the `heavy` ones just under a limit only come with heavy=True (the held-out runs)."""
    kinds = ["product", "size-literal", "size-class", "size-star", "huge-count"]
    kind = rng.choice([*kinds, "size-alt", "runes"] if heavy else kinds)
    if kind == "product":
        a, b = rng.choice([(10, 100), (10, 101), (2, 500), (2, 501), (1000, 1), (1000, 0), (0, 1001), (1, 1000),
                           (31, 32), (32, 32)])
        return f"(?:(?:a{{{a}}}){{{b}}})"
    if kind == "size-literal":  # 1000 copies of n literal runes
        n = rng.choice([3356, 3357, *([3355, 3354, 1678] if heavy else [])])
        return "(?:" + "ab" * (n // 2) + "a" * (n % 2) + "){1000}"
    if kind == "size-class":  # a class is one instruction
        n = rng.choice([3356, *([3355] if heavy else [])])
        return "(?:" + "[ab]" * n + "){1000}"
    if kind == "size-star":  # x* is three
        n = rng.choice([1119, 1677, *([1118] if heavy else [])])
        return "(?:" + "a*" * n + "){1000}"
    if kind == "size-alt":  # factored alternations
        n = rng.choice([1676, 1677, 1678, 1118, 1119])
        return "(?:" + "|".join(f"x{i:04d}" for i in range(n)) + rng.choice(["){400}", "){600}", ")"])
    if kind == "runes":  # \pL holds 684 ranges (Unicode 17): 24,528 of them fit
        return "\\pL" * rng.choice([24528, 24529])
    return rng.choice(["a{1000}" * 3356, *(["a{1000}" * 3355, "(?:ab{1000}){1}" * 3300, "(?:a{1000}){0}" * 4000]
                                          if heavy else [])])


def patterns(seed: int, n: int, *, heavy: bool = False) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        r = rng.random()
        p = _syntax(rng) if r < 0.8 else _nesting(rng) if r < 0.9 else _limits(rng, heavy)
        if p and p == p.strip() and not any(c in p for c in "\t\r\n"):
            out.append(p)
    return out


def unicode_names() -> list[str]:
    """\\p{...} with every script, category and category alias Go 1.27 knows (our Unicode 17 tables
    and goregexp's lists), each as written, in lower case, spaced and negated, plus near misses."""
    from reconciler.mox import goregexp
    from reconciler.mox.golang import unicode_data

    names = sorted(unicode_data().scripts) + list(goregexp._CATEGORIES) + list(goregexp._CATEGORY_ALIASES)
    out: list[str] = []
    for name in names:
        out += [f"\\p{{{name}}}", f"\\P{{{name.lower()}}}", f"\\p{{^{name.replace('_', ' ').upper()}}}",
                f"(?i)[\\p{{{name}}}x]", f"\\p{{{name}s}}"]
    return out


def config(pats: list[str]) -> Config:
    """Golden step 34 with one destination `rx<i>@example.org` per pattern, as SMTPMailFromRegexp."""
    c = golden("34")
    block = []
    for i, p in enumerate(pats):
        block += [f"rx{i}@example.org:", "\tRulesets:", "\t\t-", f"\t\t\tSMTPMailFromRegexp: {p}", "\t\t\tMailbox: Lists"]
    c.add(c.domains, ["Accounts", "alice", "Destinations"], block)
    return c


def verdicts(output: str) -> dict[int, str]:
    """Error text per pattern index from a config test's output (ours or mox's)."""
    out = {}
    for line in output.splitlines():
        head, sep, rest = line.partition('@example.org": ruleset 1: invalid SMTPMailFrom regular expression: ')
        if sep and '"rx' in head:
            out[int(head.rsplit('"rx', 1)[1])] = rest
    return out
