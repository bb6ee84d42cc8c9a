"""Go 1.27's `regexp.Compile` verdict: a port of the checks of `regexp/syntax` (parse.go).

mox compiles the regexps of its config (account junk flags, ruleset header/SMTP MAIL FROM/message
From regexps, web handler paths) with Go's `regexp.Compile`, whose only errors come from
`syntax.Parse` with the Perl flags. Whether Go accepts a pattern depends on more than its
grammar: the parser builds its tree incrementally (literal strings merged, alternations factored,
character classes merged and simplified, nodes recycled) and stops with "expression too large"
or "expression nests too deeply" when that tree exceeds Go's limits of compiled size, runes in
character classes or height, measured at the moment each node is built. So this module parses
exactly as Go's parser does (its stack, its node recycling, its class arithmetic), with Go's
Unicode 17 tables (`golang._unicode`), and reports Go's error, text included:
`error parsing regexp: <what>: `<where>``.

Written from reading regexp/syntax (parse.go: parser, Parse, parseRepeat, parsePerlFlags,
parseEscape, parseClass, parseUnicodeClass, the limit checks; regexp.go: Equal). Strings are
Python strings; a lone surrogate (an undecodable byte of the config file) is invalid UTF-8.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from reconciler.mox.golang import unicode_data

# Op, in Go's order (regexp.go): comparisons between ops are part of the algorithm.
NO_MATCH, EMPTY_MATCH, LITERAL, CHAR_CLASS, ANY_CHAR_NOT_NL, ANY_CHAR = 1, 2, 3, 4, 5, 6
BEGIN_LINE, END_LINE, BEGIN_TEXT, END_TEXT, WORD_BOUNDARY, NO_WORD_BOUNDARY = 7, 8, 9, 10, 11, 12
CAPTURE, STAR, PLUS, QUEST, REPEAT, CONCAT, ALTERNATE = 13, 14, 15, 16, 17, 18, 19
PSEUDO = LEFT_PAREN = 128
VERTICAL_BAR = 129

# Flags
FOLD_CASE, CLASS_NL, DOT_NL, ONE_LINE, NON_GREEDY, PERL_X, UNICODE_GROUPS, WAS_DOLLAR = (
    1, 4, 8, 16, 32, 64, 128, 256)
PERL = CLASS_NL | ONE_LINE | PERL_X | UNICODE_GROUPS  # what regexp.Compile parses with
FLAG_BITS = 0xFFFF  # Flags is a uint16

MAX_HEIGHT = 1000
MAX_SIZE = (128 << 20) // 40  # compiled instructions
MAX_RUNES = (128 << 20) // 4
MAX_REPEAT = 1000
MAX_RUNE = 0x10FFFF
MIN_FOLD, MAX_FOLD = 0x41, 0x1E943

# Error codes (parse.go ErrorCode)
INVALID_CHAR_CLASS = "invalid character class"
INVALID_CHAR_RANGE = "invalid character class range"
INVALID_ESCAPE = "invalid escape sequence"
INVALID_NAMED_CAPTURE = "invalid named capture"
INVALID_PERL_OP = "invalid or unsupported Perl syntax"
INVALID_REPEAT_OP = "invalid nested repetition operator"
INVALID_REPEAT_SIZE = "invalid repeat count"
INVALID_UTF8 = "invalid UTF-8"
MISSING_BRACKET = "missing closing ]"
MISSING_PAREN = "missing closing )"
MISSING_REPEAT_ARGUMENT = "missing argument to repetition operator"
TRAILING_BACKSLASH = "trailing backslash at end of expression"
UNEXPECTED_PAREN = "unexpected )"
NESTING_DEPTH = "expression nests too deeply"
LARGE = "expression too large"


class RegexpError(Exception):
    """syntax.Error: `str()` is Go's message."""

    def __init__(self, code: str, expr: str) -> None:
        super().__init__(f"error parsing regexp: {code}: `{expr}`")
        self.code = code
        self.expr = expr


class _Limit(Exception):
    """The parser's panics (ErrLarge, ErrNestingDepth): reported with the whole pattern."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Node:
    """One syntax.Regexp. Objects are recycled like Go's (a free list), because Go's size cache
    keeps entries of recycled nodes."""

    __slots__ = ("cap", "flags", "max", "min", "name", "op", "runes", "sub")

    def __init__(self) -> None:
        self.reset(0)

    def reset(self, op: int) -> None:
        self.op = op
        self.flags = 0
        self.sub: list[Node] = []
        self.runes: Runes = []
        self.min = self.max = self.cap = 0
        self.name = ""


# --- character classes: lists of lo, hi pairs, as Go keeps them


Runes = list[int] | tuple[int, ...]  # a tuple is a shared Unicode table, copied before a change


def _sort_key(r: Runes) -> Callable[[int], tuple[int, int]]:
    return lambda i: (r[2 * i], -r[2 * i + 1])


def clean_class(r: Runes) -> list[int]:
    """cleanClass: ranges sorted (lo up, hi down) and merged."""
    order = sorted(range(len(r) // 2), key=_sort_key(r))
    pairs = [x for i in order for x in (r[2 * i], r[2 * i + 1])]
    if len(pairs) < 2:
        return pairs
    w = 2
    for i in range(2, len(pairs), 2):
        lo, hi = pairs[i], pairs[i + 1]
        if lo <= pairs[w - 1] + 1:
            if hi > pairs[w - 1]:
                pairs[w - 1] = hi
            continue
        pairs[w], pairs[w + 1] = lo, hi
        w += 2
    return pairs[:w]


def append_range(r: Runes, lo: int, hi: int) -> list[int]:
    """appendRange: extends the last or next-to-last range when it overlaps or abuts."""
    if isinstance(r, tuple):
        r = list(r)
    n = len(r)
    for i in (2, 4):
        if n >= i:
            rlo, rhi = r[n - i], r[n - i + 1]
            if lo <= rhi + 1 and rlo <= hi + 1:
                if lo < rlo:
                    r[n - i] = lo
                if hi > rhi:
                    r[n - i + 1] = hi
                return r
    r.extend((lo, hi))
    return r


def append_folded_range(r: Runes, lo: int, hi: int) -> list[int]:
    """appendFoldedRange: lo-hi and every code point simple case folding reaches from it."""
    r = list(r)
    if (lo <= MIN_FOLD and hi >= MAX_FOLD) or hi < MIN_FOLD or lo > MAX_FOLD:
        return append_range(r, lo, hi)
    if lo < MIN_FOLD:
        r = append_range(r, lo, MIN_FOLD - 1)
        lo = MIN_FOLD
    if hi > MAX_FOLD:
        r = append_range(r, MAX_FOLD + 1, hi)
        hi = MAX_FOLD
    fold = unicode_data().simple_fold
    for c in range(lo, hi + 1):
        r = append_range(r, c, c)
        f = fold(c)
        while f != c:
            r = append_range(r, f, f)
            f = fold(f)
    return r


def append_class(r: Runes, x: Runes) -> list[int]:
    out = list(r)
    for i in range(0, len(x), 2):
        out = append_range(out, x[i], x[i + 1])
    return out


def append_folded_class(r: Runes, x: Runes) -> list[int]:
    out = list(r)
    for i in range(0, len(x), 2):
        out = append_folded_range(out, x[i], x[i + 1])
    return out


def append_negated_class(r: Runes, x: Runes) -> list[int]:
    r = list(r)
    next_lo = 0
    for i in range(0, len(x), 2):
        lo, hi = x[i], x[i + 1]
        if next_lo <= lo - 1:
            r = append_range(r, next_lo, lo - 1)
        next_lo = hi + 1
    if next_lo <= MAX_RUNE:
        r = append_range(r, next_lo, MAX_RUNE)
    return r


def negate_class(r: Runes) -> list[int]:
    return append_negated_class([], r)


def append_literal(r: Runes, x: int, flags: int) -> list[int]:
    return append_folded_range(r, x, x) if flags & FOLD_CASE else append_range(r, x, x)


# Go's unicode tables for \p{...}: a table is a flat lo, hi list (appendTable of a RangeTable
# gives the same ranges, merged); `fold` the code points that simple case folding adds.

_PERL_GROUPS: dict[str, tuple[int, list[int]]] = {}
_POSIX_GROUPS: dict[str, tuple[int, list[int]]] = {}
for _name, _class in (("d", [0x30, 0x39]), ("s", [0x9, 0xA, 0xC, 0xD, 0x20, 0x20]),
                      ("w", [0x30, 0x39, 0x41, 0x5A, 0x5F, 0x5F, 0x61, 0x7A])):
    _PERL_GROUPS["\\" + _name] = (1, _class)
    _PERL_GROUPS["\\" + _name.upper()] = (-1, _class)
for _name, _class in (
    ("alnum", [0x30, 0x39, 0x41, 0x5A, 0x61, 0x7A]), ("alpha", [0x41, 0x5A, 0x61, 0x7A]), ("ascii", [0, 0x7F]),
    ("blank", [0x9, 0x9, 0x20, 0x20]), ("cntrl", [0, 0x1F, 0x7F, 0x7F]), ("digit", [0x30, 0x39]),
    ("graph", [0x21, 0x7E]), ("lower", [0x61, 0x7A]), ("print", [0x20, 0x7E]),
    ("punct", [0x21, 0x2F, 0x3A, 0x40, 0x5B, 0x60, 0x7B, 0x7E]), ("space", [0x9, 0xD, 0x20, 0x20]),
    ("upper", [0x41, 0x5A]), ("word", [0x30, 0x39, 0x41, 0x5A, 0x5F, 0x5F, 0x61, 0x7A]),
    ("xdigit", [0x30, 0x39, 0x41, 0x46, 0x61, 0x66]),
):
    _POSIX_GROUPS[f"[:{_name}:]"] = (1, _class)
    _POSIX_GROUPS[f"[:^{_name}:]"] = (-1, _class)

_CATEGORIES = ("C", "Cc", "Cf", "Cn", "Co", "Cs", "L", "LC", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me",
               "Mn", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk",
               "Sm", "So", "Z", "Zl", "Zp", "Zs")
# unicode.CategoryAliases (PropertyValueAliases.txt, gc): long and other names of the categories.
_CATEGORY_ALIASES = {
    "Other": "C", "Control": "Cc", "cntrl": "Cc", "Format": "Cf", "Unassigned": "Cn", "Private_Use": "Co",
    "Surrogate": "Cs", "Letter": "L", "Cased_Letter": "LC", "Lowercase_Letter": "Ll", "Modifier_Letter": "Lm",
    "Other_Letter": "Lo", "Titlecase_Letter": "Lt", "Uppercase_Letter": "Lu", "Mark": "M", "Combining_Mark": "M",
    "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Nonspacing_Mark": "Mn", "Number": "N", "Decimal_Number": "Nd",
    "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No", "Punctuation": "P", "punct": "P",
    "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd", "Close_Punctuation": "Pe",
    "Final_Punctuation": "Pf", "Initial_Punctuation": "Pi", "Other_Punctuation": "Po",
    "Open_Punctuation": "Ps", "Symbol": "S", "Currency_Symbol": "Sc", "Modifier_Symbol": "Sk",
    "Math_Symbol": "Sm", "Other_Symbol": "So", "Separator": "Z", "Line_Separator": "Zl",
    "Paragraph_Separator": "Zp", "Space_Separator": "Zs",
}




def canonical_name(name: str) -> str:
    """canonicalName: separators (_ - space) dropped, the first letter upper case, the rest lower
    case (ASCII only), so \\p{old italic} finds Old_Italic."""
    out = []
    first = True
    for c in name:
        if c in "_- ":
            continue
        if first:
            out.append(c.upper() if "a" <= c <= "z" else c)
            first = False
        else:
            out.append(c.lower() if "A" <= c <= "Z" else c)
    return "".join(out)


Table = tuple[tuple[int, ...], tuple[int, ...] | None, int]  # (table, fold table, sign)
_TABLE_CACHE: dict[str, Table | None] = {}


def _flat(ranges: list[tuple[int, int]]) -> tuple[int, ...]:
    return tuple(x for lo_hi in ranges for x in lo_hi)


def _in_table(table: tuple[int, ...], c: int) -> bool:
    i = bisect.bisect_left(table, c)
    return (i < len(table) and table[i] == c) or i % 2 == 1


def _fold_exceptions(table: tuple[int, ...]) -> tuple[int, ...] | None:
    """FoldCategory/FoldScript: code points outside `table` equivalent under simple case folding
    to one inside; None when there are none (Go has no entry then)."""
    u = unicode_data()
    extra: set[int] = set()
    for c in u.orbit.keys() | u.lower_cp.keys() | u.upper_cp.keys():  # the code points that fold at all
        if not _in_table(table, c):
            continue
        if c in u.orbit:
            f = u.orbit[c]
            while f != c:
                extra.add(f)
                f = u.orbit[f]
        else:
            extra.update((u.lower_cp.get(c, c), u.upper_cp.get(c, c)))
    extra = {c for c in extra if not _in_table(table, c)}
    if not extra:
        return None
    out: list[int] = []
    for c in sorted(extra):
        append_range(out, c, c)
    return tuple(out)


def unicode_table(name: str) -> Table | None:
    """unicodeTable: (table, fold table, sign) for a \\p{name}, or None."""
    key = canonical_name(name)
    if key in _TABLE_CACHE:
        return _TABLE_CACHE[key]
    u = unicode_data()
    result: Table | None = None
    if key == "Any":
        result = ((0, MAX_RUNE), (0, MAX_RUNE), 1)
    elif key == "Assigned":
        cn = _flat(u.runs("category", "Cn"))
        result = (cn, cn, -1)
    elif key == "Ascii":
        result = ((0, 0x7F), (0, 0x7F, 0x17F, 0x17F, 0x212A, 0x212A), 1)
    else:
        categories = {canonical_name(c): c for c in _CATEGORIES}
        categories.update({canonical_name(a): c for a, c in _CATEGORY_ALIASES.items()})
        scripts = {canonical_name(s): s for s in u.scripts}
        if key in categories:
            cat = categories[key]
            if cat == "LC":
                table = tuple(clean_class(_flat(
                    sorted(u.runs("category", "Lu") + u.runs("category", "Ll") + u.runs("category", "Lt")))))
            else:
                table = _flat(u.runs("category", cat))
            result = (table, _fold_exceptions(table), 1)
        elif key in scripts:
            table = _flat(u.runs("script", scripts[key]))
            result = (table, _fold_exceptions(table), 1)
    _TABLE_CACHE[key] = result
    return result


def _is_char_class(re: Node) -> bool:
    return (re.op == LITERAL and len(re.runes) == 1) or re.op in (CHAR_CLASS, ANY_CHAR_NOT_NL, ANY_CHAR)


def _match_rune(re: Node, r: int) -> bool:
    if re.op == LITERAL:
        return len(re.runes) == 1 and re.runes[0] == r
    if re.op == CHAR_CLASS:
        return any(re.runes[i] <= r <= re.runes[i + 1] for i in range(0, len(re.runes), 2))
    return re.op == ANY_CHAR or (re.op == ANY_CHAR_NOT_NL and r != 0x0A)


def _merge_char_class(dst: Node, src: Node) -> None:
    """mergeCharClass: dst = dst|src (dst.op >= src.op)."""
    if dst.op == ANY_CHAR_NOT_NL:
        if _match_rune(src, 0x0A):
            dst.op = ANY_CHAR
    elif dst.op == CHAR_CLASS:
        if src.op == LITERAL:
            dst.runes = append_literal(dst.runes, src.runes[0], src.flags)
        else:
            dst.runes = append_class(dst.runes, src.runes)
    elif dst.op == LITERAL:
        if src.runes[0] == dst.runes[0] and src.flags == dst.flags:
            return
        dst.op = CHAR_CLASS
        dst.runes = append_literal(append_literal([], dst.runes[0], dst.flags), src.runes[0], src.flags)


def _clean_alt(re: Node) -> None:
    if re.op == CHAR_CLASS:
        re.runes = clean_class(re.runes)
        if re.runes == [0, MAX_RUNE]:
            re.runes, re.op = [], ANY_CHAR
        elif re.runes == [0, 0x09, 0x0B, MAX_RUNE]:
            re.runes, re.op = [], ANY_CHAR_NOT_NL


def _equal(x: Node | None, y: Node | None) -> bool:
    """Regexp.Equal (iteratively: the trees can be 1000 deep)."""
    pairs = [(x, y)]
    while pairs:
        a, b = pairs.pop()
        if a is None or b is None:
            if a is not b:
                return False
            continue
        if a.op != b.op:
            return False
        if a.op == END_TEXT:
            if a.flags & WAS_DOLLAR != b.flags & WAS_DOLLAR:
                return False
        elif a.op in (LITERAL, CHAR_CLASS):
            if tuple(a.runes) != tuple(b.runes):
                return False
        elif a.op in (ALTERNATE, CONCAT):
            if len(a.sub) != len(b.sub):
                return False
            pairs.extend(zip(a.sub, b.sub, strict=True))
        elif a.op in (STAR, PLUS, QUEST, REPEAT, CAPTURE):
            if a.op in (STAR, PLUS, QUEST, REPEAT) and a.flags & NON_GREEDY != b.flags & NON_GREEDY:
                return False
            if a.op == REPEAT and (a.min != b.min or a.max != b.max):
                return False
            if a.op == CAPTURE and (a.cap != b.cap or a.name != b.name):
                return False
            pairs.append((a.sub[0], b.sub[0]))
    return True


def _repeat_is_valid(re: Node, n: int) -> bool:
    """repeatIsValid: nested counted repetitions multiply to at most n copies."""
    todo = [(re, n)]
    while todo:
        node, budget = todo.pop()
        if node.op == REPEAT:
            m = node.max
            if m == 0:
                continue
            if m < 0:
                m = node.min
            if m > budget:
                return False
            if m > 0:
                budget //= m
        todo.extend((s, budget) for s in node.sub)
    return True


def _is_alnum(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def _unhex(c: int) -> int:
    if 0x30 <= c <= 0x39:
        return c - 0x30
    if 0x61 <= c <= 0x66:
        return c - 0x61 + 10
    if 0x41 <= c <= 0x46:
        return c - 0x41 + 10
    return -1


def _valid_capture_name(name: str) -> bool:
    return name != "" and all(c == "_" or _is_alnum(ord(c)) for c in name)


def _height_of(re: Node, heights: dict[Node, int]) -> int:
    return 1 + max([heights[s] for s in re.sub]) if re.sub else 1


class _Parser:
    def __init__(self, s: str) -> None:
        self.s = s
        self.flags = PERL
        self.stack: list[Node] = []
        self.free: list[Node] = []
        self.num_cap = 0
        self.num_regexp = 0
        self.num_runes = 0
        self.repeats = 0
        self.height: dict[Node, int] | None = None
        self.size: dict[Node, int] | None = None

    # --- nodes

    def new(self, op: int) -> Node:
        if self.free:
            re = self.free.pop()
        else:
            re = Node()
            self.num_regexp += 1
        re.reset(op)
        return re

    def reuse(self, re: Node) -> None:
        if self.height is not None:
            self.height.pop(re, None)
        self.free.append(re)

    # --- limits

    def check_limits(self, re: Node) -> None:
        if self.num_runes > MAX_RUNES:
            raise _Limit(LARGE)
        self.check_size(re)
        self.check_height(re)

    def check_size(self, re: Node) -> None:
        if self.size is None:
            if self.repeats == 0:
                self.repeats = 1
            if re.op == REPEAT:
                n = re.max if re.max != -1 else re.min
                if n <= 0:
                    n = 1
                if n > MAX_SIZE // self.repeats:
                    self.repeats = MAX_SIZE
                else:
                    self.repeats *= n
            if self.num_regexp < MAX_SIZE // self.repeats:
                return
            self.size = {}
            for s in list(self.stack):
                self.check_size(s)
        if self._calc(re, self.size, _Parser._size_of) > MAX_SIZE:
            raise _Limit(LARGE)

    @staticmethod
    def _size_of(re: Node, sizes: dict[Node, int]) -> int:
        sub = [sizes[s] for s in re.sub]
        if re.op == LITERAL:
            size = len(re.runes)
        elif re.op in (CAPTURE, STAR):
            size = 2 + sub[0]
        elif re.op in (PLUS, QUEST):
            size = 1 + sub[0]
        elif re.op == CONCAT:
            size = sum(sub)
        elif re.op == ALTERNATE:
            size = sum(sub) + (len(sub) - 1 if len(sub) > 1 else 0)
        elif re.op == REPEAT:
            if re.max == -1:
                size = 2 + sub[0] if re.min == 0 else 1 + re.min * sub[0]
            else:
                size = re.max * sub[0] + (re.max - re.min)
        else:
            size = 0
        return max(1, size)

    def check_height(self, re: Node) -> None:
        if self.num_regexp < MAX_HEIGHT:
            return
        if self.height is None:
            self.height = {}
            for s in list(self.stack):
                self.check_height(s)
        if self._calc(re, self.height, _height_of) > MAX_HEIGHT:
            raise _Limit(NESTING_DEPTH)

    @staticmethod
    def _calc(re: Node, cache: dict[Node, int], value: Callable[[Node, dict[Node, int]], int]) -> int:
        """calcSize/calcHeight(re, force=true): `re` recomputed, its subtrees from the cache where
        they are in it (Go's cache can hold values of recycled nodes), in post-order."""
        for s in re.sub:
            if s not in cache:
                break
        else:
            v = cache[re] = value(re, cache)
            return v
        todo: list[tuple[Node, bool]] = [(re, False)]
        while todo:
            node, ready = todo.pop()
            if ready:
                cache[node] = value(node, cache)
                continue
            todo.append((node, True))
            todo.extend((s, False) for s in node.sub if s not in cache)
        return cache[re]

    # --- the stack

    def push(self, re: Node) -> Node | None:
        self.num_runes += len(re.runes)
        r = re.runes
        fold = unicode_data().simple_fold
        if re.op == CHAR_CLASS and len(r) == 2 and r[0] == r[1]:
            if self.maybe_concat(r[0], self.flags & ~FOLD_CASE):
                return None
            re.op, re.runes, re.flags = LITERAL, [r[0]], self.flags & ~FOLD_CASE
        elif re.op == CHAR_CLASS and (
            (len(r) == 4 and r[0] == r[1] and r[2] == r[3] and fold(r[0]) == r[2] and fold(r[2]) == r[0])
            or (len(r) == 2 and r[0] + 1 == r[1] and fold(r[0]) == r[1] and fold(r[1]) == r[0])
        ):
            if self.maybe_concat(r[0], self.flags | FOLD_CASE):
                return None
            re.op, re.runes, re.flags = LITERAL, [r[0]], self.flags | FOLD_CASE
        else:
            self.maybe_concat(-1, 0)
        self.stack.append(re)
        self.check_limits(re)
        return re

    def maybe_concat(self, r: int, flags: int) -> bool:
        if len(self.stack) < 2:
            return False
        re1, re2 = self.stack[-1], self.stack[-2]
        if re1.op != LITERAL or re2.op != LITERAL or re1.flags & FOLD_CASE != re2.flags & FOLD_CASE:
            return False
        re2.runes = [*re2.runes, *re1.runes]
        if r >= 0:
            re1.runes = [r]
            re1.flags = flags
            return True
        self.stack.pop()
        self.reuse(re1)
        return False

    def literal(self, r: int) -> None:
        re = self.new(LITERAL)
        re.flags = self.flags
        if self.flags & FOLD_CASE and MIN_FOLD <= r <= MAX_FOLD:
            fold = unicode_data().simple_fold
            m = r
            f = fold(r)
            while f != r:
                m = min(m, f)
                f = fold(f)
            r = m
        re.runes = [r]
        self.push(re)

    def op(self, op: int) -> Node | None:
        re = self.new(op)
        re.flags = self.flags
        return self.push(re)

    def repeat(self, op: int, lo: int, hi: int, before: int, after: int, last_repeat: int | None) -> int:
        flags = self.flags
        if self.flags & PERL_X:
            if after < len(self.s) and self.s[after] == "?":
                after += 1
                flags ^= NON_GREEDY
            if last_repeat is not None:
                raise RegexpError(INVALID_REPEAT_OP, self.s[last_repeat:after])
        if not self.stack or self.stack[-1].op >= PSEUDO:
            raise RegexpError(MISSING_REPEAT_ARGUMENT, self.s[before:after])
        sub = self.stack[-1]
        re = self.new(op)
        re.min, re.max, re.flags, re.sub = lo, hi, flags, [sub]
        self.stack[-1] = re
        self.check_limits(re)
        if op == REPEAT and (lo >= 2 or hi >= 2) and not _repeat_is_valid(re, MAX_REPEAT):
            raise RegexpError(INVALID_REPEAT_SIZE, self.s[before:after])
        return after

    def _above_pseudo(self) -> list[Node]:
        i = len(self.stack)
        while i > 0 and self.stack[i - 1].op < PSEUDO:
            i -= 1
        subs = self.stack[i:]
        del self.stack[i:]
        return subs

    def concat(self) -> Node | None:
        self.maybe_concat(-1, 0)
        subs = self._above_pseudo()
        if not subs:
            return self.push(self.new(EMPTY_MATCH))
        return self.push(self.collapse(subs, CONCAT))

    def alternate(self) -> Node | None:
        subs = self._above_pseudo()
        if subs:
            _clean_alt(subs[-1])
        if not subs:
            return self.push(self.new(NO_MATCH))
        return self.push(self.collapse(subs, ALTERNATE))

    def collapse(self, subs: list[Node], op: int) -> Node:
        if len(subs) == 1:
            return subs[0]
        re = self.new(op)
        for sub in subs:
            if sub.op == op:
                re.sub.extend(sub.sub)
                self.reuse(sub)
            else:
                re.sub.append(sub)
        if op == ALTERNATE:
            re.sub = self.factor(re.sub)
            if len(re.sub) == 1:
                old = re
                re = re.sub[0]
                self.reuse(old)
        return re

    # --- factoring of alternations (parse.go factor)

    def factor(self, sub: list[Node]) -> list[Node]:
        if len(sub) < 2:
            return sub
        sub = self._factor_strings(sub)
        sub = self._factor_leading(sub)
        sub = self._factor_classes(sub)
        return [s for i, s in enumerate(sub)
                if not (i + 1 < len(sub) and s.op == EMPTY_MATCH and sub[i + 1].op == EMPTY_MATCH)]

    def _factor_strings(self, sub: list[Node]) -> list[Node]:
        """Round 1: common literal prefixes."""
        out: list[Node] = []
        prefix: list[int] = []
        prefix_flags = 0
        start = 0
        for i in range(len(sub) + 1):
            istr: list[int] = []
            iflags = 0
            if i < len(sub):
                istr, iflags = self._leading_string(sub[i])
                if iflags == prefix_flags:
                    same = 0
                    while same < len(prefix) and same < len(istr) and prefix[same] == istr[same]:
                        same += 1
                    if same > 0:
                        prefix = prefix[:same]
                        continue
            if i == start + 1:
                out.append(sub[start])
            elif i > start + 1:
                lit = self.new(LITERAL)
                lit.flags = prefix_flags
                lit.runes = list(prefix)
                for j in range(start, i):
                    sub[j] = self._remove_leading_string(sub[j], len(prefix))
                    self.check_limits(sub[j])
                suffix = self.collapse(sub[start:i], ALTERNATE)
                re = self.new(CONCAT)
                re.sub = [lit, suffix]
                out.append(re)
            start = i
            prefix = list(istr)
            prefix_flags = iflags
        return out

    def _factor_leading(self, sub: list[Node]) -> list[Node]:
        """Round 2: a common leading character class (or fixed repeat of one)."""
        out: list[Node] = []
        start = 0
        first: Node | None = None
        for i in range(len(sub) + 1):
            ifirst: Node | None = None
            if i < len(sub):
                ifirst = self._leading_regexp(sub[i])
                if (first is not None and _equal(first, ifirst)
                        and (_is_char_class(first)
                             or (first.op == REPEAT and first.min == first.max and _is_char_class(first.sub[0])))):
                    continue
            if i == start + 1:
                out.append(sub[start])
            elif i > start + 1:
                assert first is not None
                for j in range(start, i):
                    sub[j] = self._remove_leading_regexp(sub[j], j != start)
                    self.check_limits(sub[j])
                suffix = self.collapse(sub[start:i], ALTERNATE)
                re = self.new(CONCAT)
                re.sub = [first, suffix]
                out.append(re)
            start = i
            first = ifirst
        return out

    def _factor_classes(self, sub: list[Node]) -> list[Node]:
        """Round 3: runs of single characters and classes become one class."""
        out: list[Node] = []
        start = 0
        for i in range(len(sub) + 1):
            if i < len(sub) and _is_char_class(sub[i]):
                continue
            if i == start + 1:
                out.append(sub[start])
            elif i > start + 1:
                best = start
                for j in range(start + 1, i):
                    a, b = sub[best], sub[j]
                    if a.op < b.op or (a.op == b.op and len(a.runes) < len(b.runes)):
                        best = j
                sub[start], sub[best] = sub[best], sub[start]
                for j in range(start + 1, i):
                    _merge_char_class(sub[start], sub[j])
                    self.reuse(sub[j])
                _clean_alt(sub[start])
                out.append(sub[start])
            if i < len(sub):
                out.append(sub[i])
            start = i + 1
        return out

    @staticmethod
    def _leading_string(re: Node) -> tuple[list[int], int]:
        if re.op == CONCAT and re.sub:
            re = re.sub[0]
        if re.op != LITERAL:
            return [], 0
        return list(re.runes), re.flags & FOLD_CASE

    def _remove_leading_string(self, re: Node, n: int) -> Node:
        if re.op == CONCAT and re.sub:
            sub = self._remove_leading_string(re.sub[0], n)
            re.sub[0] = sub
            if sub.op == EMPTY_MATCH:
                self.reuse(sub)
                if len(re.sub) <= 1:
                    re.op, re.sub = EMPTY_MATCH, []
                elif len(re.sub) == 2:
                    old = re
                    re = re.sub[1]
                    self.reuse(old)
                else:
                    del re.sub[0]
            return re
        if re.op == LITERAL:
            re.runes = list(re.runes[n:])
            if not re.runes:
                re.op = EMPTY_MATCH
        return re

    @staticmethod
    def _leading_regexp(re: Node) -> Node | None:
        if re.op == EMPTY_MATCH:
            return None
        if re.op == CONCAT and re.sub:
            return None if re.sub[0].op == EMPTY_MATCH else re.sub[0]
        return re

    def _remove_leading_regexp(self, re: Node, reuse: bool) -> Node:
        if re.op == CONCAT and re.sub:
            if reuse:
                self.reuse(re.sub[0])
            del re.sub[0]
            if not re.sub:
                re.op, re.sub = EMPTY_MATCH, []
            elif len(re.sub) == 1:
                old = re
                re = re.sub[0]
                self.reuse(old)
            return re
        if reuse:
            self.reuse(re)
        return self.new(EMPTY_MATCH)

    # --- | and )

    def swap_vertical_bar(self) -> bool:
        st = self.stack
        n = len(st)
        if n >= 3 and st[-2].op == VERTICAL_BAR and _is_char_class(st[-1]) and _is_char_class(st[-3]):
            re1, re3 = st[-1], st[-3]
            if re1.op > re3.op:
                re1, re3 = re3, re1
                st[-3] = re3
            _merge_char_class(re3, re1)
            self.reuse(re1)
            st.pop()
            return True
        if n >= 2 and st[-2].op == VERTICAL_BAR:
            if n >= 3:
                _clean_alt(st[-3])
            st[-2], st[-1] = st[-1], st[-2]
            return True
        return False

    def parse_vertical_bar(self) -> None:
        self.concat()
        if not self.swap_vertical_bar():
            self.op(VERTICAL_BAR)

    def parse_right_paren(self) -> None:
        self.concat()
        if self.swap_vertical_bar():
            self.stack.pop()
        self.alternate()
        if len(self.stack) < 2:
            raise RegexpError(UNEXPECTED_PAREN, self.s)
        re1 = self.stack.pop()
        re2 = self.stack.pop()
        if re2.op != LEFT_PAREN:
            raise RegexpError(UNEXPECTED_PAREN, self.s)
        self.flags = re2.flags
        if re2.cap == 0:
            self.push(re1)
        else:
            re2.op = CAPTURE
            re2.sub = [re1]
            self.push(re2)

    # --- lexical pieces (positions are indexes into self.s)

    def next_rune(self, i: int, end: int | None = None) -> tuple[int, int]:
        """nextRune: (rune, next index); at the end Go decodes U+FFFD without an error."""
        end = len(self.s) if end is None else end
        if i >= end:
            return 0xFFFD, i
        c = ord(self.s[i])
        if 0xD800 <= c < 0xE000:
            raise RegexpError(INVALID_UTF8, self.s[i:end])
        return c, i + 1

    def check_utf8(self, i: int, end: int) -> None:
        for k in range(i, end):
            if 0xD800 <= ord(self.s[k]) < 0xE000:
                raise RegexpError(INVALID_UTF8, self.s[k:end])

    def parse_int(self, i: int) -> tuple[int, int] | None:
        s = self.s
        if i >= len(s) or not "0" <= s[i] <= "9":
            return None
        if i + 1 < len(s) and s[i] == "0" and "0" <= s[i + 1] <= "9":
            return None  # no leading zeros
        j = i
        while j < len(s) and "0" <= s[j] <= "9":
            j += 1
        n = 0
        for k in range(i, j):
            if n >= 100_000_000:
                n = -1
                break
            n = n * 10 + ord(s[k]) - 0x30
        return n, j

    def parse_repeat(self, i: int) -> tuple[int, int, int] | None:
        """{min}, {min,} or {min,max} at i: (min, max, end), max -1 for none; min -1 when too big."""
        s = self.s
        got = self.parse_int(i + 1)
        if got is None:
            return None
        lo, i = got
        if i >= len(s):
            return None
        if s[i] != ",":
            hi = lo
        else:
            i += 1
            if i >= len(s):
                return None
            if s[i] == "}":
                hi = -1
            else:
                got = self.parse_int(i)
                if got is None:
                    return None
                hi, i = got
                if hi < 0:
                    lo = -1
        if i >= len(s) or s[i] != "}":
            return None
        return lo, hi, i + 1

    def parse_perl_flags(self, pos: int) -> int:
        s = self.s
        rest = s[pos:]
        starts_with_p = len(rest) > 4 and rest[2] == "P" and rest[3] == "<"
        starts_with_name = len(rest) > 3 and rest[2] == "<"
        if starts_with_p or starts_with_name:
            start = 4 if starts_with_p else 3
            end = rest.find(">")
            if end < 0:
                self.check_utf8(pos, len(s))
                raise RegexpError(INVALID_NAMED_CAPTURE, rest)
            name = rest[start:end]
            self.check_utf8(pos + start, pos + end)
            if not _valid_capture_name(name):
                raise RegexpError(INVALID_NAMED_CAPTURE, rest[: end + 1])
            self.num_cap += 1
            re = self.op(LEFT_PAREN)
            assert re is not None
            re.cap = self.num_cap
            re.name = name
            return pos + end + 1
        i = pos + 2
        flags = self.flags
        sign = 1
        saw_flag = False
        while i < len(s):
            c, i = self.next_rune(i)
            ch = chr(c)
            if ch == "i":
                flags |= FOLD_CASE
                saw_flag = True
            elif ch == "m":
                flags &= ~ONE_LINE & FLAG_BITS
                saw_flag = True
            elif ch == "s":
                flags |= DOT_NL
                saw_flag = True
            elif ch == "U":
                flags |= NON_GREEDY
                saw_flag = True
            elif ch == "-":
                if sign < 0:
                    break
                sign = -1
                flags ^= FLAG_BITS
                saw_flag = False
            elif ch in ":)":
                if sign < 0:
                    if not saw_flag:
                        break
                    flags ^= FLAG_BITS
                if ch == ":":
                    self.op(LEFT_PAREN)
                self.flags = flags
                return i
            else:
                break
        raise RegexpError(INVALID_PERL_OP, s[pos:i])

    def parse_escape(self, pos: int) -> tuple[int, int]:
        """An escape at pos: (rune, end)."""
        s = self.s
        i = pos + 1
        if i >= len(s):
            raise RegexpError(TRAILING_BACKSLASH, "")
        c, i = self.next_rune(i)
        octal = c == 0x30 or (0x31 <= c <= 0x37 and i < len(s) and "0" <= s[i] <= "7")
        if octal:
            r = c - 0x30
            for _ in range(2):
                if i >= len(s) or not "0" <= s[i] <= "7":
                    break
                r = r * 8 + ord(s[i]) - 0x30
                i += 1
            return r, i
        if c == 0x78 and i < len(s):  # x
            c, i = self.next_rune(i)
            if c == 0x7B:  # {
                nhex = r = 0
                while True:
                    if i >= len(s):
                        raise RegexpError(INVALID_ESCAPE, s[pos:i])
                    c, i = self.next_rune(i)
                    if c == 0x7D:
                        break
                    v = _unhex(c)
                    if v < 0:
                        raise RegexpError(INVALID_ESCAPE, s[pos:i])
                    r = r * 16 + v
                    if r > MAX_RUNE:
                        raise RegexpError(INVALID_ESCAPE, s[pos:i])
                    nhex += 1
                if nhex == 0:
                    raise RegexpError(INVALID_ESCAPE, s[pos:i])
                return r, i
            x = _unhex(c)
            c, i = self.next_rune(i)
            y = _unhex(c)
            if x >= 0 and y >= 0:
                return x * 16 + y, i
        elif chr(c) in "afnrtv":
            return {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}[chr(c)], i
        elif c < 0x80 and not _is_alnum(c):  # escaped punctuation is itself
            return c, i
        raise RegexpError(INVALID_ESCAPE, s[pos:i])

    def append_group(self, r: Runes, group: tuple[int, list[int]]) -> list[int]:
        sign, cls = group
        if self.flags & FOLD_CASE:
            cls = clean_class(append_folded_class([], cls))
        return append_negated_class(r, cls) if sign < 0 else append_class(r, cls)

    def parse_perl_class_escape(self, pos: int, r: Runes) -> list[int] | None:
        if not self.flags & PERL_X or pos + 1 >= len(self.s) or self.s[pos] != "\\":
            return None
        group = _PERL_GROUPS.get(self.s[pos : pos + 2])
        return None if group is None else self.append_group(r, group)

    def parse_named_class(self, pos: int, r: Runes) -> tuple[list[int], int] | None:
        s = self.s
        if not s.startswith("[:", pos):
            return None
        k = s.find(":]", pos + 2)
        if k < 0:
            return None
        name = s[pos : k + 2]
        group = _POSIX_GROUPS.get(name)
        if group is None:
            raise RegexpError(INVALID_CHAR_RANGE, name)
        return self.append_group(r, group), k + 2

    def parse_unicode_class(self, pos: int, r: Runes) -> tuple[Runes, int] | None:
        s = self.s
        if not self.flags & UNICODE_GROUPS or pos + 1 >= len(s) or s[pos] != "\\" or s[pos + 1] not in "pP":
            return None
        sign = -1 if s[pos + 1] == "P" else 1
        c, i = self.next_rune(pos + 2)
        if c != 0x7B:
            seq = s[pos:i]
            name = seq[2:]
        else:
            end = s.find("}", pos)
            if end < 0:
                self.check_utf8(pos, len(s))
                raise RegexpError(INVALID_CHAR_RANGE, s[pos:])
            seq, i = s[pos : end + 1], end + 1
            name = s[pos + 3 : end]
            self.check_utf8(pos + 3, end)
        if name.startswith("^"):
            sign = -sign
            name = name[1:]
        found = unicode_table(name)
        if found is None:
            raise RegexpError(INVALID_CHAR_RANGE, seq)
        tab, fold, tsign = found
        if tsign < 0:
            sign = -sign
        if not self.flags & FOLD_CASE or fold is None:
            if sign > 0 and not r:
                return tab, i  # shared, not copied: a pattern can hold thousands of \pL
            return (append_class(r, tab) if sign > 0 else append_negated_class(r, tab)), i
        tmp = clean_class(append_class(append_class([], tab), fold))
        return (append_class(r, tmp) if sign > 0 else append_negated_class(r, tmp)), i

    def parse_class_char(self, pos: int, whole: int) -> tuple[int, int]:
        if pos >= len(self.s):
            raise RegexpError(MISSING_BRACKET, self.s[whole:])
        if self.s[pos] == "\\":
            return self.parse_escape(pos)
        return self.next_rune(pos)

    def parse_class(self, pos: int) -> int:
        s = self.s
        i = pos + 1
        re = self.new(CHAR_CLASS)
        re.flags = self.flags
        cls: Runes = []
        sign = 1
        if i < len(s) and s[i] == "^":
            sign = -1
            i += 1
            if not self.flags & CLASS_NL:
                cls = [0x0A, 0x0A]
        first = True
        while i >= len(s) or s[i] != "]" or first:
            first = False
            if len(s) - i > 2 and s.startswith("[:", i):
                named = self.parse_named_class(i, cls)
                if named is not None:
                    cls, i = named
                    continue
            uni = self.parse_unicode_class(i, cls)
            if uni is not None:
                cls, i = uni
                continue
            perl = self.parse_perl_class_escape(i, cls)
            if perl is not None:
                cls = perl
                i += 2
                continue
            start = i
            lo, i = self.parse_class_char(i, pos)
            hi = lo
            if len(s) - i >= 2 and s[i] == "-" and s[i + 1] != "]":
                i += 1
                hi, i = self.parse_class_char(i, pos)
                if hi < lo:
                    raise RegexpError(INVALID_CHAR_RANGE, s[start:i])
            cls = append_folded_range(cls, lo, hi) if self.flags & FOLD_CASE else append_range(cls, lo, hi)
        i += 1
        cls = clean_class(cls)
        if sign < 0:
            cls = negate_class(cls)
        re.runes = cls
        self.push(re)
        return i

    # --- the parser's loop

    def parse(self) -> None:
        s = self.s
        i = 0
        last_repeat: int | None = None
        while i < len(s):
            repeat: int | None = None
            c = s[i]
            if c == "(":
                if self.flags & PERL_X and i + 1 < len(s) and s[i + 1] == "?":
                    i = self.parse_perl_flags(i)
                else:
                    self.num_cap += 1
                    re = self.op(LEFT_PAREN)
                    assert re is not None
                    re.cap = self.num_cap
                    i += 1
            elif c == "|":
                self.parse_vertical_bar()
                i += 1
            elif c == ")":
                self.parse_right_paren()
                i += 1
            elif c == "^":
                self.op(BEGIN_TEXT if self.flags & ONE_LINE else BEGIN_LINE)
                i += 1
            elif c == "$":
                if self.flags & ONE_LINE:
                    re = self.op(END_TEXT)
                    assert re is not None
                    re.flags |= WAS_DOLLAR
                else:
                    self.op(END_LINE)
                i += 1
            elif c == ".":
                self.op(ANY_CHAR if self.flags & DOT_NL else ANY_CHAR_NOT_NL)
                i += 1
            elif c == "[":
                i = self.parse_class(i)
            elif c in "*+?":
                op = {"*": STAR, "+": PLUS, "?": QUEST}[c]
                repeat = i
                i = self.repeat(op, 0, 0, i, i + 1, last_repeat)
            elif c == "{":
                got = self.parse_repeat(i)
                if got is None:
                    self.literal(0x7B)  # { that is not a repetition is a literal
                    i += 1
                else:
                    lo, hi, after = got
                    if lo < 0 or lo > MAX_REPEAT or hi > MAX_REPEAT or (hi >= 0 and lo > hi):
                        raise RegexpError(INVALID_REPEAT_SIZE, s[i:after])
                    repeat = i
                    i = self.repeat(REPEAT, lo, hi, i, after, last_repeat)
            elif c == "\\":
                i = self.parse_backslash(i)
            else:
                r, i = self.next_rune(i)
                self.literal(r)
            last_repeat = repeat
        self.concat()
        if self.swap_vertical_bar():
            self.stack.pop()
        self.alternate()
        if len(self.stack) != 1:
            raise RegexpError(MISSING_PAREN, s)

    def parse_backslash(self, i: int) -> int:
        s = self.s
        if self.flags & PERL_X and i + 1 < len(s):
            nxt = s[i + 1]
            simple = {"A": BEGIN_TEXT, "b": WORD_BOUNDARY, "B": NO_WORD_BOUNDARY, "z": END_TEXT}
            if nxt in simple:
                self.op(simple[nxt])
                return i + 2
            if nxt == "C":
                raise RegexpError(INVALID_ESCAPE, s[i : i + 2])
            if nxt == "Q":
                end = s.find("\\E", i + 2)
                lit_end, after = (len(s), len(s)) if end < 0 else (end, end + 2)
                k = i + 2
                while k < lit_end:
                    r, k = self.next_rune(k, lit_end)
                    self.literal(r)
                return after
        re = self.new(CHAR_CLASS)
        re.flags = self.flags
        if i + 1 < len(s) and s[i + 1] in "pP":
            uni = self.parse_unicode_class(i, [])
            if uni is not None:
                re.runes, after = uni
                self.push(re)
                return after
        perl = self.parse_perl_class_escape(i, [])
        if perl is not None:
            re.runes = perl
            self.push(re)
            return i + 2
        self.reuse(re)
        r, after = self.parse_escape(i)
        self.literal(r)
        return after


def compile_error(pattern: str) -> str | None:
    """regexp.Compile(pattern)'s error text (Go 1.27), or None when Go accepts the pattern."""
    try:
        _Parser(pattern).parse()
    except RegexpError as e:
        return str(e)
    except _Limit as e:
        return str(RegexpError(e.code, pattern))
    return None
