"""The sconf codec: mox's config file format, read and written exactly as mox does.

The file is only meaningful relative to a schema; here the schema is the dataclasses of
`reconciler.mox.config` (field order, optional marks, Python types). The reader is a port of the state
machine of github.com/mjl-/sconf v0.0.8 (`parse.go`) so it accepts and rejects the same files,
with the same messages and line numbers. The writer is `sconf.Write` (no comments, optional zero
values left out, map keys sorted bytewise, `nil` for empty struct map values), plus guards that
refuse to write what sconf would write but could not read back (an empty required map becomes a
placeholder `x:` entry, a key with `:` cannot be split again, a string `nil` reads back empty).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.mox.config import OPTIONAL
from reconciler.mox.golang import (
    Duration,
    GoSyntaxError,
    float_is_zero,
    format_duration,
    format_float,
    go_quote,
    parse_duration,
    parse_float,
    parse_int,
    sorted_strings,
)

T = TypeVar("T")


class SconfError(ValueError):
    """A file sconf cannot read, or a config it cannot write; `str()` is `path:line: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line
        self.message = message


# ---------------------------------------------------------------------------------------------
# Schema: what each Python type means to sconf.


@dataclass(frozen=True, slots=True)
class Kind:
    """A node of the compiled schema."""

    tag: str  # str bool int float duration list map struct ptr
    elem: Kind | None = None  # list/map element, pointee
    cls: type | None = None  # struct class
    fields: tuple[FieldSpec, ...] = ()
    by_name: Mapping[str, FieldSpec] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    optional: bool


_SCALARS: dict[Any, str] = {str: "str", bool: "bool", int: "int", float: "float", Duration: "duration"}
_kinds: dict[Any, Kind] = {}


def kind_of(tp: Any) -> Kind:
    """Compile (and cache) the schema node for a type annotation."""
    cached = _kinds.get(tp)
    if cached is not None:
        return cached
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    kind: Kind
    if tp in _SCALARS:
        kind = Kind(_SCALARS[tp])
    elif origin is tuple:
        kind = Kind("list", elem=kind_of(args[0]))
    elif origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, str]):
        if args[0] is not str:
            raise TypeError(f"map key must be string: {tp}")
        kind = Kind("map", elem=kind_of(args[1]))
    elif origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"unsupported union {tp}")
        kind = Kind("ptr", elem=kind_of(inner[0]))
    elif dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        specs = tuple(
            FieldSpec(f.name, kind_of(hints[f.name]), bool(f.metadata.get(OPTIONAL)))
            for f in dataclasses.fields(tp)
        )
        kind = Kind("struct", cls=tp, fields=specs, by_name={s.name: s for s in specs})
    else:
        raise TypeError(f"type not supported by sconf: {tp}")
    _kinds[tp] = kind
    return kind


def zero_value(kind: Kind) -> Any:
    """Go's zero value of a type (what `nil` in a map means)."""
    tag = kind.tag
    if tag == "str":
        return ""
    if tag == "bool":
        return False
    if tag == "int":
        return 0
    if tag == "float":
        return 0.0
    if tag == "duration":
        return Duration(0)
    if tag == "list":
        return ()
    if tag == "map":
        return {}
    if tag == "ptr":
        return None
    assert kind.cls is not None
    return kind.cls()


# ---------------------------------------------------------------------------------------------
# Reading


class _Stop(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


class _BadBool(ValueError):
    pass


def _scalar(tag: str, s: str) -> Any:
    """A bool, int, float or duration value from its text (`_BadBool`, `GoSyntaxError`)."""
    if tag == "bool":
        if s == "true":
            return True
        if s == "false":
            return False
        raise _BadBool(s)
    if tag == "int":
        return parse_int(s)
    if tag == "float":
        return parse_float(s)
    return parse_duration(s)


class _Parser:
    """A line-for-line port of sconf's parser: same states, same errors, same line numbers."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()  # the text ended with "\n": no further line
        self.pos = 0
        self.prefix = ""
        self.line = ""
        self.linenumber = 0

    def stop(self, message: str) -> typing.NoReturn:
        raise _Stop(message)

    def next(self) -> bool:
        while self.line == "":
            if self.pos >= len(self.lines):
                return False
            s = self.lines[self.pos]
            self.pos += 1
            self.linenumber += 1
            if s.strip().startswith("#"):
                continue
            self.line = s
        return self.line.startswith(self.prefix)

    def consume(self) -> str:
        s, self.line = self.line, ""
        return s

    def indent(self) -> None:
        self.prefix += "\t"
        if not self.next():
            self.stop("expected indent")

    def unindent(self) -> None:
        self.prefix = self.prefix[1:]

    def parse_value(self, kind: Kind) -> Any:
        tag = kind.tag
        if tag == "str":
            return self.consume()
        if tag == "struct":
            self.indent()
            try:
                return self.parse_struct0(kind)
            finally:
                self.unindent()
        if tag == "map":
            self.indent()
            try:
                return self.parse_map0(kind)
            finally:
                self.unindent()
        if tag == "list":
            self.indent()
            try:
                return self.parse_list0(kind)
            finally:
                self.unindent()
        if tag == "ptr":
            assert kind.elem is not None
            return self.parse_value(kind.elem)
        s = self.consume()
        try:
            return _scalar(tag, s)
        except _BadBool:
            self.stop(f"bad boolean value {go_quote(s)}")
        except GoSyntaxError as e:
            action = {"int": "parsing integer", "float": "parsing float"}.get(tag, "parsing duration")
            self.stop(f"{action}: {e}")

    def _split_key(self, what: str) -> tuple[str, str]:
        origs = self.line
        s = origs[len(self.prefix) :]
        k, colon, rest = s.partition(":")
        if not colon:
            more = ""
            if s.strip() == "":
                more = " (perhaps stray whitespace)"
            elif k.startswith(" "):
                more = " (perhaps mixed tab/space indenting)"
            self.stop(f"missing colon for {what} key/value on non-empty line {go_quote(origs)}{more}")
        if k == "":
            self.stop(f"empty key in {what}")
        return k, rest

    def parse_struct0(self, kind: Kind) -> Any:
        seen: dict[str, Any] = {}
        while self.next():
            k, s = self._split_key("struct")
            if k.startswith(" "):
                self.stop("key in struct starting with space (perhaps mixed tab/space indenting)")
            if k in seen:
                self.stop("duplicate key in struct")
            if s and not s.startswith(" "):
                self.stop("missing space after colon in struct")
            self.line = s[1:] if s else ""
            spec = kind.by_name.get(k)
            if spec is None:
                more = " (perhaps stray whitespace in key)" if k.strip() != k else ""
                self.stop(f"unknown key {go_quote(k)}{more}")
            seen[k] = None  # mark before parsing, as sconf does
            seen[k] = self.parse_value(spec.kind)
        for spec in kind.fields:
            if not spec.optional and spec.name not in seen:
                self.stop(f"missing required key {go_quote(spec.name)}")
        assert kind.cls is not None
        return kind.cls(**seen)

    def parse_map0(self, kind: Kind) -> dict[str, Any]:
        assert kind.elem is not None
        result: dict[str, Any] = {}
        while self.next():
            k, s = self._split_key("map")
            if k in result:
                self.stop("duplicate key in map")
            if s and not s.startswith(" "):
                more = ""
                if k.startswith(" "):
                    more = " (key starts with space, perhaps mixed tab/space indenting)"
                self.stop("missing space after colon in map" + more)
            s = s[1:] if s else ""
            if s == "nil":
                self.line = ""
                result[k] = zero_value(kind.elem)
            else:
                self.line = s
                result[k] = None  # duplicate detection while the value parses
                result[k] = self.parse_value(kind.elem)
        return result

    def parse_list0(self, kind: Kind) -> tuple[Any, ...]:
        assert kind.elem is not None
        items: list[Any] = []
        while self.next():
            s = self.line
            prefix = self.prefix + "-"
            if not s.startswith(prefix):
                self.stop(f"expected item, prefix {go_quote(prefix)}, saw {go_quote(s)}")
            s = s[len(prefix) :]
            if s:
                if not s.startswith(" "):
                    self.stop("missing space after -")
                s = s[1:]
            self.line = s
            items.append(self.parse_value(kind.elem))
        return tuple(items)


def decode_text(data: bytes, path: str) -> str:
    """Bytes to text, keeping invalid UTF-8 as mox would (it works on bytes).

    Two traps are reported instead of being passed on: a UTF-8 byte order mark (mox then sees
    an unknown first key) and CRLF line ends (mox keeps the CR in every value, so booleans
    fail and strings silently change).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise SconfError(
            path, 1, "file starts with a UTF-8 byte order mark (BOM), which mox cannot read; remove it"
        )
    text = data.decode("utf-8", "surrogateescape")
    if "\r" in text:
        line = text.count("\n", 0, text.index("\r")) + 1
        raise SconfError(
            path, line, "carriage return in file (CRLF line ends?): mox keeps it as part of the value; "
            "convert the file to LF line ends"
        )
    return text


class _Fallback(Exception):
    """The fast reader met something other than a plain, valid file: `_Parser` reads it again."""


_STR = kind_of(str)  # the one Kind of every str field (kind_of caches it)
_layouts: dict[int, tuple[Kind, dict[str, Kind], tuple[str, ...]]] = {}


def _struct_layout(kind: Kind) -> tuple[dict[str, Kind], tuple[str, ...]]:
    """A struct's field kinds by name and its required field names, worked out once per struct
    kind (100,000 structs in a domains.conf of 10,000 domains and accounts)."""
    known = _layouts.get(id(kind))
    if known is not None and known[0] is kind:
        return known[1], known[2]
    fields = {spec.name: _STR if spec.kind.tag == "str" else spec.kind for spec in kind.fields}
    required = tuple(spec.name for spec in kind.fields if not spec.optional)
    _layouts[id(kind)] = (kind, fields, required)
    return fields, required


def _parse_fast(text: str, root: Kind) -> Any:
    """`_Parser` for a file it accepts, in a tighter loop: the same result or `_Fallback`.

    The same recursive descent over the lines `_Parser.next` would see (empty and comment lines
    dropped once, up front), with a line's depth (its leading tabs) standing for `_Parser`'s tab
    prefix: `line.startswith(prefix)` is `depth >= level`. A line of a block is exactly `level`
    deep; anything `_Parser` would reject, and the odd forms it accepts (a line deeper than its
    block, a key starting with a space, a value after a struct's, map's or list's key), are left
    to `_Parser`, which then says what it says.
    """
    lines = [s for s in text.split("\n") if s]
    if "#" in text:
        lines = [s for s in lines if not ("#" in s and s.strip().startswith("#"))]
    depths = [len(s) - len(s.lstrip("\t")) for s in lines]  # a line's text after them: lines[i][depth:]
    depths.append(-1)  # the end: below every level
    i = 0
    # The values of the scalars read so far, by their text: a file of 10,000 accounts repeats a
    # handful of thresholds and durations (each an immutable int or float: one serves all).
    scalars: dict[tuple[str, str], Any] = {}

    def value(kind: Kind, rest: str, level: int) -> Any:
        tag = kind.tag
        if tag == "str":
            return rest
        if tag == "ptr":
            assert kind.elem is not None
            return value(kind.elem, rest, level)
        if tag == "struct" or tag == "map" or tag == "list":
            if rest or depths[i] <= level:  # a value on the key's line; no indented block
                raise _Fallback
            if tag == "struct":
                return struct(kind, level + 1)
            if tag == "map":
                return mapping(kind, level + 1)
            return items(kind, level + 1)
        known = scalars.get((tag, rest))
        if known is not None:
            return known
        try:
            parsed = scalars[(tag, rest)] = _scalar(tag, rest)
        except (_BadBool, GoSyntaxError):
            raise _Fallback from None
        return parsed

    def struct(kind: Kind, level: int) -> Any:
        nonlocal i
        fields, required = _struct_layout(kind)
        seen: dict[str, Any] = {}
        while (depth := depths[i]) >= level:
            if depth != level:
                raise _Fallback
            k, colon, rest = lines[i][level:].partition(":")
            field_kind = fields.get(k)
            if not colon or field_kind is None or k in seen:
                raise _Fallback
            i += 1
            if rest:
                if rest[0] != " ":  # a value follows ": "
                    raise _Fallback
                rest = rest[1:]
            seen[k] = rest if field_kind is _STR else value(field_kind, rest, level)
        for name in required:
            if name not in seen:
                raise _Fallback
        assert kind.cls is not None
        return kind.cls(**seen)

    def mapping(kind: Kind, level: int) -> dict[str, Any]:
        nonlocal i
        elem = kind.elem
        assert elem is not None
        plain = elem.tag == "str"
        zero = zero_value(elem) if elem.tag == "struct" else None
        result: dict[str, Any] = {}
        while depths[i] >= level:
            if depths[i] != level:
                raise _Fallback
            k, colon, rest = lines[i][level:].partition(":")
            if not colon or not k or k[0] == " " or k in result:
                raise _Fallback
            i += 1
            if rest[:1] not in ("", " "):  # a value follows ": "
                raise _Fallback
            rest = rest[1:]
            if rest == "nil":
                result[k] = zero if zero is not None else zero_value(elem)  # immutable: one for all
            else:
                result[k] = rest if plain else value(elem, rest, level)
        return result

    def items(kind: Kind, level: int) -> tuple[Any, ...]:
        nonlocal i
        elem = kind.elem
        assert elem is not None
        out: list[Any] = []
        while depths[i] >= level:
            body = lines[i][level:]
            if depths[i] != level or body[:1] != "-":
                raise _Fallback
            rest = body[1:]
            if rest[:1] not in ("", " "):  # a value follows "- "
                raise _Fallback
            rest = rest[1:]
            i += 1
            out.append(value(elem, rest, level))
        return tuple(out)

    try:
        return struct(root, 0)
    finally:  # the nested functions above hold each other (a cycle, never freed by the one-shot
        lines.clear()  # verbs, which run without the cyclic collector): the lines go with the call
        depths.clear()


def parse(text: str, cls: type[T], path: str = "") -> T:
    """Parse sconf text into `cls`; errors are `SconfError` as `path:line: message`.

    A file is read by `_parse_fast`, and only when that gives up by `_Parser` (the port of
    sconf's parser, which says why a file is rejected); both give the same value for a file
    both read (tests/test_sconf_fast.py)."""
    kind = kind_of(cls)
    try:
        fast: T = _parse_fast(text, kind)
        return fast
    except _Fallback:
        pass
    p = _Parser(text)
    try:
        result: T = p.parse_struct0(kind)
    except _Stop as e:
        raise SconfError(path, p.linenumber, e.message) from None
    return result


def parse_bytes(data: bytes, cls: type[T], path: str = "") -> T:
    return parse(decode_text(data, path), cls, path)


# ---------------------------------------------------------------------------------------------
# Writing


class WriteRefused(ValueError):
    """The config cannot be written as a file mox can read back; says where and why."""


def is_zero(kind: Kind, v: Any) -> bool:
    """sconf's isZeroIgnored: the writer leaves out optional fields for which this holds."""
    tag = kind.tag
    if tag == "list" or tag == "map":
        return len(v) == 0
    if tag == "ptr":
        assert kind.elem is not None
        return v is None or is_zero(kind.elem, v)
    if tag == "struct":
        return all(is_zero(f.kind, getattr(v, f.name)) for f in kind.fields)
    if tag == "float":
        return float_is_zero(v)
    return not v


def _is_empty_struct(kind: Kind, v: Any) -> bool:
    """A struct map value written as `nil`: all fields optional and zero."""
    return all(f.optional and is_zero(f.kind, getattr(v, f.name)) for f in kind.fields)


class _Writer:
    def __init__(self, keep_zero: bool = False) -> None:
        self.out: list[str] = []
        self.where: list[str] = []
        self.keep_zero = keep_zero  # sconf's Describe: every field, zero values included

    def refuse(self, message: str) -> typing.NoReturn:
        path = ".".join(self.where) or "(top)"
        raise WriteRefused(f"{path}: {message}")

    def value(self, kind: Kind, v: Any, prefix: str) -> None:
        tag = kind.tag
        out = self.out
        if tag == "str":
            if "\n" in v:
                self.refuse("unsupported multiline string (a value cannot contain a newline)")
            out.append(f" {v}\n")
        elif tag == "bool":
            out.append(" true\n" if v else " false\n")
        elif tag == "int":
            out.append(f" {v:d}\n")
        elif tag == "float":
            out.append(f" {format_float(v)}\n")
        elif tag == "duration":
            out.append(f" {format_duration(v)}\n")
        elif tag == "ptr":
            assert kind.elem is not None
            self.value(kind.elem, zero_value(kind.elem) if v is None else v, prefix)
        elif tag == "struct":
            out.append("\n")
            self.struct(kind, v, prefix + "\t")
        elif tag == "list":
            assert kind.elem is not None
            out.append("\n")
            if not v:
                if not self.keep_zero:
                    self.refuse("required list is empty (sconf fails with 'no elements')")
                v = (zero_value(kind.elem),)
            inner = prefix + "\t"
            for i, item in enumerate(v):
                self.where.append(f"[{i}]")
                out.append(inner + "-")
                self.value(kind.elem, item, inner)
                self.where.pop()
        else:
            assert kind.elem is not None
            out.append("\n")
            self.map(kind.elem, v, prefix + "\t")

    def struct(self, kind: Kind, v: Any, prefix: str) -> None:
        for f in kind.fields:
            fv = getattr(v, f.name)
            if f.optional and not self.keep_zero and is_zero(f.kind, fv):
                continue
            self.where.append(f.name)
            self.out.append(f"{prefix}{f.name}:")
            self.value(f.kind, fv, prefix)
            self.where.pop()

    def map(self, elem: Kind, v: Mapping[str, Any], prefix: str) -> None:
        if not v and self.keep_zero:
            self.out.append(f"{prefix}x:")
            self.value(elem, zero_value(elem), prefix)
            return
        if not v:
            self.refuse(
                "required map is empty; sconf would write a placeholder entry 'x:' that mox "
                "cannot read back (a config needs at least one domain and one account)"
            )
        for k in sorted_strings(v):
            self.entry(elem, k, v[k], prefix)

    def entry(self, elem: Kind, k: str, mv: Any, prefix: str) -> None:
        """One map entry: its key line and value."""
        self.where.append(k)
        self._check_key(k)
        self.out.append(f"{prefix}{k}:")
        if elem.tag == "struct" and not self.keep_zero and _is_empty_struct(elem, mv):
            self.out.append(" nil\n")
        else:
            if elem.tag == "str" and mv == "nil":
                self.refuse("string value 'nil' would read back as the empty string")
            self.value(elem, mv, prefix)
        self.where.pop()

    def _check_key(self, k: str) -> None:
        if k == "":
            self.refuse("empty map key cannot be written")
        if ":" in k:
            self.refuse(f"map key {go_quote(k)} contains ':', which sconf cannot read back")
        if "\n" in k:
            self.refuse(f"map key {go_quote(k)} contains a newline")
        if k.startswith("\t"):
            self.refuse(f"map key {go_quote(k)} starts with a tab, which sconf reads as indentation")
        if k.strip().startswith("#"):
            self.refuse(f"map key {go_quote(k)} would be read as a comment")


def write(cfg: Any) -> str:
    """Serialize like sconf.Write; raises WriteRefused where mox would write a broken file."""
    kind = kind_of(type(cfg))
    w = _Writer()
    w.struct(kind, cfg, "")
    return "".join(w.out)


def write_bytes(cfg: Any) -> bytes:
    """`write(cfg)` in UTF-8, by the compiled writer (`sconf_emit`); the generic one says why
    when it refuses."""
    from reconciler.mox import sconf_emit

    try:
        return sconf_emit.emit_bytes(kind_of(type(cfg)), cfg)
    except sconf_emit.Refused:
        return write(cfg).encode("utf-8", "surrogateescape")


def write_bytes_reusing(cfg: Any, before: bytes, parsed: Any) -> bytes:
    """`write_bytes(cfg)`, taking the bytes of the unchanged entries of its top-level maps
    (Domains, Accounts) from `before` instead of writing them again.

    `before` must be what `write_bytes` makes of `parsed` (a file the writer wrote, parsed
    again: write, read, write is stable). An entry is unchanged when it is the very object
    (identity) of `parsed`'s entry of that key: configs are never modified, so a config derived
    from `parsed` shares every entry it did not change. Then its bytes in `before` are what the
    writer makes of it, found by the writer's own layout: an entry of a top-level map starts
    at a line with one tab and runs to the next such line or to the next top-level line (no
    value holds a newline). The result equals `write_bytes(cfg)` (tests/test_sconf.py)."""
    from reconciler.mox import sconf_emit

    kind = kind_of(type(cfg))
    pieces: list[bytes | memoryview] = []
    view = memoryview(before)
    try:
        for f in kind.fields:
            fv = getattr(cfg, f.name)
            if f.optional and is_zero(f.kind, fv):
                continue
            old = getattr(parsed, f.name)
            if f.kind.tag != "map" or not fv or not old:
                pieces.append(sconf_emit.emit_field_bytes(f, fv))
                continue
            assert f.kind.elem is not None
            spans = _entry_spans(before, f.name)
            pieces.append(f"{f.name}:\n".encode())
            for k in sorted_strings(fv):
                mv = fv[k]
                span = spans.get(k)
                if span is not None and old.get(k) is mv:
                    pieces.append(view[span[0]:span[1]])
                else:
                    pieces.append(sconf_emit.emit_entry_bytes(f.kind.elem, k, mv))
    except sconf_emit.Refused:
        return write(cfg).encode("utf-8", "surrogateescape")
    return b"".join(pieces)


_TOP_LINE = re.compile(rb"^[^\t]", re.M)  # a top-level field
_ENTRY_LINE = re.compile(rb"^\t(?!\t)", re.M)  # an entry of a top-level map


def entry_names(data: bytes, name: str) -> list[str]:
    """The keys of the top-level map `name` (Domains, Accounts) as the writer lays them out, found
    without parsing: exact for a file the writer (or mox) wrote, a guess for a hand-written one,
    and nothing for one that is not sconf at all (its parse says why)."""
    try:
        return list(_entry_spans(data, name))
    except ValueError:  # an entry line without a colon
        return []


def _entry_spans(data: bytes, name: str) -> dict[str, tuple[int, int]]:
    """Where each entry of the top-level map `name` is in the writer's output `data`."""
    head = f"{name}:\n".encode()
    if data.startswith(head):
        block = len(head)
    else:
        at = data.find(b"\n" + head)
        if at < 0:
            return {}
        block = at + 1 + len(head)
    top = _TOP_LINE.search(data, block)
    end = top.start() if top is not None else len(data)
    starts = [m.start() for m in _ENTRY_LINE.finditer(data, block, end)]
    spans: dict[str, tuple[int, int]] = {}
    for i, s in enumerate(starts):
        key = data[s + 1:data.index(b":", s)].decode("utf-8", "surrogateescape")
        spans[key] = (s, starts[i + 1] if i + 1 < len(starts) else end)
    return spans


def describe(cls: type) -> str:
    """sconf.Describe without comments: the whole schema with zero values (`x:` for maps)."""
    w = _Writer(keep_zero=True)
    w.struct(kind_of(cls), cls(), "")
    return "".join(w.out)
