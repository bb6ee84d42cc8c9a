"""Secret references: where the desired state says a secret is, without the secret.

Secrets do not belong in git. Wherever a secret goes (an account's `Password`, a webhook's
`Authorization`) the desired state names where to read it:

    Password: {File: /run/secrets/alice}     # the file's content, one trailing newline ignored
    Password: {Env: ALICE_PASSWORD}          # an environment variable of the reconciler

The YAML gives a `SecretRef`; `read_secrets` reads every reference of a loaded state once (plan,
apply and the watcher do; `validate` and `plan --base-ref` check only the form, as a CI job has
no access to the server's secrets) and keeps the text in the reference, out of its fields: a
reference compares, hashes, prints and serializes as where it points, never as what it read.
Problems are reported like every other desired-state problem, `file:line:col: field: message`,
naming the reference and never any part of the secret.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from reconciler.desired.yamlload import Location, YAMLProblem, dotted
from reconciler.errors import DesiredStateError, ReconcilerError
from reconciler.mox.ctl import password_problem
from reconciler.mox.secret import Secret

if TYPE_CHECKING:
    from reconciler.desired.models import DesiredState

MAX_SECRET_BYTES = 64 * 1024  # a password or a header value; anything bigger is the wrong file
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FORMS = "{File: /absolute/path} or {Env: VARIABLE}"


class SecretError(ReconcilerError):
    """A secret that cannot be read; the message names the reference, never the secret."""


@dataclass(frozen=True)
class SecretRef:
    """`{File: /absolute/path}` or `{Env: VARIABLE}` (exactly one is set).

    The text read by `read_secrets` is kept outside the dataclass fields: equality, hashing,
    `repr`, `dataclasses.asdict` and every serializer see the reference only.
    """

    File: str = ""
    Env: str = ""

    def describe(self) -> str:
        """Where the secret comes from, for plans and messages: `file /run/secrets/alice`."""
        return f"file {self.File}" if self.File else f"environment variable {self.Env}"

    def to_json(self) -> dict[str, str]:
        return {"File": self.File} if self.File else {"Env": self.Env}

    def text(self) -> str:
        """The secret; only after `read_secrets` (a stand-in from `leave_unread` is not one)."""
        text = self.__dict__.get("_text")
        if text is None or self.__dict__.get("_stand_in"):
            raise SecretError(f"internal error: the secret from {self.describe()} was not read")
        return str(text)

    def secret(self) -> Secret:
        """The secret as a config value (written as its text, shown as its origin), or its
        stand-in in a state left unread."""
        text = self.__dict__.get("_text")
        if text is None:
            raise SecretError(f"internal error: the secret from {self.describe()} was not read")
        return Secret(str(text), self.describe())

    @property
    def is_read(self) -> bool:
        """Whether `read_secrets` (or `remember`) gave this reference its secret."""
        return "_text" in self.__dict__ and not self.__dict__.get("_stand_in")

    def remember(self, text: str, *, stand_in: bool = False) -> None:
        """Keep the text read for this reference (once per load; the dataclass stays frozen)."""
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_stand_in", stand_in)


def parse_reference(value: Any, *, what: str = "a secret") -> SecretRef:
    """A reference from YAML data; ValueError (without the value) when it is not one."""
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a secret reference, {FORMS}: {what} written in the desired state would be in git")
    keys = sorted(map(str, value))
    if keys not in (["File"], ["Env"]):
        unknown = [k for k in keys if k not in ("File", "Env")]
        detail = f"unknown key {', '.join(unknown)}" if unknown else "give exactly one of File and Env"
        raise ValueError(f"a secret reference is {FORMS} ({detail})")
    (key, target), = value.items()
    if not isinstance(target, str) or not target:
        raise ValueError(f"{key}: must be a non-empty string")
    if key == "File":
        if not target.startswith("/"):
            raise ValueError(f"File: must be an absolute path (starting with /), not {target!r}")
        if "\0" in target:
            raise ValueError("File: must not contain a NUL character")
        return SecretRef(File=target)
    if not _ENV_NAME.fullmatch(target):
        raise ValueError(f"Env: {target!r} is not an environment variable name (letters, digits, _)")
    return SecretRef(Env=target)


def _parse_or_text(value: Any) -> str | SecretRef:
    if isinstance(value, str):
        return value
    return parse_reference(value)


_REF_SCHEMA: dict[str, Any] = {
    "description": f"A secret reference, {FORMS}: the secret is read by plan and apply, never stored in git.",
    "oneOf": [
        {"type": "object", "properties": {"File": {"type": "string", "pattern": "^/"}}, "required": ["File"],
         "additionalProperties": False},
        {"type": "object", "properties": {"Env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}},
         "required": ["Env"], "additionalProperties": False},
    ],
}


def _ref_json(ref: SecretRef) -> dict[str, str]:
    return ref.to_json()


def _ref_or_text_json(value: str | SecretRef) -> str | dict[str, str]:
    return value.to_json() if isinstance(value, SecretRef) else value


# The field types of the models.
SecretReference = Annotated[
    SecretRef,
    PlainValidator(lambda v: parse_reference(v, what="a password")),
    PlainSerializer(_ref_json),
    WithJsonSchema(_REF_SCHEMA),
]
SecretOrText = Annotated[
    str | SecretRef,
    PlainValidator(_parse_or_text),
    PlainSerializer(_ref_or_text_json),
    WithJsonSchema({"description": "A secret reference (see SecretReference) or, with a warning that it is "
                    "in git, the value itself.", "oneOf": [{"type": "string"}, _REF_SCHEMA]}),
]


# ---------------------------------------------------------------------------------------------
# Reading


def read_secret(ref: SecretRef, environ: Mapping[str, str] | None = None) -> str:
    """The secret a reference points at: one line, not empty. SecretError says why not."""
    where = ref.describe()
    if ref.File:
        text = _read_file(ref.File)
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
    else:
        env = os.environ if environ is None else environ
        value = env.get(ref.Env)
        if value is None:
            raise SecretError(f"secret from {where}: the variable is not set")
        text = value
    if not text:
        raise SecretError(f"secret from {where}: empty")
    if "\n" in text or "\r" in text:
        raise SecretError(f"secret from {where}: more than one line (a secret is one line; "
                          "one trailing newline is ignored)")
    if any(unicodedata.category(c) == "Cc" and c != "\t" for c in text):
        raise SecretError(f"secret from {where}: contains a control character")
    return text


def _read_file(path: str) -> str:
    where = f"secret file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: a FIFO must not hang us
    except FileNotFoundError:
        raise SecretError(f"{where}: does not exist") from None
    except PermissionError:
        raise SecretError(f"{where}: cannot be read: permission denied (this process runs as uid "
                          f"{os.geteuid()})") from None
    except OSError as e:
        raise SecretError(f"{where}: cannot be read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SecretError(f"{where}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise SecretError(f"{where}: not a regular file")
        if st.st_size > MAX_SECRET_BYTES:
            raise SecretError(f"{where}: too large ({st.st_size} bytes; a secret is at most {MAX_SECRET_BYTES})")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise SecretError(f"{where}: cannot be read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{where}: not UTF-8 text") from None


Path_ = tuple[str | int, ...]


def secret_references(state: DesiredState) -> Iterator[tuple[Path_, SecretRef]]:
    """Every secret reference of a desired state, with its field path."""
    for name, account in state.Accounts.items():
        if account.Password is not None:
            yield ("Accounts", name, "Password"), account.Password
        for hook in ("OutgoingWebhook", "IncomingWebhook"):
            value = getattr(account, hook)
            if value is not None and isinstance(value.Authorization, SecretRef):
                yield ("Accounts", name, hook, "Authorization"), value.Authorization


def plain_secrets(state: DesiredState) -> Iterator[Path_]:
    """Secrets written in the desired state itself (allowed for webhooks, with a warning)."""
    for name, account in state.Accounts.items():
        for hook in ("OutgoingWebhook", "IncomingWebhook"):
            value = getattr(account, hook)
            if value is not None and isinstance(value.Authorization, str) and value.Authorization:
                yield ("Accounts", name, hook, "Authorization")


def _where(state: DesiredState, path: Path_, ref: SecretRef) -> Location:
    """The reference's `File:`/`Env:` as written (else its field, else the first file)."""
    where = state.where(*path, "File" if ref.File else "Env") or state.where(*path)
    return where or Location(state.files[0] if state.files else "?", 1, 1)


def read_secrets(state: DesiredState, environ: Mapping[str, str] | None = None) -> None:
    """Read every secret the state references (all problems at once, DesiredStateError).

    Passwords are also checked against mox's rule (`password_problem`), so a password mox would
    refuse stops the plan before anything is written.
    """
    problems: list[YAMLProblem] = []
    for path, ref in secret_references(state):
        try:
            text = read_secret(ref, environ)
        except SecretError as e:
            problems.append(YAMLProblem(_where(state, path, ref), dotted(path), str(e)))
            continue
        why = password_problem(text) if path[-1] == "Password" else None
        if why:
            problems.append(YAMLProblem(_where(state, path, ref), dotted(path),
                                        f"the password from {ref.describe()} would be refused by mox: {why}"))
            continue
        ref.remember(text)
    if problems:
        problems.sort(key=lambda p: (p.where.file, p.where.line, p.where.col))
        raise DesiredStateError([p.text() for p in problems])


def leave_unread(state: DesiredState) -> None:
    """Stand-ins for every secret, for plans that compare two desired states and never apply
    (`plan --base-ref`): the same reference gives the same stand-in, another reference another."""
    for _path, ref in secret_references(state):
        ref.remember(f"(unread secret from {ref.describe()})", stand_in=True)
