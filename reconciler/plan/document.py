"""The plan document, format version 2 (docs/plan-format.md), as types.

One document passes through five stages: the planner builds it (`planner.plan_document`), the
renderers draw it, `plan --out` writes it, `apply --plan` reads it back (`read_plan_file`: a
wrong version, shape or operation is one message naming the file and the field), and apply
reports it (last-apply.json, the watcher's status). `schemas/plan.schema.json` is generated
from these models (`python -m reconciler.plan.schema`).

Reading is strict about types (a number where a string belongs is an error, never coerced) and
ignores fields it does not know: fields may be added within a version (docs/plan-format.md).
Version 1 files (no old values, no provenance time) are still read: the fields version 2 added
take their empty defaults.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from reconciler.desired.source import Source
from reconciler.mox.admin import Operation
from reconciler.mox.secret import is_hidden
from reconciler.plan.objects import ObjectRef
from reconciler.plan.opcodec import PLAN_OPERATIONS, PlanFileError, op_from_json
from reconciler.plan.safety import SafetyProblem, SafetyThreshold, safety_problem

PLAN_VERSION: Literal[2] = 2
READABLE_VERSIONS = (1, 2)  # plan files `apply --plan` reads (version 1: before old values)

_HEX64 = r"^[0-9a-f]{64}$"
_OPERATION_NAMES = tuple(sorted(cls.__name__ for cls in PLAN_OPERATIONS))
_OPERATION_ENUM: list[JsonValue] = [*_OPERATION_NAMES]


class _Part(BaseModel):
    """A part of the document: strict types, immutable, unknown fields ignored.

    The attribute docstrings are the field descriptions of schemas/plan.schema.json; the schema
    generator (`reconciler.plan.schema`) reads them, not every import (that parses this file).
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class Action(StrEnum):
    """What an operation does to its object (docs/plan-format.md, Change.action)."""

    CREATE = "create"  # DomainAdd, AccountAdd
    UPDATE = "update"  # everything else, including adding or removing a part of an object
    DELETE = "delete"  # DomainRemove, AccountRemove


class CommitInfo(_Part):
    sha: str = Field(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")
    """Full commit id."""
    author: str
    """`Name <email>`."""
    date: str
    """Author date, ISO 8601 with offset."""
    subject: str
    """First line of the message."""
    signed: bool | None
    """`true` when the signature was verified (`--require-signed-commits`), else `null`."""


class SourceInfo(_Part):
    location: str
    """The source as given: absolute path, or the URL of a remote with credentials removed."""
    ref: str | None
    """`--ref` as given (`null`: HEAD of a checkout, the default branch of a remote)."""
    subdir: str
    """Directory of the desired state inside the repository, `""` for the root."""
    commit: CommitInfo | None
    """The commit the desired state was read at; `null` for a plain directory outside git."""
    dirty: bool
    """A local checkout with uncommitted or untracked changes under the desired-state directory."""
    remote: bool
    """The source is a remote repository (cloned into the cache)."""

    @classmethod
    def of(cls, source: Source) -> SourceInfo:
        c = source.commit
        commit = CommitInfo(sha=c.sha, author=c.author, date=c.date, subject=c.subject, signed=c.signed) if c else None
        return cls(location=source.location, ref=source.ref, subdir=source.subdir, commit=commit,
                   dirty=source.dirty, remote=source.remote)


class LiveInfo(_Part):
    path: str
    """Absolute path of `domains.conf` (with `--base-ref`: `(desired state at REF)`)."""
    sha256: str = Field(pattern=_HEX64)
    """SHA-256 of the bytes of `domains.conf` the plan was made from."""


class Summary(_Part):
    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)
    objects: int = Field(ge=0)
    """Number of distinct objects touched."""
    text: str
    """The one-line summary, counting objects."""


class OperationSpec(_Part):
    """One of mox's admin primitives with its arguments, as `apply --plan` replays it."""

    model_config = ConfigDict(extra="allow")

    version: Literal[1]
    """The operation format: `1`."""
    op: str = Field(json_schema_extra={"enum": _OPERATION_ENUM})
    """The primitive's name; the other keys are its arguments."""

    @field_validator("op")
    @classmethod
    def _known(cls, op: str) -> str:
        if op not in _OPERATION_NAMES:
            raise ValueError(f"unknown operation {op!r}")
        return op

    @classmethod
    def of(cls, op: Operation) -> OperationSpec:
        return cls.model_validate(op.to_json(), strict=False)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def decode(self) -> Operation:
        """The operation as the typed primitive (raises PlanFileError naming what is wrong)."""
        return op_from_json(self.to_json())


class ValueKind(StrEnum):
    """How a value changes (docs/plan-format.md, ValueChange.kind)."""

    CHANGE = "change"  # old -> new
    ADD = "add"  # a map key or list element that appears (new)
    REMOVE = "remove"  # a map key or list element that goes (old)


class ValueChange(_Part):
    """One changed value of an object: a field old -> new, or an element added or removed."""

    path: list[str]
    """Field names and map keys from the object down to the value (`["Destinations", "bob@example.org"]`)."""
    kind: ValueKind = Field(strict=False)
    old: JsonValue = None
    """The value before (`null` for `add`); secrets as `<redacted>`."""
    new: JsonValue = None
    """The value after (`null` for `remove`); secrets as `<redacted>`."""
    object: ObjectRef | None = None
    """Set when the value belongs to another object than the change's (AddressRemove also
    takes the address out of aliases of other domains)."""


class Change(_Part):
    object: ObjectRef
    """`domain/<name>`, `account/<name>` or `config`."""
    action: Action = Field(strict=False)
    creates: list[ObjectRef]
    """Objects the operation creates besides `object`."""
    destructive: bool
    """The operation removes something that exists before this plan."""
    description: str
    """One line for humans."""
    values: list[ValueChange] = []
    """What the operation changes, old -> new (empty for objects it creates or removes)."""
    operation: OperationSpec


class Safety(_Part):
    """The numbers of the change threshold (plan.safety: needs --force when managed >= min_objects
    and touched / managed > max_change_share)."""

    managed: int = Field(ge=0)
    """Owned objects that exist in the live config."""
    touched: int = Field(ge=0)
    """How many of those the plan changes or removes."""
    max_change_share: float = Field(ge=0, le=1)
    """`Policy.MaxChangeShare`."""
    min_objects: int = Field(ge=0)
    """`Policy.MinObjectsForThreshold`."""

    @classmethod
    def of(cls, managed: int, touched: int, threshold: SafetyThreshold) -> Safety:
        return cls(managed=managed, touched=touched, max_change_share=threshold.max_change_share,
                   min_objects=threshold.min_objects)

    @property
    def threshold(self) -> SafetyThreshold:
        return SafetyThreshold(self.max_change_share, self.min_objects)


class SelfServiceKept(_Part):
    """A field an account's user changed in mox (its own settings, `Policy.SelfService: keep`):
    it differs from the desired state and is kept as mox has it. Not a change, not drift."""

    object: ObjectRef
    """`account/<name>`."""
    field: str
    """`FullName`, `JunkFilter`, ... or `Destinations[<address>].Mailbox` (`Rulesets`, `FullName`)."""


class PendingStep(_Part):
    """A step a DKIM rotation waits to take."""

    step: Literal["prepare", "switch", "retire"]
    selector: str
    """The selector it is about (`""` for prepare: the name is chosen then)."""
    earliest: str | None
    """RFC 3339: the earliest time it can happen; `null` while that cannot be told."""
    waiting_for: str


class RotationInfo(_Part):
    """One rotating domain (`DKIM.Rotation`, docs/dkim-rotation.md) as this plan leaves it."""

    domain: str
    stage: Literal["signing", "prepare", "publish", "switch", "retire", "blocked"]
    signing: str | None
    """The selector in Sign after this plan."""
    next: str | None
    """The new selector waiting for its DNS record."""
    retiring: list[str]
    actions: list[str]
    """What this plan does for the rotation, one sentence each."""
    pending: list[PendingStep]
    """Steps to come, earliest first."""
    problems: list[str]
    """To be acted on: a signing selector whose record is not in DNS, no selector name left."""
    dns_checked: bool
    """DNS was checked for this plan (not with `--base-ref`)."""
    publish: list[str] = Field(default_factory=list)
    """DKIM records that must be in DNS (zone lines), for keys that exist."""
    unpublish: list[str] = Field(default_factory=list)
    """DKIM records of retired selectors to delete (`NAME TXT v=DKIM1`)."""
    published_by: str | None = None
    """How records are published (`RFC 2136 to ...`); `null`: by hand, from the DNS-record reports."""


def checksum_of(operations: Sequence[dict[str, Any]]) -> str:
    """SHA-256 of the canonical JSON of the operations: what `apply --plan` replays."""
    blob = json.dumps(list(operations), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class PlanDocument(_Part):
    """The plan as `plan --out` writes it and `apply --plan` replays it."""

    version: Literal[1, 2]
    """The plan format: `2` (`1`: read, never written)."""
    created: str | None = None
    """When the plan was made, ISO 8601 with offset (`null` only in version 1 files)."""
    source: SourceInfo | None
    """Where the desired state came from; `null` only for plans made through the Python API."""
    desired_digest: str | None = Field(pattern=_HEX64)
    """SHA-256 over the desired-state files; `apply --plan` refuses on a mismatch."""
    live: LiveInfo
    summary: Summary
    changes: list[Change]
    """The operations, in the order they are applied (one atomic write)."""
    unmanaged: list[ObjectRef]
    """Live objects neither named by the desired state nor listed in the inventory: never touched."""
    blocked: list[str]
    """Removals the desired state implies but does not state, one sentence each."""
    kept: list[ObjectRef] = []
    """Owned objects that left the desired state while `Policy.Prune` is off: they stay (list
    them under `Removed` to remove them)."""
    warnings: list[str] = []
    """Problems that do not stop the plan (errors with `--strict`), each `file:line:col: field: message`."""
    needs_force: str | None = None
    """Why apply needs `--force` (too much change, or unstated removals), else `null`. Shown for
    the reviewer; `apply` decides from `safety`, `blocked` and `changes` again."""
    inventory_after: list[ObjectRef]
    """The inventory's objects after applying, sorted."""
    safety: Safety
    changed_domains: list[str]
    """Domains created or changed that exist afterwards (their DNS records may change)."""
    kept_self_service: list[SelfServiceKept] = Field(default_factory=list)
    """Self-service fields changed in mox by the account's user, kept (absent in older files: none)."""
    checksum: str = Field(pattern=_HEX64)
    """SHA-256 of the canonical JSON of `changes[].operation`."""
    base_ref: str | None = None
    """Only in plans made with `plan --base-ref REF`: the REF (such plans cannot be applied)."""
    domains: list[str] | None = None
    """Only in plans made with `--domain D` (repeatable): the domains the plan is limited to
    (operations on them and on the addresses and aliases in them), sorted."""
    dkim_rotation: list[RotationInfo] = Field(default_factory=list)
    """Only when a domain has `DKIM.Rotation`: its stage, what it waits for, the next step."""

    @model_serializer(mode="wrap")
    def _without_absent_parts(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("base_ref", "domains"):
            if data.get(key) is None:
                data.pop(key, None)
        if not data.get("dkim_rotation"):
            data.pop("dkim_rotation", None)
        return data

    def to_json(self) -> dict[str, Any]:
        """The document as plain JSON data (docs/plan-format.md's keys, in its order)."""
        return self.model_dump(mode="json")

    def dumps(self) -> str:
        """The document as `plan --out` writes it."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def safety_problem(self) -> SafetyProblem | None:
        """Why this plan needs --force, from its own numbers, or None."""
        return safety_problem(self.safety.managed, self.safety.touched, self.safety.threshold, self.blocked,
                              len(self.changes))

    @property
    def differs(self) -> bool:
        """The live config differs from the desired state: operations to apply, owned objects
        kept or blocked (`plan --detailed-exitcode` exits 2)."""
        return bool(self.changes or self.kept or self.blocked)

    def has_redacted_secrets(self) -> bool:
        """Operations that show a secret in its place (`<redacted>`, `<secret from ...>`):
        replaying them as they are would write that text."""
        return any(_hides_secret(c.operation.to_json()) for c in self.changes)

    @functools.cached_property
    def operations(self) -> tuple[Operation, ...]:
        """The changes' operations as typed primitives (raises PlanFileError naming the change)."""
        ops = []
        for i, c in enumerate(self.changes):
            try:
                ops.append(c.operation.decode())
            except PlanFileError as e:
                raise PlanFileError(f"changes[{i}].operation: {e}") from None
        return tuple(ops)


def _hides_secret(value: Any) -> bool:
    if isinstance(value, str):
        return is_hidden(value)
    if isinstance(value, dict):
        return any(_hides_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_hides_secret(v) for v in value)
    return False


# ---------------------------------------------------------------------------------------------
# Reading a plan file


def _where(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a field path: changes[2].operation.op."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(document)"


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def parse_plan(data: Any) -> PlanDocument:
    """A plan document from JSON data; PlanFileError says which field is wrong and why."""
    if not isinstance(data, dict):
        raise PlanFileError(f"not a plan file: expected a JSON object, found {_json_type(data)}")
    version = data.get("version")
    if "version" in data and (type(version) is not int or version not in READABLE_VERSIONS):
        raise PlanFileError(f"plan file version {json.dumps(version)} is not supported "
                            f"(this release reads versions {' and '.join(map(str, READABLE_VERSIONS))})")
    try:
        doc = PlanDocument.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        more = e.error_count() - 1
        message = first["msg"].removeprefix("Value error, ")
        raise PlanFileError(f"{_where(first['loc'])}: {message}"
                            + (f" (and {more} more problem{'s' if more != 1 else ''})" if more else "")) from None
    doc.operations  # noqa: B018 - decode every operation now, so a bad one is reported before anything runs
    if checksum_of([c.operation.to_json() for c in doc.changes]) != doc.checksum:
        raise PlanFileError("checksum: does not match the operations (the file was edited or damaged); "
                            "make a new plan")
    return doc


def read_plan_file(path: Path) -> PlanDocument:
    """Read and check a plan file (`apply --plan`): one message naming the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PlanFileError(f"{path}: not a plan file: not UTF-8 text") from None
    except OSError as e:
        raise PlanFileError(f"{path}: cannot read plan file: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanFileError(f"{path}:{e.lineno}:{e.colno}: not a plan file: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise PlanFileError(f"{path}: not a plan file: JSON nested too deeply") from None
    try:
        return parse_plan(data)
    except PlanFileError as e:
        raise PlanFileError(f"{path}: {e}") from None
    except RecursionError:  # nested deep enough for the validators, not for Python
        raise PlanFileError(f"{path}: not a plan file: JSON nested too deeply") from None

