"""References to the objects a plan changes and the inventory owns: `domain/<name>`,
`account/<name>`, and `config` (mox's global settings, changed but never owned).

Addresses, aliases and DKIM selectors are parts of their domain or account, not objects.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from reconciler.mox.config import Dynamic


class ObjectKind(StrEnum):
    DOMAIN = "domain"
    ACCOUNT = "account"
    CONFIG = "config"


_KINDS = {k.value: k for k in ObjectKind}


class ObjectRef(str):
    """An object's reference, `kind/name` (or `config`), with its kind and name.

    It is a str, its text as plan files and the inventory write it, so it sorts, compares,
    hashes and serializes as those ids do. Make one with `domain`, `account` or `parse`.
    """

    __slots__ = ()

    def __new__(cls, kind: ObjectKind, name: str = "") -> ObjectRef:
        if (kind is ObjectKind.CONFIG) != (name == ""):
            raise ValueError(f"{kind}: {'no name expected' if name else 'a name is needed'}")
        return super().__new__(cls, f"{kind}/{name}" if name else str(kind))

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # copy and pickle rebuild via __new__
        return self.kind, self.name

    @classmethod
    def domain(cls, name: str) -> ObjectRef:
        # what `cls(ObjectKind.DOMAIN, name)` makes, without its checks for a name (a plan makes 20,000)
        return str.__new__(cls, "domain/" + name) if name else cls(ObjectKind.DOMAIN, name)

    @classmethod
    def account(cls, name: str) -> ObjectRef:
        return str.__new__(cls, "account/" + name) if name else cls(ObjectKind.ACCOUNT, name)

    @classmethod
    def parse(cls, text: str) -> ObjectRef:
        """`domain/<name>`, `account/<name>` or `config`; ValueError for anything else."""
        if isinstance(text, ObjectRef):
            return text
        kind, sep, name = text.partition("/")
        if text == ObjectKind.CONFIG or (sep and name and kind in (ObjectKind.DOMAIN, ObjectKind.ACCOUNT)):
            return str.__new__(cls, text)  # what `cls(kind, name)` makes, without its checks (done here)
        raise ValueError(f"not an object reference (domain/<name>, account/<name> or config): {text!r}")

    @property
    def kind(self) -> ObjectKind:
        text = self.partition("/")[0]
        return _KINDS.get(text) or ObjectKind(text)

    @property
    def name(self) -> str:
        """The domain or account name ("" for `config`)."""
        return self.partition("/")[2]

    def exists_in(self, config: Dynamic) -> bool:
        """The domain or account is in the config (`config` is not an object one can own)."""
        kind, _, name = self.partition("/")  # as `kind` and `name`, once (a plan asks 20,000 times)
        if kind == ObjectKind.DOMAIN:
            return name in config.Domains
        if kind == ObjectKind.ACCOUNT:
            return name in config.Accounts
        return False

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls.parse, core_schema.str_schema(), serialization=core_schema.to_string_ser_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "pattern": "^((domain|account)/.+|config)$"}


CONFIG = ObjectRef(ObjectKind.CONFIG)
