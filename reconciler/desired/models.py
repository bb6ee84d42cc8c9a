"""The desired state: pydantic models with domains.conf's field names.

A mox operator must recognise every key, so the models mirror `reconciler.mox.config` field for
field. The differences, all documented in docs/desired-state.md:

* Omitted top-level fields of a domain or account take what mox's DomainAdd / AccountAdd
  (MakeDomainConfig / MakeAccountConfig, `reconciler.mox.admin`) would write; inside a block that
  is given, omitted keys are Go zero values, exactly as in domains.conf. An explicit `null` means
  "none".
* Reconciler-only keys: `ReportsAccount` (domain), `Algorithm` (DKIM selector to generate;
  `PrivateKeyFile` adopts an existing key instead), `SelfService` and `Password` (account),
  `DKIM.Rotation` (key rotation policy), `Policy`, `Removed`.
* Secrets are secret references (`reconciler.desired.secrets`): `Password` always, a webhook's
  `Authorization` preferably (a plain value is allowed, with a warning).

Loading and merging files is `load`, the cross-checks are `checks`, and `tomox` gives the mox
config object a desired domain/account stands for (`DesiredState.domain_to_mox` and friends).
"""

from __future__ import annotations

import contextlib
import dataclasses
import marshal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    model_validator,
)

from reconciler.desired.includes import INCLUDE
from reconciler.desired.secrets import SecretOrText, SecretReference
from reconciler.desired.yamlload import Location, Origins
from reconciler.mox import config as mc
from reconciler.mox.admin import make_account_config, make_domain_config
from reconciler.mox.config import Static
from reconciler.mox.golang import Duration, GoSyntaxError, format_duration, parse_duration
from reconciler.mox.names import Domain

# What mox's DomainAdd and AccountAdd write (admin/admin.go MakeDomainConfig, MakeAccountConfig):
# the defaults below are taken from them, so mox's values live in one place.
_DOMAIN_TEMPLATE, _ = make_domain_config(
    Domain("example.org"), Domain("mail.example.org"), "", True, datetime(2000, 1, 1).astimezone()
)
_ACCOUNT_TEMPLATE = make_account_config("", Domain("example.org"))
_T = TypeVar("_T")


def _present(value: _T | None) -> _T:
    assert value is not None
    return value


_DMARC_TEMPLATE = _present(_DOMAIN_TEMPLATE.DMARC)
_TLSRPT_TEMPLATE = _present(_DOMAIN_TEMPLATE.TLSRPT)
_MTASTS_TEMPLATE = _present(_DOMAIN_TEMPLATE.MTASTS)


# ---------------------------------------------------------------------------------------------
# Scalars


# Durations parsed before (a state of 10,000 accounts writes "0s" tens of thousands of times,
# and its defaults are validated too): text -> value, only for text that parsed.
_DURATIONS: dict[str, Duration] = {}
_DURATIONS_KEPT = 256


def _parsed_duration(v: str) -> Duration:
    d = _DURATIONS.get(v)
    if d is None:
        try:
            d = parse_duration(v)
        except GoSyntaxError as e:
            raise ValueError(str(e)) from None
        if len(_DURATIONS) < _DURATIONS_KEPT:
            _DURATIONS[v] = d
    return d


def _duration_in(v: Any) -> Any:
    if isinstance(v, Duration):
        return v
    if isinstance(v, str):
        return _parsed_duration(v)
    raise ValueError("must be a Go duration string such as 24h0m0s, 72h or 90s")


def _check_go_duration(v: str) -> str:
    if v:
        _parsed_duration(v)
    return v


GoDuration = Annotated[
    int,
    BeforeValidator(_duration_in),
    AfterValidator(Duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "description": "Go duration, e.g. 24h0m0s, 72h, 90s"}),
]
GoDurationString = Annotated[str, AfterValidator(_check_go_duration)]


# One set per combination of the fields given (see _Model.model_post_init).
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


class _Model(BaseModel):
    """Unknown keys are errors (typo protection); models are values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        """Models given the same fields share one set of their names (`model_fields_set`): a
        desired state of 10,000 domains and accounts has over 100,000 models, and a set each
        was a third of their memory. Sharing is safe: the models are frozen (nothing adds to the
        set), and a copy (`model_copy`) copies the set before changing it."""
        given = self.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(given), given)
        if shared is not given:
            object.__setattr__(self, "__pydantic_fields_set__", shared)


_M = TypeVar("_M", bound=_Model)

# While a desired state is loaded (`sharing_equal_models`): each value of the small models below,
# by class, fields given and contents; None outside a load. `_given`: the same instances by class
# and the data they were validated from (plain YAML data only), so that data seen before is not
# validated again.
_pool: dict[tuple[Any, ...], BaseModel] | None = None
_given: dict[tuple[Any, ...], BaseModel] = {}


@contextlib.contextmanager
def sharing_equal_models() -> Iterator[None]:
    """Within: equal instances of the small models every domain and account repeats (selectors,
    destinations, junk filters, ...; `_Shared`) are validated to one instance. At 10,000 domains
    and accounts they were 30 MB of the desired state's 66. Scoped to one load, so that a watcher
    keeps nothing from the states it no longer holds."""
    global _pool
    _pool = {}
    _given.clear()
    try:
        yield
    finally:
        _pool = None
        _given.clear()


def _frozen(v: Any) -> Any:
    """`v` as a hashable key that only an equal value of the same types has."""
    t = type(v)
    if t is str:
        return v
    if t is list:
        return (list, *map(_frozen, v))
    if t is dict:
        return (dict, *((k, _frozen(x)) for k, x in v.items()))
    if t is float:
        return (float, v.hex())  # -0.0 is not 0.0 here
    if isinstance(v, BaseModel):
        return (BaseModel, id(v))  # kept alive by the pooled model holding it
    return (t, v)


def _plain(v: Any) -> bytes | None:
    """`v` as a key that only equal data of the same types has: its marshal (version 2: written
    by value alone, no references), for data as YAML gives it (text, numbers, booleans, null,
    lists, mappings); None for anything marshal cannot write (a date, a model, a subclass)."""
    try:
        return marshal.dumps(v, 2)
    except ValueError:
        return None


class _Shared(_Model):
    """A small model whose equal values are one instance while loading (`sharing_equal_models`):
    frozen, so no holder can change what another sees; the lists they hold are never changed
    (`tomox` copies them into mox's tuples)."""

    @model_validator(mode="wrap")
    @classmethod
    def _one_of_equals(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        pool = _pool
        if pool is None:
            return handler(data)
        given = (cls, _plain(data)) if type(data) is dict else None
        if given is not None and given[1] is not None:
            seen = _given.get(given)
            if seen is not None:  # validation is a function of the data: the same data, the same model
                return seen
        model = handler(data)
        key = (type(model), id(model.__pydantic_fields_set__), *map(_frozen, model.__dict__.values()))
        try:
            model = pool.setdefault(key, model)
        except TypeError:  # a value that cannot be a key: kept as it is
            return model
        if given is not None and given[1] is not None:
            _given[given] = model
        return model


# ---------------------------------------------------------------------------------------------
# Domains


class Canonicalization(_Shared):
    HeaderRelaxed: bool = False
    BodyRelaxed: bool = False


_Canonicalization = Canonicalization


class Selector(_Shared):
    """A DKIM selector: generated by the reconciler (`Algorithm`) or adopted (`PrivateKeyFile`)."""

    Algorithm: Literal["rsa", "ed25519"] | None = Field(
        default=None,
        description="Reconciler-only. Key to generate when the selector does not exist yet: rsa "
        "(RSA-2048) or ed25519, as mox's DKIMAdd. Default rsa. Not allowed with PrivateKeyFile.",
    )
    Hash: Literal["", "sha256", "sha1"] = Field(default="", description='"" means sha256.')
    Canonicalization: _Canonicalization = Canonicalization()
    Headers: list[str] = Field(default_factory=list, description="Empty: mox's default header list.")
    DontSealHeaders: bool = False
    Expiration: GoDurationString = Field(
        default="", description="Signature lifetime (DKIMAdd's lifetime), Go duration; empty = none."
    )
    PrivateKeyFile: str = Field(
        default="",
        description="Adopt this existing key file (relative to the config dir). Empty: the "
        "reconciler generates the key, or keeps the live selector's key file of the same name.",
    )


class Rotation(_Model):
    """Reconciler-only: rotate the domain's DKIM key by itself (docs/dkim-rotation.md)."""

    Every: GoDuration = Field(
        description="Start a new key (the next selector) once the signing key is this old. Longer than "
        "PublishWait and at least 24h.",
    )
    Algorithm: Literal["rsa", "ed25519"] = Field(
        default="rsa", description="Key of each new selector: rsa (RSA-2048) or ed25519, as mox's DKIMAdd."
    )
    PublishWait: GoDuration = Field(
        default="48h", validate_default=True,
        description="Sign with a new selector only once its DNS record has been seen continuously this long "
        "(DNS caches and secondaries; negative answers are cached too).",
    )
    RetireAfter: GoDuration = Field(
        default="168h", validate_default=True,
        description="Remove the previous selector (key to dkim/old/, record deleted when publishing) this "
        "long after the switch, and never before its signatures' Expiration (mail in flight, retried and "
        "forwarded mail is verified later).",
    )


_Rotation = Rotation


class DKIM(_Model):
    Selectors: dict[str, Selector] = Field(
        default_factory=dict, description="Not with Rotation: the rotation names and keeps the selectors."
    )
    Sign: list[str] = Field(default_factory=list, description="Not with Rotation: the rotation sets it.")
    Rotation: _Rotation | None = Field(
        default=None,
        description="Reconciler-only. Rotate the key by this policy: prepare the next selector (<year><letter>), "
        "publish its record, switch Sign once DNS has shown it for PublishWait, retire the old one after "
        "RetireAfter. See docs/dkim-rotation.md.",
    )


class DMARC(_Model):
    """A reporting address; omitted keys take DomainAdd's values (Account: ReportsAccount)."""

    Localpart: str = _DMARC_TEMPLATE.Localpart
    Domain: str = ""
    Account: str | None = Field(default=None, description="Default: the domain's ReportsAccount.")
    Mailbox: str = _DMARC_TEMPLATE.Mailbox


class TLSRPT(_Model):
    Localpart: str = _TLSRPT_TEMPLATE.Localpart
    Domain: str = ""
    Account: str | None = Field(default=None, description="Default: the domain's ReportsAccount.")
    Mailbox: str = _TLSRPT_TEMPLATE.Mailbox


# The reporting addresses of a domain that omits them: one instance each for all such domains
# (frozen; made 20,000 times at 10,000 domains otherwise).
_OMITTED_DMARC = DMARC()
_OMITTED_TLSRPT = TLSRPT()


class MTASTS(_Model):
    PolicyID: str = Field(
        default="",
        description="Empty: keep the live policy ID while the policy is unchanged, else a new "
        "UTC timestamp (YYYYMMDDTHHMMSS) as mox's DomainAdd.",
    )
    Mode: Literal["none", "testing", "enforce"] = _MTASTS_TEMPLATE.Mode  # type: ignore[assignment]
    MaxAge: GoDuration = Field(default=format_duration(_MTASTS_TEMPLATE.MaxAge), validate_default=True)
    MX: list[str] | None = Field(default=None, description="Default: [the host name from mox.conf].")


# Aliases: fields named like their type (DKIM: DKIM) need another name for the type.
_DKIM = DKIM
_DMARC = DMARC
_MTASTS = MTASTS
_TLSRPT = TLSRPT


class Route(_Model):
    FromDomain: list[str] = Field(default_factory=list)
    ToDomain: list[str] = Field(default_factory=list)
    MinimumAttempts: int = 0
    Transport: str


class Alias(_Model):
    Addresses: list[str] = Field(min_length=1)
    PostPublic: bool = False
    ListMembers: bool = False
    AllowMsgFrom: bool = False


class DesiredDomain(_Model):
    """A domain; omitted keys get DomainAdd's values (see docs/desired-state.md)."""

    ReportsAccount: str = Field(
        default="",
        description="Reconciler-only. Account receiving DMARC and TLS reports, as ACCOUNT in "
        "`mox config domain add DOMAIN ACCOUNT`; the default Account of DMARC and TLSRPT.",
    )
    Disabled: bool = False
    Description: str = ""
    ClientSettingsDomain: str | None = Field(
        default=None, description='Default: "mail." + domain; "" for none.'
    )
    LocalpartCatchallSeparator: str | None = Field(
        default=None, description='Default: "+" (unless LocalpartCatchallSeparators is given); "" for none.'
    )
    LocalpartCatchallSeparators: list[str] = Field(default_factory=list)
    LocalpartCaseSensitive: bool = False
    DKIM: _DKIM | None = Field(
        default=None,
        description="Omitted: DomainAdd's selectors <year>a/<year>b (RSA-2048, Expiration 72h, "
        "Sign [<year>a]) for a new domain; an existing domain keeps its DKIM. null: no DKIM.",
    )
    DMARC: _DMARC | None = Field(
        default_factory=lambda: _OMITTED_DMARC, description="Omitted: DomainAdd's; null: no DMARC reports."
    )
    MTASTS: _MTASTS | None = Field(
        default=None,
        description="Omitted: MTA-STS enforce/24h/[host name] if a listener serves MTA-STS "
        "(DomainAdd's rule); null: no MTA-STS.",
    )
    TLSRPT: _TLSRPT | None = Field(
        default_factory=lambda: _OMITTED_TLSRPT, description="Omitted: DomainAdd's; null: no TLS reports."
    )
    Routes: list[Route] = Field(default_factory=list)
    Aliases: dict[str, Alias] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Accounts


class OutgoingWebhook(_Model):
    URL: str
    Authorization: SecretOrText = Field(
        default="", description="Header value for the webhook requests: a secret reference, or the value "
        "itself (with a warning: it would be in git)."
    )
    Events: list[str] = Field(default_factory=list)


class IncomingWebhook(_Model):
    URL: str
    Authorization: SecretOrText = Field(
        default="", description="Header value for the webhook requests: a secret reference, or the value "
        "itself (with a warning: it would be in git)."
    )


class Ruleset(_Shared):
    SMTPMailFromRegexp: str = ""
    MsgFromRegexp: str = ""
    VerifiedDomain: str = ""
    HeadersRegexp: dict[str, str] = Field(default_factory=dict)
    IsForward: bool = False
    ListAllowDomain: str = ""
    AcceptRejectsToMailbox: str = ""
    Mailbox: str = ""
    Comment: str = ""


class Destination(_Shared):
    Mailbox: str = ""
    Rulesets: list[Ruleset] = Field(default_factory=list)
    SMTPError: str = ""
    MessageAuthRequiredSMTPError: str = ""
    FullName: str = ""


class SubjectPass(_Shared):
    Period: GoDuration = Field(default="0s", validate_default=True)


class AutomaticJunkFlags(_Shared):
    Enabled: bool = False
    JunkMailboxRegexp: str = ""
    NeutralMailboxRegexp: str = ""
    NotJunkMailboxRegexp: str = ""


class JunkParams(_Shared):
    Onegrams: bool = False
    Twograms: bool = False
    Threegrams: bool = False
    MaxPower: float = 0.0
    TopWords: int = 0
    IgnoreWords: float = 0.0
    RareWords: int = 0


class JunkFilter(_Shared):
    Threshold: float = 0.0
    Params: JunkParams = JunkParams()


_OutgoingWebhook = OutgoingWebhook
_IncomingWebhook = IncomingWebhook
_SubjectPass = SubjectPass
_AutomaticJunkFlags = AutomaticJunkFlags
_JunkFilter = JunkFilter



def _from_mox(value: Any, model: type[_M]) -> _M:
    """A mox config value as the desired model of the same shape (for defaults taken from mox)."""
    return model.model_validate(dataclasses.asdict(value))


# MakeAccountConfig's values.
_TEMPLATE_SUBJECTPASS = _from_mox(_ACCOUNT_TEMPLATE.SubjectPass, SubjectPass)
_TEMPLATE_JUNKFLAGS = _from_mox(_ACCOUNT_TEMPLATE.AutomaticJunkFlags, AutomaticJunkFlags)
_TEMPLATE_JUNKFILTER = _from_mox(_present(_ACCOUNT_TEMPLATE.JunkFilter), JunkFilter)


SelfServicePolicy = Literal["keep", "enforce"]
_SELF_SERVICE_HELP = (
    "Reconciler-only. The fields an account's user changes in mox's account web interface (FullName, "
    "each address's Mailbox, Rulesets and FullName, webhooks, junk and rejects settings, ...): keep "
    "(they are set when the account or address is created, then left as mox has them) or enforce "
    "(git wins).")


class DesiredAccount(_Model):
    """An account; omitted keys get AccountAdd's values (MakeAccountConfig)."""

    Password: SecretReference | None = Field(
        default=None,
        description="Reconciler-only. Where the account's login password is read from, {File: /absolute/path} "
        "or {Env: VARIABLE}. Set through mox's control socket when the account is created and whenever the "
        "secret's content changes; omitted: the password is left as it is.",
    )
    SelfService: SelfServicePolicy | None = Field(default=None, description=_SELF_SERVICE_HELP
                                                  + " Default: Policy.SelfService.")
    OutgoingWebhook: _OutgoingWebhook | None = None
    IncomingWebhook: _IncomingWebhook | None = None
    FromIDLoginAddresses: list[str] = Field(default_factory=list)
    KeepRetiredMessagePeriod: GoDuration = Field(default="0s", validate_default=True)
    KeepRetiredWebhookPeriod: GoDuration = Field(default="0s", validate_default=True)
    LoginDisabled: str = ""
    Domain: str = Field(default="", description="Default: the domain of the first address in Destinations.")
    Description: str = ""
    FullName: str = ""
    Destinations: dict[str, Destination | None] = Field(
        default_factory=dict, description="Addresses (localpart@domain) and catchalls (@domain)."
    )
    SubjectPass: _SubjectPass = _TEMPLATE_SUBJECTPASS
    QuotaMessageSize: int = 0
    RejectsMailbox: str = _ACCOUNT_TEMPLATE.RejectsMailbox
    KeepRejects: bool = False
    Introbox: str = ""
    AutomaticJunkFlags: _AutomaticJunkFlags = _TEMPLATE_JUNKFLAGS
    JunkFilter: _JunkFilter | None = _TEMPLATE_JUNKFILTER
    MaxOutgoingMessagesPerDay: int = 0
    MaxFirstTimeRecipientsPerDay: int = 0
    NoFirstTimeSenderDelay: bool = False
    NoCustomPassword: bool = _ACCOUNT_TEMPLATE.NoCustomPassword
    IMAPCapabilitiesDisabled: list[str] = Field(default_factory=list)
    Routes: list[Route] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Top level


class Policy(_Model):
    """How the reconciler may change the live config."""

    Prune: bool = Field(
        default=False, description="Remove live domains/accounts that the desired state does not define."
    )
    MaxChangeShare: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Refuse (without --force) plans changing more than this share of objects.",
    )
    MinObjectsForThreshold: int = Field(
        default=10, ge=0, description="MaxChangeShare applies only from this many live objects on."
    )
    SelfService: SelfServicePolicy = Field(default="keep", description=_SELF_SERVICE_HELP
                                           + " Accounts can override it.")


class Removed(_Model):
    """Objects to remove from the live config (removal must be stated, never inferred)."""

    Domains: list[str] = Field(default_factory=list)
    Accounts: list[str] = Field(default_factory=list)


_Policy = Policy
_Removed = Removed


def _file_schema(schema: dict[str, Any]) -> None:
    """What a file may say besides the model's keys: `Include` (read by the loader,
    reconciler.desired.includes, never part of the merged state)."""
    schema["description"] = "Desired state of a mox mail server; see docs/desired-state.md."
    path = {"type": "string", "minLength": 1}
    schema["properties"][INCLUDE] = {
        "title": INCLUDE,
        "description": "reconciler-only: other files or directories (their *.yaml) merged with this one; "
        "paths relative to this file, inside the repository. See docs/fleet.md.",
        "anyOf": [path, {"type": "array", "items": path}],
    }


class DesiredState(_Model):
    """The merged desired state; `where(...)` tells where an object was defined."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="mox-reconciler desired state",
        json_schema_extra=_file_schema,
    )

    Policy: _Policy = Policy()
    Domains: dict[str, DesiredDomain] = Field(default_factory=dict)
    Accounts: dict[str, DesiredAccount] = Field(default_factory=dict)
    Removed: _Removed = Removed()
    Routes: list[Route] | None = Field(
        default=None, description="Global routes; omitted: live routes are kept."
    )
    MonitorDNSBLs: list[str] | None = Field(default=None, description="Omitted: the live list is kept.")

    _origins: Origins = PrivateAttr(default_factory=Origins)
    _files: list[str] = PrivateAttr(default_factory=list)
    _warnings: list[str] = PrivateAttr(default_factory=list)
    _paths: list[str] = PrivateAttr(default_factory=list)  # as text: 10,000 Path objects weigh megabytes
    _digest: tuple[str, str] | None = PrivateAttr(default=None)  # (directory, digest_of the files read)

    @property
    def files(self) -> list[str]:
        """The files this state was loaded from (as shown in messages), included ones too."""
        return list(self._files)

    @property
    def warnings(self) -> list[str]:
        """What is allowed but unwise (`file:line:col: field: message`), for the CLI and the logs."""
        return list(self._warnings)

    @property
    def paths(self) -> list[Path]:
        """The files this state was loaded from, resolved (for digests)."""
        return [Path(p) for p in self._paths]

    def digest_at(self, base: str) -> str | None:
        """The desired digest (`includes.digest_of`) of the bytes this state was loaded from,
        names relative to the directory `base`; None when the load did not make it for `base`."""
        return self._digest[1] if self._digest is not None and self._digest[0] == base else None

    def where(self, *path: str | int) -> Location | None:
        """Where `path` was written (its key; list items: the item), e.g. where("Domains", "example.org")."""
        return self._origins.get(tuple(path))

    # -- what it means in mox terms (reconciler.desired.tomox) ----------------------------------

    def domain_to_mox(
        self, name: str, static: Static, existing: mc.Domain | None = None, now: datetime | None = None,
        memo: dict[int, Any] | None = None,
    ) -> mc.Domain:
        """The domains.conf entry the desired domain stands for.

        `existing` (the live entry) supplies what the desired state leaves to the live side: key
        files of generated selectors that exist, an omitted DKIM, an unchanged MTA-STS policy ID.
        Key files still to be generated have PrivateKeyFile "" (apply creates them); `now` gives
        the year of DomainAdd's default selectors and new MTA-STS policy IDs ("" without it).
        `memo`: shared by the conversions of one pass (`tomox.Memo`), so equal shared sub-models
        convert once.
        """
        from reconciler.desired.tomox import domain_to_mox

        return domain_to_mox(name, self.Domains[name], static, existing, now, memo)

    def account_to_mox(self, name: str, memo: dict[int, Any] | None = None) -> mc.Account:
        """The domains.conf entry the desired account stands for (`memo`: see domain_to_mox)."""
        from reconciler.desired.tomox import account_to_mox

        return account_to_mox(self.Accounts[name], memo)

    def to_dynamic(
        self, static: Static, existing: mc.Dynamic | None, now: datetime | None = None
    ) -> mc.Dynamic:
        """The whole domains.conf after reconciling: desired objects, plus live objects the
        desired state does not mention (kept unless listed in Removed or Policy.Prune)."""
        from reconciler.desired.tomox import to_dynamic

        return to_dynamic(self, static, existing, now)
