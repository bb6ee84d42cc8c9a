"""mox's configuration types (mox v0.0.17 `config/config.go`), as pure data.

Attribute names are mox's Go field names and attributes are declared in Go's order, because
sconf writes fields in declaration order: the order here *is* the file format. Fields marked
optional (`opt`) are left out of the file when zero; the others are always written.
`X | None` is a Go pointer (absent or present). Lists are tuples and maps are never mutated:
the mutation primitives build new configs with `dataclasses.replace`.

`domains.conf` is `Dynamic`; the parts of `mox.conf` the reconciler needs are in `Static`
(all of it is modelled, so a mox.conf reads without unknown-key errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.mox.golang import Duration

OPTIONAL = "sconf_optional"


def opt(default: Any = None, *, factory: Any = None) -> Any:
    """An optional field (sconf:"optional"): omitted from the file when zero."""
    if factory is not None:
        return field(default_factory=factory, metadata={OPTIONAL: True})
    return field(default=default, metadata={OPTIONAL: True})


def req_map() -> Any:
    """A required map (always written; an empty one cannot be written readably)."""
    return field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# domains.conf


@dataclass(frozen=True, slots=True)
class Canonicalization:
    HeaderRelaxed: bool = False
    BodyRelaxed: bool = False


@dataclass(frozen=True, slots=True)
class Selector:
    Hash: str = opt("")
    Canonicalization: Canonicalization = opt(factory=Canonicalization)
    Headers: tuple[str, ...] = opt(())
    DontSealHeaders: bool = opt(False)
    Expiration: str = opt("")
    PrivateKeyFile: str = ""


@dataclass(frozen=True, slots=True)
class DKIM:
    Selectors: Mapping[str, Selector] = req_map()
    Sign: tuple[str, ...] = opt(())


@dataclass(frozen=True, slots=True)
class DMARC:
    Localpart: str = ""
    Domain: str = opt("")
    Account: str = ""
    Mailbox: str = ""


@dataclass(frozen=True, slots=True)
class TLSRPT:
    Localpart: str = ""
    Domain: str = opt("")
    Account: str = ""
    Mailbox: str = ""


@dataclass(frozen=True, slots=True)
class MTASTS:
    PolicyID: str = ""
    Mode: str = ""
    MaxAge: Duration = Duration(0)
    MX: tuple[str, ...] = opt(())


@dataclass(frozen=True, slots=True)
class Route:
    FromDomain: tuple[str, ...] = opt(())
    ToDomain: tuple[str, ...] = opt(())
    MinimumAttempts: int = opt(0)
    Transport: str = ""


@dataclass(frozen=True, slots=True)
class Alias:
    Addresses: tuple[str, ...] = ()
    PostPublic: bool = opt(False)
    ListMembers: bool = opt(False)
    AllowMsgFrom: bool = opt(False)


@dataclass(frozen=True, slots=True)
class Domain:
    Disabled: bool = opt(False)
    Description: str = opt("")
    ClientSettingsDomain: str = opt("")
    LocalpartCatchallSeparator: str = opt("")
    LocalpartCatchallSeparators: tuple[str, ...] = opt(())
    LocalpartCaseSensitive: bool = opt(False)
    DKIM: DKIM = opt(factory=DKIM)
    DMARC: DMARC | None = opt(None)
    MTASTS: MTASTS | None = opt(None)
    TLSRPT: TLSRPT | None = opt(None)
    Routes: tuple[Route, ...] = opt(())
    Aliases: Mapping[str, Alias] = opt(factory=dict)

    def separators(self) -> tuple[str, ...]:
        """mox's LocalpartCatchallSeparatorsEffective: the list, then the single one."""
        if self.LocalpartCatchallSeparator:
            return (*self.LocalpartCatchallSeparators, self.LocalpartCatchallSeparator)
        return self.LocalpartCatchallSeparators


@dataclass(frozen=True, slots=True)
class OutgoingWebhook:
    URL: str = ""
    Authorization: str = opt("")
    Events: tuple[str, ...] = opt(())


@dataclass(frozen=True, slots=True)
class IncomingWebhook:
    URL: str = ""
    Authorization: str = opt("")


@dataclass(frozen=True, slots=True)
class Ruleset:
    SMTPMailFromRegexp: str = opt("")
    MsgFromRegexp: str = opt("")
    VerifiedDomain: str = opt("")
    HeadersRegexp: Mapping[str, str] = opt(factory=dict)
    IsForward: bool = opt(False)
    ListAllowDomain: str = opt("")
    AcceptRejectsToMailbox: str = opt("")
    Mailbox: str = ""
    Comment: str = opt("")


@dataclass(frozen=True, slots=True)
class Destination:
    Mailbox: str = opt("")
    Rulesets: tuple[Ruleset, ...] = opt(())
    SMTPError: str = opt("")
    MessageAuthRequiredSMTPError: str = opt("")
    FullName: str = opt("")


@dataclass(frozen=True, slots=True)
class SubjectPass:
    Period: Duration = Duration(0)


@dataclass(frozen=True, slots=True)
class AutomaticJunkFlags:
    Enabled: bool = False
    JunkMailboxRegexp: str = opt("")
    NeutralMailboxRegexp: str = opt("")
    NotJunkMailboxRegexp: str = opt("")


@dataclass(frozen=True, slots=True)
class JunkParams:
    """junk.Params, embedded in JunkFilter and written as the nested key `Params`."""

    Onegrams: bool = opt(False)
    Twograms: bool = opt(False)
    Threegrams: bool = opt(False)
    MaxPower: float = 0.0
    TopWords: int = 0
    IgnoreWords: float = opt(0.0)
    RareWords: int = opt(0)


@dataclass(frozen=True, slots=True)
class JunkFilter:
    Threshold: float = 0.0
    Params: JunkParams = field(default_factory=JunkParams)


@dataclass(frozen=True, slots=True)
class Account:
    OutgoingWebhook: OutgoingWebhook | None = opt(None)
    IncomingWebhook: IncomingWebhook | None = opt(None)
    FromIDLoginAddresses: tuple[str, ...] = opt(())
    KeepRetiredMessagePeriod: Duration = opt(Duration(0))
    KeepRetiredWebhookPeriod: Duration = opt(Duration(0))
    LoginDisabled: str = opt("")
    Domain: str = ""
    Description: str = opt("")
    FullName: str = opt("")
    Destinations: Mapping[str, Destination] = opt(factory=dict)
    SubjectPass: SubjectPass = opt(factory=SubjectPass)
    QuotaMessageSize: int = opt(0)
    RejectsMailbox: str = opt("")
    KeepRejects: bool = opt(False)
    Introbox: str = opt("")
    AutomaticJunkFlags: AutomaticJunkFlags = opt(factory=AutomaticJunkFlags)
    JunkFilter: JunkFilter | None = opt(None)
    MaxOutgoingMessagesPerDay: int = opt(0)
    MaxFirstTimeRecipientsPerDay: int = opt(0)
    NoFirstTimeSenderDelay: bool = opt(False)
    NoCustomPassword: bool = opt(False)
    IMAPCapabilitiesDisabled: tuple[str, ...] = opt(())
    Routes: tuple[Route, ...] = opt(())


@dataclass(frozen=True, slots=True)
class WebStatic:
    StripPrefix: str = opt("")
    Root: str = ""
    ListFiles: bool = opt(False)
    ContinueNotFound: bool = opt(False)
    ResponseHeaders: Mapping[str, str] = opt(factory=dict)


@dataclass(frozen=True, slots=True)
class WebRedirect:
    BaseURL: str = opt("")
    OrigPathRegexp: str = opt("")
    ReplacePath: str = opt("")
    StatusCode: int = opt(0)


@dataclass(frozen=True, slots=True)
class WebForward:
    StripPath: bool = opt(False)
    URL: str = ""
    ResponseHeaders: Mapping[str, str] = opt(factory=dict)


@dataclass(frozen=True, slots=True)
class WebInternal:
    BasePath: str = ""
    Service: str = ""


@dataclass(frozen=True, slots=True)
class WebHandler:
    LogName: str = opt("")
    Domain: str = ""
    PathRegexp: str = ""
    DontRedirectPlainHTTP: bool = opt(False)
    Compress: bool = opt(False)
    WebStatic: WebStatic | None = opt(None)
    WebRedirect: WebRedirect | None = opt(None)
    WebForward: WebForward | None = opt(None)
    WebInternal: WebInternal | None = opt(None)


@dataclass(frozen=True, slots=True)
class Dynamic:
    """domains.conf."""

    Domains: Mapping[str, Domain] = req_map()
    Accounts: Mapping[str, Account] = req_map()
    WebDomainRedirects: Mapping[str, str] = opt(factory=dict)
    WebHandlers: tuple[WebHandler, ...] = opt(())
    Routes: tuple[Route, ...] = opt(())
    MonitorDNSBLs: tuple[str, ...] = opt(())


# ---------------------------------------------------------------------------------------------
# mox.conf


@dataclass(frozen=True, slots=True)
class TLSCA:
    AdditionalToSystem: bool = opt(False)
    CertFiles: tuple[str, ...] = opt(())


@dataclass(frozen=True, slots=True)
class StaticTLS:
    CA: TLSCA | None = opt(None)


@dataclass(frozen=True, slots=True)
class ExternalAccountBinding:
    KeyID: str = ""
    KeyFile: str = ""


@dataclass(frozen=True, slots=True)
class ACME:
    DirectoryURL: str = ""
    RenewBefore: Duration = opt(Duration(0))
    ContactEmail: str = ""
    Port: int = opt(0)
    IssuerDomainName: str = opt("")
    ExternalAccountBinding: ExternalAccountBinding | None = opt(None)


@dataclass(frozen=True, slots=True)
class KeyCert:
    CertFile: str = ""
    KeyFile: str = ""


@dataclass(frozen=True, slots=True)
class ListenerTLS:
    ACME: str = opt("")
    KeyCerts: tuple[KeyCert, ...] = opt(())
    MinVersion: str = opt("")
    HostPrivateKeyFiles: tuple[str, ...] = opt(())
    ClientAuthDisabled: bool = opt(False)


@dataclass(frozen=True, slots=True)
class ListenerSMTP:
    Enabled: bool = False
    Port: int = opt(0)
    NoSTARTTLS: bool = opt(False)
    RequireSTARTTLS: bool = opt(False)
    NoRequireTLS: bool = opt(False)
    DNSBLs: tuple[str, ...] = opt(())
    FirstTimeSenderDelay: Duration | None = opt(None)
    TLSSessionTicketsDisabled: bool | None = opt(None)


@dataclass(frozen=True, slots=True)
class ListenerPlain:
    """Submission and IMAP: a port that can require STARTTLS."""

    Enabled: bool = False
    Port: int = opt(0)
    NoRequireSTARTTLS: bool = opt(False)


@dataclass(frozen=True, slots=True)
class ListenerImplicitTLS:
    """Submissions and IMAPS: implicit TLS, optionally also on the HTTPS port."""

    Enabled: bool = False
    Port: int = opt(0)
    EnabledOnHTTPS: bool = opt(False)


@dataclass(frozen=True, slots=True)
class ListenerWebApp:
    """Account/Admin/Webmail/WebAPI over HTTP(S)."""

    Enabled: bool = False
    Port: int = opt(0)
    Path: str = opt("")
    Forwarded: bool = opt(False)


@dataclass(frozen=True, slots=True)
class ListenerPort:
    """Metrics and pprof."""

    Enabled: bool = False
    Port: int = opt(0)


@dataclass(frozen=True, slots=True)
class ListenerWellKnown:
    """Autoconfig and MTA-STS over HTTPS."""

    Enabled: bool = False
    Port: int = opt(0)
    NonTLS: bool = opt(False)
    Forwarded: bool = opt(False)


@dataclass(frozen=True, slots=True)
class ListenerWebserver:
    Enabled: bool = False
    Port: int = opt(0)
    RateLimitDisabled: bool = opt(False)


@dataclass(frozen=True, slots=True)
class Listener:
    IPs: tuple[str, ...] = ()
    NATIPs: tuple[str, ...] = opt(())
    IPsNATed: bool = opt(False)
    Hostname: str = opt("")
    TLS: ListenerTLS | None = opt(None)
    SMTPMaxMessageSize: int = opt(0)
    SMTP: ListenerSMTP = opt(factory=ListenerSMTP)
    Submission: ListenerPlain = opt(factory=ListenerPlain)
    Submissions: ListenerImplicitTLS = opt(factory=ListenerImplicitTLS)
    IMAP: ListenerPlain = opt(factory=ListenerPlain)
    IMAPS: ListenerImplicitTLS = opt(factory=ListenerImplicitTLS)
    AccountHTTP: ListenerWebApp = opt(factory=ListenerWebApp)
    AccountHTTPS: ListenerWebApp = opt(factory=ListenerWebApp)
    AdminHTTP: ListenerWebApp = opt(factory=ListenerWebApp)
    AdminHTTPS: ListenerWebApp = opt(factory=ListenerWebApp)
    WebmailHTTP: ListenerWebApp = opt(factory=ListenerWebApp)
    WebmailHTTPS: ListenerWebApp = opt(factory=ListenerWebApp)
    WebAPIHTTP: ListenerWebApp = opt(factory=ListenerWebApp)
    WebAPIHTTPS: ListenerWebApp = opt(factory=ListenerWebApp)
    MetricsHTTP: ListenerPort = opt(factory=ListenerPort)
    PprofHTTP: ListenerPort = opt(factory=ListenerPort)
    AutoconfigHTTPS: ListenerWellKnown = opt(factory=ListenerWellKnown)
    MTASTSHTTPS: ListenerWellKnown = opt(factory=ListenerWellKnown)
    WebserverHTTP: ListenerWebserver = opt(factory=ListenerWebserver)
    WebserverHTTPS: ListenerWebserver = opt(factory=ListenerWebserver)


@dataclass(frozen=True, slots=True)
class Postmaster:
    Account: str = ""
    Mailbox: str = ""


@dataclass(frozen=True, slots=True)
class HostTLSRPT:
    Account: str = ""
    Mailbox: str = ""
    Localpart: str = ""


@dataclass(frozen=True, slots=True)
class SpecialUseMailboxes:
    Sent: str = opt("")
    Archive: str = opt("")
    Trash: str = opt("")
    Draft: str = opt("")
    Junk: str = opt("")


@dataclass(frozen=True, slots=True)
class InitialMailboxes:
    SpecialUse: SpecialUseMailboxes = opt(factory=SpecialUseMailboxes)
    Regular: tuple[str, ...] = opt(())


@dataclass(frozen=True, slots=True)
class SMTPAuth:
    Username: str = ""
    Password: str = ""
    Mechanisms: tuple[str, ...] = opt(())


@dataclass(frozen=True, slots=True)
class TransportSMTP:
    Host: str = ""
    Port: int = opt(0)
    STARTTLSInsecureSkipVerify: bool = opt(False)
    NoSTARTTLS: bool = opt(False)
    Auth: SMTPAuth | None = opt(None)


@dataclass(frozen=True, slots=True)
class TransportSocks:
    Address: str = ""
    RemoteIPs: tuple[str, ...] = ()
    RemoteHostname: str = ""


@dataclass(frozen=True, slots=True)
class TransportDirect:
    DisableIPv4: bool = opt(False)
    DisableIPv6: bool = opt(False)


@dataclass(frozen=True, slots=True)
class TransportFail:
    SMTPCode: int = opt(0)
    SMTPMessage: str = opt("")


@dataclass(frozen=True, slots=True)
class Transport:
    Submissions: TransportSMTP | None = opt(None)
    Submission: TransportSMTP | None = opt(None)
    SMTP: TransportSMTP | None = opt(None)
    Socks: TransportSocks | None = opt(None)
    Direct: TransportDirect | None = opt(None)
    Fail: TransportFail | None = opt(None)


@dataclass(frozen=True, slots=True)
class Static:
    """mox.conf."""

    DataDir: str = ""
    LogLevel: str = ""
    PackageLogLevels: Mapping[str, str] = opt(factory=dict)
    User: str = opt("")
    NoFixPermissions: bool = opt(False)
    Hostname: str = ""
    CheckUpdates: bool = opt(False)
    Pedantic: bool = opt(False)
    TLS: StaticTLS = opt(factory=StaticTLS)
    ACME: Mapping[str, ACME] = opt(factory=dict)
    AdminPasswordFile: str = opt("")
    Listeners: Mapping[str, Listener] = req_map()
    Postmaster: Postmaster = field(default_factory=Postmaster)
    HostTLSRPT: HostTLSRPT = opt(factory=HostTLSRPT)
    InitialMailboxes: InitialMailboxes = opt(factory=InitialMailboxes)
    DefaultMailboxes: tuple[str, ...] = opt(())
    Transports: Mapping[str, Transport] = opt(factory=dict)
    NoOutgoingDMARCReports: bool = opt(False)
    NoOutgoingTLSReports: bool = opt(False)
    OutgoingTLSReportsForAllSuccess: bool = opt(False)
    QuotaMessageSize: int = opt(0)
