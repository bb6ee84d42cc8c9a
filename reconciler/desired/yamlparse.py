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
    def __init__(self, file: str, loader: Any) -> None:
        self.file = file
        self.loader = loader
        self.keys: dict[Path_, Location] = {}
        self.values: dict[Path_, Location] = {}
        self.problems: list[YAMLProblem] = []

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: Path_) -> Any:
        self.values[path] = self.loc(node)
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, ScalarNode):
                    self.problems.append(
                        YAMLProblem(self.loc(knode), dotted(path), "mapping key must be a string")
                    )
                    continue
                key = str(knode.value)
                if key in out:
                    first = self.keys[(*path, key)]
                    self.problems.append(
                        YAMLProblem(
                            self.loc(knode),
                            dotted((*path, key)),
                            f"duplicate key (first at line {first.line})",
                        )
                    )
                    continue
                self.keys[(*path, key)] = self.loc(knode)
                out[key] = self.build(vnode, (*path, key))
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            self.problems.append(YAMLProblem(self.loc(node), dotted(path), str(getattr(e, "problem", e))))
            return None


def parse_text(name: str, text: str) -> Document:
    """The Document of file `name` with the (decoded) text `text`; YAMLProblem (`.problems`)."""
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
    return Document(name, data, Locations.of(name, builder.keys, builder.values))
