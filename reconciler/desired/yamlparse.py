"""Composing YAML text into a `Document` with PyYAML (`reconciler.desired.yamlload` says how).

Kept apart from the types and the file reading so that a plan whose files are all in the parse
cache (`reconciler.desired.cache`) does not import PyYAML.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.desired.yamlload import Document, Location, Locations, ManyProblems, Path_, YAMLProblem, dotted


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (each node is built exactly once)."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported", event.start_mark
            )
        node: Node | None = super().compose_node(parent, index)
        return node


class _Builder:
    """Plain data and the (line, col) of every key and value from a composed document. The
    nodes are let go as they are built (a 3 MB file composes to about 100 MB of nodes, which
    need not be held beside what is built from them)."""

    def __init__(self, file: str, loader: Any) -> None:
        self.file = file
        self.loader = loader
        self.keys: dict[Path_, tuple[int, int]] = {}
        self.values: dict[Path_, tuple[int, int]] = {}
        self.problems: list[YAMLProblem] = []

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: Path_) -> Any:
        mark = node.start_mark
        self.values[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            pairs, node.value = node.value, []
            for i, (knode, vnode) in enumerate(pairs):
                pairs[i] = None  # built below: its nodes go when it is
                if not isinstance(knode, ScalarNode):
                    self.problems.append(
                        YAMLProblem(self.loc(knode), dotted(path), "mapping key must be a string")
                    )
                    continue
                key = str(knode.value)
                if key in out:
                    first_line = self.keys[(*path, key)][0]
                    self.problems.append(
                        YAMLProblem(
                            self.loc(knode),
                            dotted((*path, key)),
                            f"duplicate key (first at line {first_line})",
                        )
                    )
                    continue
                kmark = knode.start_mark
                self.keys[(*path, key)] = (kmark.line + 1, kmark.column + 1)
                out[key] = self.build(vnode, (*path, key))
            return out
        if isinstance(node, SequenceNode):
            items, node.value = node.value, []
            out_list = []
            for i, item in enumerate(items):
                items[i] = None
                out_list.append(self.build(item, (*path, i)))
            return out_list
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            self.problems.append(YAMLProblem(self.loc(node), dotted(path), str(getattr(e, "problem", e))))
            return None
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            # PyYAML's constructors fail this way on an explicit tag that does not fit (!!int x)
            self.problems.append(YAMLProblem(self.loc(node), dotted(path), f"{node.value!r} is not a valid {node.tag}"))
            return None
        self.loader.constructed_objects.pop(node, None)  # the constructor's memo would keep every node
        return value


def parse_text(name: str, text: str) -> Document:
    """The Document of file `name` with the (decoded) text `text`; YAMLProblem (`.problems`).

    A file of one mapping without anchors, aliases or YAML errors is built from the parser's
    events as they come (`_Streamer`); anything else is composed first (`composed`), which says
    every problem in the words and places it always has."""
    try:
        return _Streamer(name, text).document()
    except _Fallback:
        return composed(name, text)


def composed(name: str, text: str) -> Document:
    """`parse_text` by composing the whole document into nodes first, then building from them."""
    aliases = _check_events(name, text)
    c_loader = getattr(yaml, "CSafeLoader", None)
    loader: Any = c_loader(text) if c_loader is not None and not aliases else _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as e:
        raise _yaml_problem(name, text, e) from None
    finally:
        loader.dispose()
    return _document(name, node, loader)


class _Fallback(Exception):
    """The text needs the composing path (an anchor or alias, a YAML error, deep nesting, ...)."""


_STR = "tag:yaml.org,2002:str"


class _Streamer:
    """The data and locations of a text of one mapping, built from the parser's events without
    composing nodes first: what `composed` gives for such a text, in half the time and without
    the node tree (about 100 MB for a 3 MB file). Raises _Fallback for any text it does not take:
    an anchor or alias, nesting past MAX_DEPTH, a top level that is not a mapping, not exactly
    one document, any YAML error (then `composed` reports it, in its words)."""

    def __init__(self, file: str, text: str) -> None:
        loader_class = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
        self.loader: Any = loader_class(text)
        self.builder = _Builder(file, self.loader)

    def document(self) -> Document:
        try:
            self.loader.get_event()  # the stream's start
            if not self.loader.check_event(yaml.DocumentStartEvent):
                raise _Fallback
            self.loader.get_event()
            top = self._next()
            if not isinstance(top, yaml.MappingStartEvent):
                raise _Fallback
            data = self._build(top, (), 1)
            if not (isinstance(self._next(), yaml.DocumentEndEvent) and isinstance(self._next(), yaml.StreamEndEvent)):
                raise _Fallback
        except yaml.YAMLError:
            raise _Fallback from None
        finally:
            self.loader.dispose()
        b = self.builder
        if b.problems:
            raise ManyProblems(b.problems)
        return Document(b.file, data, Locations.packing(b.file, b.keys, b.values))

    def _next(self) -> Any:
        event = self.loader.get_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Fallback
        return event

    def _build(self, event: Any, path: Path_, depth: int) -> Any:
        """`_Builder.build` of the node that starts with `event` (at nesting `depth`)."""
        b = self.builder
        mark = event.start_mark
        b.values[path] = (mark.line + 1, mark.column + 1)
        if isinstance(event, yaml.MappingStartEvent):
            if depth > MAX_DEPTH:
                raise _Fallback
            out: dict[str, Any] = {}
            while not isinstance(key := self._next(), yaml.MappingEndEvent):
                if not isinstance(key, yaml.ScalarEvent):
                    b.problems.append(YAMLProblem(self._loc(key), dotted(path), "mapping key must be a string"))
                    self._skip(key, depth + 1)
                    self._skip(self._next(), depth + 1)
                    continue
                name = key.value
                kmark: Any = key.start_mark
                if name in out:
                    b.problems.append(YAMLProblem(self._loc(key), dotted((*path, name)),
                                                  f"duplicate key (first at line {b.keys[(*path, name)][0]})"))
                    self._skip(self._next(), depth + 1)
                    continue
                at = (*path, name)
                b.keys[at] = (kmark.line + 1, kmark.column + 1)
                out[name] = self._build(self._next(), at, depth + 1)
            return out
        if isinstance(event, yaml.SequenceStartEvent):
            if depth > MAX_DEPTH:
                raise _Fallback
            items: list[Any] = []
            while not isinstance(item := self._next(), yaml.SequenceEndEvent):
                items.append(self._build(item, (*path, len(items)), depth + 1))
            return items
        if not isinstance(event, yaml.ScalarEvent):
            raise _Fallback
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(ScalarNode, event.value, event.implicit)
        if tag == _STR:  # SafeConstructor.construct_yaml_str: the scalar's text
            return event.value
        marks: Any = (event.start_mark, event.end_mark)  # libyaml's Mark type is not PyYAML's, but alike
        return b.build(ScalarNode(tag, event.value, marks[0], marks[1], style=event.style), path)

    def _skip(self, event: Any, depth: int) -> None:
        """Read past the node that starts with `event` (still refusing what `_next` refuses)."""
        if isinstance(event, yaml.CollectionStartEvent):
            if depth > MAX_DEPTH:
                raise _Fallback
            while not isinstance(inner := self._next(), yaml.CollectionEndEvent):
                self._skip(inner, depth + 1)

    def _loc(self, event: Any) -> Location:
        return Location(self.builder.file, event.start_mark.line + 1, event.start_mark.column + 1)


# Deeper than any desired state needs (domains.conf nests about 8 levels); PyYAML's composer and
# our builder recurse per level, so a file of 5,000 `{` must be refused before they run.
MAX_DEPTH = 64


def _check_events(name: str, text: str) -> bool:
    """Parse the text into events before composing it: syntax errors, characters YAML does not
    allow and nesting deeper than MAX_DEPTH are reported with their place, in PyYAML's words
    (made plain where they puzzle), before the recursive composer runs. Returns whether the text
    has an alias (refused, with its place, by the composer of `_Loader`).

    libyaml (C) parses first, fast; on any error the pure-Python parser, which is not recursive
    and reads ahead no further than the error, finds it again and says it the same way with or
    without libyaml."""
    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is not None:
        try:
            return _scan(name, text, c_loader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark
            if e.problem == "exceeded maximum nesting depth" and mark is not None:
                # libyaml's own limit (1,000) is met while scanning ahead, before any event: the
                # text up to it holds the place where MAX_DEPTH is passed (the Python parser
                # would take seconds to find it)
                _scan(name, text[:mark.index], c_loader, until_depth=True)
        except yaml.YAMLError:
            pass
    try:
        return _scan(name, text, yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise _yaml_problem(name, text, e) from None


def _scan(name: str, text: str, loader: Any, *, until_depth: bool = False) -> bool:
    """Whether the text has an alias; YAMLProblem past MAX_DEPTH (with `until_depth`, other
    errors are ignored: the text is a prefix)."""
    depth = 0
    alias = False
    try:
        for ev in yaml.parse(text, Loader=loader):
            if isinstance(ev, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = ev.start_mark
                    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
                    raise YAMLProblem(Location(name, line, col), "",
                                      f"nested more than {MAX_DEPTH} levels deep (a desired state needs a few)")
            elif isinstance(ev, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(ev, AliasEvent):
                alias = True
    except yaml.YAMLError:
        if not until_depth:
            raise
    return alias


def _yaml_problem(name: str, text: str, e: yaml.YAMLError) -> YAMLProblem:
    """PyYAML's error at its place, in plain words."""
    if isinstance(e, yaml.reader.ReaderError):
        return _reader_problem(name, text, e)
    if isinstance(e, yaml.MarkedYAMLError):
        return _syntax_problem(name, e)
    return YAMLProblem(Location(name, 1, 1), "", f"YAML error: {e}")


def _syntax_problem(name: str, e: yaml.MarkedYAMLError) -> YAMLProblem:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return YAMLProblem(Location(name, line, col), "", _plain_syntax_message(e.problem or e.context or ""))


def _reader_problem(name: str, text: str, e: yaml.reader.ReaderError) -> YAMLProblem:
    """A character YAML does not allow in a file (a control character), at its line and column."""
    pos = min(max(e.position, 0), len(text))
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = e.character if isinstance(e.character, str) else chr(e.character)
    return YAMLProblem(Location(name, line, col), "",
                       f"control character U+{ord(char):04X} is not allowed in YAML text (write it as an "
                       f"escape inside double quotes, \"\\x{ord(char):02x}\", if it is meant)")


def _plain_syntax_message(msg: str) -> str:
    """PyYAML's words, made plain where they are known to puzzle."""
    if "found character '\\t' that cannot start any token" in msg:
        return ("tabs are not allowed for indentation in YAML; use spaces (domains.conf indents with tabs: "
                "replace each tab with two spaces when pasting from it)")
    return f"YAML syntax error: {msg or 'invalid YAML'}"


def _document(name: str, node: Node | None, loader: Any) -> Document:
    if node is None:
        raise YAMLProblem(
            Location(name, 1, 1), "", "empty file (expected a mapping with Domains, Accounts, ...)"
        )
    builder = _Builder(name, loader)
    if not isinstance(node, MappingNode):
        raise YAMLProblem(builder.loc(node), "", "top level must be a mapping (Domains:, Accounts:, ...)")
    data = builder.build(node, ())
    if builder.problems:
        raise ManyProblems(builder.problems)
    node = None
    keys, values = builder.keys, builder.values
    builder.keys = builder.values = {}
    return Document(name, data, Locations.packing(name, keys, values))
