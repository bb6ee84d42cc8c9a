"""Changed values: what one operation does to the fields of the objects it touches, old → new.

A reviewer must see what a change overwrites (a value someone set in mox, a field being reset),
not only which fields change. `value_changes(old, new)` compares two versions of a mox config
value (a domain, an account, the global settings) and returns one `ValueChange` per difference:
nested config blocks are followed field by field, maps of names (Destinations, Aliases, DKIM
Selectors, ...) key by key, lists of plain values element by element (added, removed), and
anything else (a list of rulesets, a block that appears or goes away, a reordered list) as a
whole value.

Every value leaves through `shown` (mox.secret's one rule for secrets, for every format). The
renderers draw values with `value_text` (shortened, control characters escaped).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from reconciler.mox import secret
from reconciler.mox.admin import AddressRemove, DomainAdd, Operation
from reconciler.mox.config import Dynamic
from reconciler.mox.golang import Duration, format_duration
from reconciler.plan.document import Action, ValueChange, ValueKind
from reconciler.plan.objects import ObjectKind, ObjectRef

# Values longer than this (as text) are shortened in text and Markdown, with a marker saying so.
MAX_SHOWN = 100


def shown(path: Sequence[str | int], value: Any) -> JsonValue:
    """The JSON form of a config value at `path` as plans show it: secrets as mox.secret's one
    rule shows them (`<secret from ...>`, `<redacted>`), durations as Go writes them."""
    return _go_durations(secret.shown(value, str(path[-1]) if path else ""))


def _go_durations(value: Any) -> JsonValue:
    if isinstance(value, Duration):
        return format_duration(value)
    if isinstance(value, dict):
        return {k: _go_durations(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_durations(v) for v in value]
    return value  # type: ignore[no-any-return]


def value_changes(old: Any, new: Any, *, of: ObjectRef | None = None) -> list[ValueChange]:
    """The differences between two versions of a config value, in field order (`of`: the
    object they belong to, when it is not the change's own)."""
    return [ValueChange(path=list(path), kind=kind, old=shown(path, o), new=shown(path, n), object=of)
            for path, kind, o, n in _diff(old, new, ())]


def _object_value(dyn: Dynamic, ref: ObjectRef) -> Any:
    if ref.kind is ObjectKind.DOMAIN:
        return dyn.Domains.get(ref.name)
    if ref.kind is ObjectKind.ACCOUNT:
        return dyn.Accounts.get(ref.name)
    return dataclasses.replace(dyn, Domains={}, Accounts={})  # the global settings


def changed_values(op: Operation, obj: ObjectRef, action: Action, before: Dynamic,
                   after: Dynamic) -> tuple[ValueChange, ...]:
    """What `op` changes, old -> new: in its object (unless it creates or removes it), and in
    the other objects mox's primitive changes on the side (AddressRemove takes the address
    out of aliases; DomainAdd gives an existing account the domain's postmaster address)."""
    out: list[ValueChange] = []
    if action is Action.UPDATE:
        out += value_changes(_object_value(before, obj), _object_value(after, obj))
    others: list[ObjectRef] = []
    if isinstance(op, AddressRemove) and after.Domains is not before.Domains:  # else no alias changed
        others = [ObjectRef.domain(n) for n, d in before.Domains.items() if after.Domains.get(n) is not d]
    elif isinstance(op, DomainAdd) and op.account in before.Accounts:
        others = [ObjectRef.account(op.account)]
    for ref in others:
        old, new = _object_value(before, ref), _object_value(after, ref)
        if ref != obj and old is not None and new is not None:
            out += value_changes(old, new, of=ref)
    return tuple(out)


_Diff = tuple[tuple[str, ...], ValueKind, Any, Any]


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | bool | int | float)


def _diff(old: Any, new: Any, path: tuple[str, ...]) -> Iterator[_Diff]:
    if old == new:
        return
    if dataclasses.is_dataclass(old) and type(old) is type(new):
        for f in dataclasses.fields(old):
            yield from _diff(getattr(old, f.name), getattr(new, f.name), (*path, f.name))
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(k for k in new if k not in old)]:
            k = str(key)
            if key not in new:
                yield (*path, k), ValueKind.REMOVE, old[key], None
            elif key not in old:
                yield (*path, k), ValueKind.ADD, None, new[key]
            else:
                yield from _diff(old[key], new[key], (*path, k))
        return
    if isinstance(old, tuple) and isinstance(new, tuple) and all(map(_scalar, (*old, *new))):
        removed = Counter(old) - Counter(new)
        added = Counter(new) - Counter(old)
        if not removed and not added:  # the same elements in another order
            yield path, ValueKind.CHANGE, old, new
            return
        for v in old:
            if removed[v]:
                removed[v] -= 1
                yield path, ValueKind.REMOVE, v, None
        for v in new:
            if added[v]:
                added[v] -= 1
                yield path, ValueKind.ADD, None, v
        return
    yield path, ValueKind.CHANGE, old, new


# ---------------------------------------------------------------------------------------------
# Text


def path_text(path: Sequence[str | int]) -> str:
    """`Destinations[bob@example.org].Mailbox`: fields (mox's CamelCase names) joined by dots,
    map keys in brackets."""
    out = ""
    for part in path:
        p = str(part)
        if p[:1].isupper() and p.isidentifier() and p.isascii():
            out += f".{p}" if out else p
        else:
            out += f"[{p}]"
    return out


def value_text(value: JsonValue, limit: int = MAX_SHOWN) -> str:
    """A value on one line: JSON (strings quoted, control characters escaped; blocks without
    their zero fields), shortened to about `limit` characters with a marker saying how much
    was left out."""
    text = json.dumps(_compact(value), ensure_ascii=False, separators=(", ", ": "))
    if len(text) <= limit:
        return text
    keep = max(limit - 20, 8)
    return f"{text[:keep]}…(+{len(text) - keep} chars)"


def _compact(value: JsonValue) -> JsonValue:
    """Blocks without their zero-valued fields: a Destination with only a Mailbox reads as
    {"Mailbox": "Inbox"}, not with a dozen empty fields."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v not in ("", 0, False, None, [], {})}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def change_text(vc: ValueChange, limit: int = MAX_SHOWN) -> str:
    """One line: `FullName: "" → "Carol"`, `+ Sign: "2026b"`, `- Destinations[bob@example.org]`."""
    where = path_text(vc.path) or "(value)"
    if vc.object is not None:
        where = f"{vc.object} {where}"
    if vc.kind is ValueKind.ADD:
        return f"+ {where}: {value_text(vc.new, limit)}"
    if vc.kind is ValueKind.REMOVE:
        return f"- {where}: {value_text(vc.old, limit)}"
    return f"{where}: {value_text(vc.old, limit)} → {value_text(vc.new, limit)}"
