"""Secret values in mox's config, and the one rule for showing any config value.

mox keeps a few secrets in domains.conf, where it needs them: the `Authorization` header of an
account's outgoing and incoming webhooks (config/config.go OutgoingWebhook, IncomingWebhook).
They must be written there byte for byte, and nowhere else: not in a plan, a log line, a report
or an error. Everything that shows a config value (plan descriptions and values, plan JSON)
goes through `shown`, so the rule lives here once.

A value the desired state read from a secret reference is a `Secret`: a `str` (mox's type for
the field, so it is written, compared and validated as its text) that also knows where it came
from, and shows as that (`<secret from file /run/secrets/hook>`). A value of a secret field that
is not a `Secret` (read from the live domains.conf, or written in the YAML) shows as
`<redacted>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

_T = TypeVar("_T")

# Fields of mox's config types whose values are secrets (webhook headers; Password: the SMTP
# transports' credentials in mox.conf, never written by the reconciler but never shown either).
SECRET_FIELDS = frozenset({"Authorization", "Password"})
REDACTED = "<redacted>"
_SHOWN_PREFIX = "<secret from "


class Secret(str):
    """A secret config value and where it came from (`origin`, e.g. "file /run/secrets/hook")."""

    origin: str

    def __new__(cls, text: str, origin: str) -> Secret:
        self = super().__new__(cls, text)
        self.origin = origin
        return self

    def __repr__(self) -> str:
        return self.shown()

    def shown(self) -> str:
        return f"{_SHOWN_PREFIX}{self.origin}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (str(self), self.origin))


def shown_secret(value: str) -> str:
    """How the value of a secret field may be shown: its origin, or `<redacted>`."""
    if isinstance(value, Secret):
        return value.shown()
    return REDACTED if value else ""


def shown(value: Any, name: str = "") -> Any:
    """`value` (of the config field `name`) as it may be shown or stored outside domains.conf:
    the same value with every secret replaced by `shown_secret` (dataclasses become dicts of
    their fields, tuples lists, so the result is plain JSON data)."""
    if name in SECRET_FIELDS and isinstance(value, str):
        return shown_secret(value)
    if isinstance(value, Secret):  # a secret in a field not known to be one: still never shown
        return value.shown()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: shown(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): shown(v, str(k)) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [shown(v) for v in value]
    return value


def is_hidden(text: str) -> bool:
    """Whether a value shown by `shown` stands for a secret (so it cannot be replayed as is)."""
    return text == REDACTED or (text.startswith(_SHOWN_PREFIX) and text.endswith(">"))


def redacted(value: _T) -> _T:
    """`value` (a config, or part of one) of the same types, every secret replaced by
    `shown_secret`: for printing a config (`config dump`) without its secrets."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            new = shown_secret(v) if f.name in SECRET_FIELDS and isinstance(v, str) else redacted(v)
            if new is not v:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, Mapping):
        items = {k: redacted(v) for k, v in value.items()}
        return items if any(items[k] is not v for k, v in value.items()) else value  # type: ignore[return-value]
    if isinstance(value, tuple):
        out = tuple(redacted(v) for v in value)
        return out if any(a is not b for a, b in zip(out, value, strict=True)) else value  # type: ignore[return-value]
    return value
