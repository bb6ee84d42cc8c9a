"""Operations to and from JSON, so `apply --plan FILE` replays exactly what was reviewed.

`Operation.to_json()` writes `{"version", "op", <fields>}` with config values as plain JSON;
here they are turned back into the typed values (reconciler.mox.config dataclasses, tuples, Durations) using
the type hints of the operation and, for the generic savers, of the mox type being saved.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.mox import config as mc
from reconciler.mox.admin import JSON_VERSION, OPERATIONS, Operation
from reconciler.mox.golang import Duration
from reconciler.plan.passwords import SetPassword

# mox's config primitives, and the password step that apply runs through the control socket.
PLAN_OPERATIONS: tuple[type[Operation], ...] = (*OPERATIONS, SetPassword)
_BY_NAME = {cls.__name__: cls for cls in PLAN_OPERATIONS}
# The savers' `fields` are fields of these mox types.
_SAVED_TYPE = {"DomainSave": mc.Domain, "AccountSave": mc.Account, "ConfigSave": mc.Dynamic}


class PlanFileError(ReconcilerError):
    """A plan file that cannot be read back into operations."""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: Any, value: Any) -> Any:
    """A JSON value as the Python value of type `tp`."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return decode(inner[0], value)
    if tp is Duration:
        return Duration(int(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{k: decode(hints[k], v) for k, v in value.items()})
    if origin is tuple:
        return tuple(decode(args[0], v) for v in value)
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, str]):
        return {k: decode(args[1], v) for k, v in value.items()}
    if tp is float:
        _expect(value, (int, float), tp)
        return float(value)
    if tp in (bool, int, str):
        _expect(value, tp, tp)
    return value


def _expect(value: Any, types_: type | tuple[type, ...], tp: type) -> None:
    """Refuse a JSON value of the wrong type (a bool is not a number here, as in Go)."""
    if not isinstance(value, types_) or (isinstance(value, bool) and tp is not bool):
        raise TypeError(f"expected {tp.__name__}, found {type(value).__name__} {value!r}")


def op_from_json(data: Mapping[str, Any]) -> Operation:
    if data.get("version") != JSON_VERSION:
        raise PlanFileError(f"operation format version {data.get('version')!r} is not {JSON_VERSION}")
    name = str(data.get("op"))
    cls = _BY_NAME.get(name)
    if cls is None:
        raise PlanFileError(f"unknown operation {name!r}")
    hints = _hints(cls)
    missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
               if f.name not in data and f.default is f.default_factory is dataclasses.MISSING]
    if missing:
        raise PlanFileError(f"{name}: missing argument(s) {', '.join(missing)}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        raw = data[f.name]
        try:
            if f.name == "fields" and name in _SAVED_TYPE:
                field_types = _hints(_SAVED_TYPE[name])
                unknown = set(raw) - set(field_types)
                if unknown:
                    raise PlanFileError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
                kwargs[f.name] = {k: decode(field_types[k], v) for k, v in raw.items()}
            else:
                kwargs[f.name] = decode(hints[f.name], raw)
        except (TypeError, ValueError, AttributeError) as e:  # a value of the wrong JSON type
            raise PlanFileError(f"{name}.{f.name}: not a valid value ({type(e).__name__}: {e})") from None
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise PlanFileError(f"{name}: {e}") from None
