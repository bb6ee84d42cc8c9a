"""Validation of mox.conf: the config-only checks of mox v0.0.17's `PrepareStaticConfig` (mox-/config.go).

mox refuses to start with these errors, and `mox config test` prints them. Texts are mox's, maps
are iterated sorted. Like `mox config test` (ParseConfig with checkOnly and doLoadTLSKeyCerts),
the `User` is looked up in /etc/passwd and the TLS key/certificate files are read and checked;
ACME accounts are not registered (that needs the network).
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.mox.config import KeyCert, Static, Transport, TransportSMTP
from reconciler.mox.golang import (
    GoSyntaxError,
    base64_rawurl_error,
    go_quote,
    parse_ip,
    parse_uint,
    read_file_error,
    user_lookup,
    utf8_len,
)
from reconciler.mox.keyfiles import KeyFileError, load_private_key_file, x509_key_pair_error
from reconciler.mox.live import ConfigPaths
from reconciler.mox.names import (
    ParseError,
    check_mailbox_nfc,
    is_international_localpart,
    localpart_string,
    parse_domain_or_zero,
    parse_localpart,
)

__all__ = ["validate_static"]

_LOG_LEVELS = frozenset(
    ("tracedata", "traceauth", "trace", "debug", "info", "warn", "error", "fatal", "print")
)
_TLS_VERSIONS = frozenset(("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"))
_AUTH_MECHANISMS = frozenset(
    ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN")
)


def _parent_mailbox(name: str) -> str:
    i = name.rfind("/")
    return "" if i < 0 else name[:i]


def validate_static(static: Static, paths: ConfigPaths) -> list[str]:
    """The config-only checks of mox's PrepareStaticConfig on mox.conf, mox's texts, sorted maps."""
    errs: list[str] = []
    c = static

    def nfc_check(mailbox: str, what: str) -> None:
        msg = check_mailbox_nfc(what, mailbox)
        if msg:
            errs.append(msg)

    if c.LogLevel not in _LOG_LEVELS:
        errs.append(f"invalid log level {go_quote(c.LogLevel)}")
    for pkg in sorted(c.PackageLogLevels):
        if c.PackageLogLevels[pkg] not in _LOG_LEVELS:
            errs.append(f"invalid package log level {go_quote(c.PackageLogLevels[pkg])}")

    errs.extend(_check_user(c.User or "mox"))

    hostname, error = parse_domain_or_zero(c.Hostname)
    if error:
        errs.append(f"parsing hostname: {error}")
    elif hostname.name() != c.Hostname:
        errs.append(
            f"hostname must be in unicode form {go_quote(hostname.name())} instead of {go_quote(c.Hostname)}"
        )

    if c.HostTLSRPT.Account:
        try:
            lp = parse_localpart(c.HostTLSRPT.Localpart, c.Pedantic)
        except ParseError as e:
            errs.append(f"invalid localpart {go_quote(c.HostTLSRPT.Localpart)} for host tlsrpt: {e}")
        else:
            if is_international_localpart(lp):
                errs.append(
                    f"host TLSRPT localpart {go_quote(localpart_string(lp))} "
                    "is an internationalized address, "
                    "only conventional ascii-only address allowed for interopability"
                )

    for name in sorted(c.ACME):
        acme = c.ACME[name]
        if acme.ExternalAccountBinding is not None:
            p = paths.resolve(acme.ExternalAccountBinding.KeyFile)
            try:
                buf = p.read_bytes()
            except OSError as e:
                errs.append(
                    f"acme provider {name}: reading external account binding key: "
                    + read_file_error(p, e)
                )
            else:
                b64err = base64_rawurl_error(buf)
                if b64err:
                    errs.append(
                        f"acme provider {name}: parsing external account binding key as base64: {b64err}"
                    )

    for name in sorted(c.Listeners):
        _check_listener(c, paths, name, errs)

    if c.DefaultMailboxes and (
        any(
            (
                c.InitialMailboxes.SpecialUse.Sent,
                c.InitialMailboxes.SpecialUse.Archive,
                c.InitialMailboxes.SpecialUse.Trash,
                c.InitialMailboxes.SpecialUse.Draft,
                c.InitialMailboxes.SpecialUse.Junk,
            )
        )
        or c.InitialMailboxes.Regular
    ):
        errs.append("cannot have both DefaultMailboxes and InitialMailboxes")
    for mb in c.DefaultMailboxes:
        nfc_check(mb, "default mailbox")
        if _parent_mailbox(mb):
            errs.append("default mailbox cannot be a child mailbox")
    su = c.InitialMailboxes.SpecialUse
    for mb in (su.Archive, su.Draft, su.Junk, su.Sent, su.Trash):
        if mb:
            nfc_check(mb, "special-use initial mailbox")
            if mb.lower() == "inbox":
                errs.append("initial mailbox cannot be set to Inbox (Inbox is always created)")
            if _parent_mailbox(mb):
                errs.append("initial mailboxes cannot be child mailboxes")
    for mb in c.InitialMailboxes.Regular:
        nfc_check(mb, "regular initial mailbox")
        if mb.lower() == "inbox":
            errs.append("initial regular mailbox cannot be set to Inbox (Inbox is always created)")
        if _parent_mailbox(mb):
            errs.append("initial mailboxes cannot be child mailboxes")

    for name in sorted(c.Transports):
        _check_transport(name, c.Transports[name], errs)

    if c.TLS.CA is not None:
        for certfile in c.TLS.CA.CertFiles:
            p = paths.resolve(certfile)
            try:
                pem = p.read_bytes()
            except OSError as e:
                errs.append(f"reading TLS CA cert file: {read_file_error(p, e)}")
                continue
            from cryptography import x509  # only for CA files: a plan need not load it

            try:
                certs = x509.load_pem_x509_certificates(pem)
            except ValueError:
                certs = []
            if not certs:
                errs.append(f"no CA certs added from {go_quote(str(p))}")
    return errs


_USER_HINT = ('hint: add user mox with "useradd -d $PWD mox" or specify a different username '
              "on the quickstart command-line")


def _check_user(user: str) -> list[str]:
    """mox's user.Lookup of `User`, else the name as a numeric uid (ParseUint, 32 bits)."""
    u = user_lookup(user)
    if u is None:
        try:
            parse_uint(user, 32)
        except GoSyntaxError as e:
            return [f"parsing unknown user {user} as uid: {e} ({_USER_HINT})"]
        return []
    errs = []
    for what, value in (("uid", u.uid), ("gid", u.gid)):
        try:
            parse_uint(value, 32)
        except GoSyntaxError as e:
            errs.append(f"parsing {what} {value}: {e}")
    return errs


def _load_tls_key_certs(paths: ConfigPaths, kind: str, key_certs: Sequence[KeyCert]) -> str | None:
    """mox's loadTLSKeyCerts: every certificate and key file read and checked as a pair
    (crypto/tls X509KeyPair); the first failure, in mox's words."""
    for kp in key_certs:
        cert_path, key_path = paths.resolve(kp.CertFile), paths.resolve(kp.KeyFile)
        try:
            cert_pem = cert_path.read_bytes()
        except OSError as e:
            error = f"reading tls certificate: {read_file_error(cert_path, e)}"
        else:
            try:
                key_pem = key_path.read_bytes()
            except OSError as e:
                error = f"reading tls key: {read_file_error(key_path, e)}"
            else:
                error = x509_key_pair_error(cert_pem, key_pem) or ""
        if error:
            return f"tls config for {go_quote(kind)}: parsing x509 key pair: {error}"
    return None


def _check_listener(c: Static, paths: ConfigPaths, name: str, errs: list[str]) -> None:
    lst = c.Listeners[name]

    def lerr(msg: str) -> None:
        errs.append(f"listener {name}: {msg}")

    if lst.Hostname:
        _, error = parse_domain_or_zero(lst.Hostname)
        if error:
            lerr(f"parsing hostname {go_quote(lst.Hostname)}: {error}")
    tls = lst.TLS
    if tls is not None:
        if tls.ACME and tls.KeyCerts:
            lerr("cannot have ACME and static key/certificates")
        elif tls.ACME:
            if tls.ACME not in c.ACME:
                lerr(f"unknown ACME provider {go_quote(tls.ACME)}")
        elif tls.KeyCerts:
            error = _load_tls_key_certs(paths, f"listener {name}", tls.KeyCerts)
            if error:
                lerr(error)
        else:
            lerr("cannot have TLS config without ACME and without static keys/certificates")
        for keyfile in tls.HostPrivateKeyFiles:
            try:
                load_private_key_file(paths.resolve(keyfile))
            except KeyFileError as e:
                lerr(f"parsing host private key for DANE and ACME certificates: {e}")
        if tls.MinVersion and tls.MinVersion not in _TLS_VERSIONS:
            lerr(f"unknown TLS mininum version {go_quote(tls.MinVersion)}")  # sic
    else:
        needs = [
            what
            for what, on in (
                ("IMAPS", lst.IMAPS.Enabled),
                ("SMTP", lst.SMTP.Enabled and not lst.SMTP.NoSTARTTLS),
                ("Submissions", lst.Submissions.Enabled),
                ("Submission", lst.Submission.Enabled and not lst.Submission.NoRequireSTARTTLS),
                ("AccountHTTPS", lst.AccountHTTPS.Enabled),
                ("AdminHTTPS", lst.AdminHTTPS.Enabled),
                ("AutoconfigHTTPS", lst.AutoconfigHTTPS.Enabled and not lst.AutoconfigHTTPS.NonTLS),
                ("MTASTSHTTPS", lst.MTASTSHTTPS.Enabled and not lst.MTASTSHTTPS.NonTLS),
                ("WebserverHTTPS", lst.WebserverHTTPS.Enabled),
            )
            if on
        ]
        if needs:
            lerr(f"no tls config specified, but requires tls for {', '.join(needs)}")
    ac, sts = lst.AutoconfigHTTPS, lst.MTASTSHTTPS
    if ac.Enabled and sts.Enabled and ac.Port == sts.Port and ac.NonTLS != sts.NonTLS:
        lerr("autoconfig and mta-sts enabled on same port but with both http and https")
    if lst.SMTP.Enabled:
        for ip in lst.IPs:
            if parse_ip(ip) is None:
                lerr(f"invalid IP {go_quote(ip)}")
    for zone in lst.SMTP.DNSBLs:
        _, error = parse_domain_or_zero(zone)
        if error:
            lerr(f"parsing DNSBL zone {go_quote(zone)}: {error}")
    if lst.IPsNATed and lst.NATIPs:
        lerr("both IPsNATed and NATIPs configued (remove deprecated IPsNATed)")  # sic
    for ipstr in lst.NATIPs:
        natip = parse_ip(ipstr)
        if natip is None:
            lerr(f"invalid ip {go_quote(ipstr)}")
        elif natip.is_unspecified or natip.is_loopback:
            lerr(f"NAT ip that is the unspecified or loopback address {ipstr}")
    for kind in (
        "AccountHTTP",
        "AccountHTTPS",
        "AdminHTTP",
        "AdminHTTPS",
        "WebmailHTTP",
        "WebmailHTTPS",
        "WebAPIHTTP",
        "WebAPIHTTPS",
    ):
        app = getattr(lst, kind)
        if app.Enabled and app.Path and not app.Path.startswith("/"):
            lerr(f"{kind} with path {go_quote(app.Path)} that must start with a slash")


def _check_transport(name: str, t: Transport, errs: list[str]) -> None:
    def terr(msg: str) -> None:
        errs.append(f"transport {name}: {msg}")

    def smtp(is_tls: bool, ts: TransportSMTP) -> None:
        _, error = parse_domain_or_zero(ts.Host)
        if error:
            terr(f"bad host {ts.Host}: {error}")
        if is_tls and ts.STARTTLSInsecureSkipVerify:
            terr("cannot have STARTTLSInsecureSkipVerify with immediate TLS")
        if is_tls and ts.NoSTARTTLS:
            terr("cannot have NoSTARTTLS with immediate TLS")
        if ts.Auth is None:
            return
        seen: set[str] = set()
        for m in ts.Auth.Mechanisms:
            if m in seen:
                terr(f"duplicate authentication mechanism {m}")
            seen.add(m)
            if m not in _AUTH_MECHANISMS:
                terr(f"unknown authentication mechanism {m}")

    n = 0
    if t.Submissions is not None:
        n += 1
        smtp(True, t.Submissions)
    if t.Submission is not None:
        n += 1
        smtp(False, t.Submission)
    if t.SMTP is not None:
        n += 1
        smtp(False, t.SMTP)
    if t.Socks is not None:
        n += 1
        _host, sep, _port = t.Socks.Address.rpartition(":")
        if not sep:
            terr(f"bad address {t.Socks.Address}: address {t.Socks.Address}: missing port in address")
        for ipstr in t.Socks.RemoteIPs:
            if parse_ip(ipstr) is None:
                terr(f"bad ip {ipstr}")
        _, error = parse_domain_or_zero(t.Socks.RemoteHostname)
        if error:
            terr(f"bad hostname {t.Socks.RemoteHostname}: {error}")
    if t.Direct is not None:
        n += 1
        if t.Direct.DisableIPv4 and t.Direct.DisableIPv6:
            terr("both IPv4 and IPv6 are disabled, enable at least one")
    if t.Fail is not None:
        n += 1
        code = t.Fail.SMTPCode
        hundreds = abs(code) // 100 * (1 if code >= 0 else -1)  # Go's integer division truncates
        if code != 0 and hundreds not in (4, 5):
            terr(f"smtp code {hundreds} must be 4xx or 5xx")
        if utf8_len(t.Fail.SMTPMessage) > 256:
            terr("message must be <= 256 characters")
        for ch in t.Fail.SMTPMessage:
            if ch < " " or ord(ch) >= 0x7F:
                terr("message cannot contain control characters including newlines, and must be ascii-only")
    if n > 1:
        terr("cannot have multiple methods in a transport")
