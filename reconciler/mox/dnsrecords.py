"""DNS records for a hosted domain: mox's `config dnsrecords` text, byte for byte, plus structure.

`generate` is pure: it takes the domain's config, mox.conf, the public keys and the DNSSEC flag,
and returns both the exact lines mox prints (admin/dnsrecords.go `DomainRecords`, v0.0.17) and
one `Record` per DNS record (name, type, TTL, value, purpose, level). The structured records are
what the renderers, the DNS check and the RFC 2136 publisher use; they are built in the same pass
as the text so the two cannot drift apart. Loading keys from disk is separate (`load_inputs`).

Go iterates maps in random order; where that shows (SPF with several SMTP listeners or SOCKS
transports) we use the config file's order, which is one of the orders mox can print.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from reconciler.mox import config as mc
from reconciler.mox import names
from reconciler.mox.errors import RecordsError
from reconciler.mox.golang import go_lower
from reconciler.mox.live import ConfigPaths, LiveConfig

TTL = 300
LETSENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
DKIM_PLACEHOLDER = "(generated at apply)"

Level = Literal["required", "recommended", "optional"]
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey



@dataclass(frozen=True, slots=True)
class Record:
    """One DNS resource record as the reconciler suggests it.

    `name` is the absolute ASCII owner name with trailing dot; `value` is the rdata in zone-file
    presentation form, except for TXT where it is the plain (unquoted, unsplit) text. `publish` is
    false for records mox prints commented out (TLSA without DNSSEC, CAA account variants);
    `placeholder` is true when the value is not known yet (DKIM key generated at apply).
    """

    name: str
    type: str
    value: str
    purpose: str
    level: Level
    ttl: int = TTL
    publish: bool = True
    placeholder: bool = False

    def presentation(self) -> str:
        """The rdata as a zone file writes it (TXT quoted and split into 255-byte strings)."""
        if self.type == "TXT":
            data = self.value.encode()
            chunks = [data[i : i + 255] for i in range(0, len(data), 255)]
            return " ".join(_quote_txt(c) for c in chunks or [b""])
        return self.value

    def rdata(self) -> dns.rdata.Rdata:
        """The record parsed by dnspython: proof the value is valid DNS, and what checks compare."""
        try:
            return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(self.type),
                                       self.presentation())
        except Exception as e:
            raise RecordsError(f"{self.name} {self.type}: invalid record value {self.value!r}: {e}") from None

    def tag(self) -> str:
        """For TXT: the record kind (`v=spf1`, `v=DKIM1`, ...), so other TXT records at a name are
        left alone; other types own their whole RRset."""
        if self.type != "TXT":
            return ""
        return self.value.split(";", 1)[0].split(" ", 1)[0]


def _quote_txt(chunk: bytes) -> str:
    out = []
    for b in chunk:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


@dataclass(frozen=True, slots=True)
class HostKeys:
    """Public host keys of the `public` listener, for DANE: ECDSA P-256 and RSA-2048 in file order."""

    ecdsa_p256: tuple[ec.EllipticCurvePublicKey, ...] = ()
    rsa2048: tuple[rsa.RSAPublicKey, ...] = ()
    ignored: tuple[str, ...] = ()  # files mox ignores (other sizes/curves/types), for logging


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything `DomainRecords` reads, made explicit.

    `dkim` maps selector name to its public key; None means "not known yet" (a plan for a domain
    whose keys are generated at apply) and gives a clearly marked placeholder value.
    """

    domain: names.Domain
    config: mc.Domain
    static: mc.Static
    dkim: Mapping[str, PublicKey | None]
    host_keys: HostKeys = field(default_factory=HostKeys)
    dnssec: bool = False
    cert_issuer: str = ""
    acme_account_uri: str = ""
    # Domains of the config, for DMARC/TLSRPT addresses in another domain (case sensitivity).
    domains: Mapping[str, mc.Domain] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    """The records of one domain: mox's text lines and the structured records."""

    domain: names.Domain
    hostname: names.Domain
    dnssec: bool
    lines: tuple[str, ...]
    records: tuple[Record, ...]

    def text(self) -> str:
        """Exactly what `mox config dnsrecords` prints."""
        return "\n".join(self.lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Value builders (reference §6.2)


def txt_strings_mox(s: str) -> str:
    """mox.TXTStrings: one quoted string, or a `( ... )` block of 100-char strings."""
    if len(s) <= 100:
        return '"' + s + '"'
    r = "(\n"
    while s:
        r += ' \t\t"' + s[:100] + '"\n'
        s = s[100:]
    return r + "\t)"


def dkim_value(key: PublicKey | None) -> str:
    if key is None:
        return "v=DKIM1;h=sha256;p=" + DKIM_PLACEHOLDER
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "v=DKIM1;h=sha256;k=ed25519;p=" + base64.b64encode(raw).decode()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1;h=sha256;p=" + base64.b64encode(der).decode()


def tlsa_value(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "3 1 1 " + hashlib.sha256(der).hexdigest()


def _go_ip(s: str) -> tuple[str, str] | None:
    """(mechanism, text) as Go's net.IP prints it; None for unparsable or unspecified addresses."""
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return None
    if ip.is_unspecified:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "ip4", str(ip.ipv4_mapped)
    return ("ip4" if ip.version == 4 else "ip6"), str(ip)


def spf_value(static: mc.Static) -> str:
    """mox.DomainSPFIPs + spf.Record: listener IPs (NATIPs if set) and SOCKS transport IPs."""
    parts = ["v=spf1"]
    ips: list[str] = []
    for lis in static.Listeners.values():
        if lis is None or not lis.SMTP.Enabled or lis.IPsNATed:
            continue
        ips.extend(lis.NATIPs or lis.IPs)
    for t in static.Transports.values():
        if t is not None and t.Socks is not None:
            ips.extend(t.Socks.RemoteIPs)
    for s in ips:
        got = _go_ip(s)
        if got is not None:
            parts.append(f"{got[0]}:{got[1]}")
    parts += ["mx", "~all"]
    return " ".join(parts)


def _mailto(lp: str, domain: names.Domain, escape: str) -> str:
    addr = names.localpart_string(lp) + "@" + domain.ascii
    for c in escape:
        addr = addr.replace(c, f"%{ord(c):02X}")
    return "mailto:" + addr


def _reporting(
    what: str, lp_s: str, dom_s: str, own: names.Domain, own_conf: mc.Domain,
    domains: Mapping[str, mc.Domain],
) -> tuple[str, names.Domain]:
    """Parsed reporting localpart and address domain, lower-cased unless case-sensitive (mox)."""
    try:
        lp = names.parse_localpart(lp_s)
        addrdom = names.parse_domain(dom_s) if dom_s else own
    except names.ParseError as e:
        raise RecordsError(f"domain {own.name()}: {what}: {e}") from None
    conf = domains.get(addrdom.name(), own_conf) if dom_s else own_conf
    if not conf.LocalpartCaseSensitive:
        lp = go_lower(lp)
    return lp, addrdom


def cert_issuer(static: mc.Static) -> str:
    """The CA's CAA domain when the public listener gets certificates by ACME (Let's Encrypt default)."""
    public = static.Listeners.get("public")
    if public is None or public.TLS is None or not public.TLS.ACME:
        return ""
    acme = static.ACME.get(public.TLS.ACME)
    if acme is None:
        return ""
    if not acme.IssuerDomainName and acme.DirectoryURL == LETSENCRYPT_DIRECTORY:
        return "letsencrypt.org"
    return acme.IssuerDomainName


def _owner(s: str) -> str:
    """An ASCII owner name with trailing dot (selector names may be Unicode)."""
    try:
        s.encode("ascii")
        return s + "."
    except UnicodeEncodeError:
        return names.parse_domain(s).ascii + "."


# ---------------------------------------------------------------------------------------------
# The generator (reference §6.3, admin/dnsrecords.go)


def generate(inp: Inputs) -> Report:
    """mox's DomainRecords: the text lines and the structured records, in mox's order."""
    try:
        host = names.parse_domain(inp.static.Hostname)
    except names.ParseError as e:
        raise RecordsError(f"mox.conf: Hostname {inp.static.Hostname!r}: {e}") from None
    conf = inp.config
    d = inp.domain.ascii
    h = host.ascii
    csd = h
    if conf.ClientSettingsDomain:
        try:
            csd_dom = names.parse_domain(conf.ClientSettingsDomain)
        except names.ParseError as e:
            raise RecordsError(f"domain {inp.domain.name()}: ClientSettingsDomain: {e}") from None
        if csd_dom != host:
            csd = csd_dom.ascii
    L = len(d)
    lines: list[str] = [
        "; Time To Live of 5 minutes, may be recognized if importing as a zone file.",
        "; Once your setup is working, you may want to increase the TTL.",
        "$TTL 300",
        "",
    ]
    recs: list[Record] = []

    def rec(name: str, rtype: str, value: str, purpose: str, level: Level, publish: bool = True,
            placeholder: bool = False) -> None:
        recs.append(Record(name, rtype, value, purpose, level, publish=publish, placeholder=placeholder))

    hk = inp.host_keys
    public = inp.static.Listeners.get("public")
    if public is not None and public.TLS is not None and (hk.ecdsa_p256 or hk.rsa2048):
        lines += [
            "; DANE: These records indicate that a remote mail server trying to deliver email",
            "; with SMTP (TCP port 25) must verify the TLS certificate with DANE-EE (3), based",
            '; on the certificate public key ("SPKI", 1) that is SHA2-256-hashed (1) to the',
            "; hexadecimal hash. DANE-EE verification means only the certificate or public",
            "; key is verified, not whether the certificate is signed by a (centralized)",
            "; certificate authority (CA), is expired, or matches the host name.",
            ";",
            "; NOTE: Create the records below only once: They are for the machine, and apply",
            "; to all hosted domains.",
        ]
        if not inp.dnssec:
            lines += [
                ";",
                "; WARNING: Domain does not appear to be DNSSEC-signed. To enable DANE, first",
                "; enable DNSSEC on your domain, then add the TLSA records. Records below have been",
                "; commented out.",
            ]
        host_pubs: list[ec.EllipticCurvePublicKey | rsa.RSAPublicKey] = [*hk.ecdsa_p256, *hk.rsa2048]
        for hkey in host_pubs:
            tlsa = tlsa_value(hkey)
            if inp.dnssec:
                lines.append("_25._tcp." + (h + ".").ljust(20 + L - 9) + " TLSA " + tlsa)
            else:
                lines.append(";; _25._tcp." + (h + ".").ljust(20 + L - 12) + " TLSA " + tlsa)
            rec(f"_25._tcp.{h}.", "TLSA", tlsa, "DANE: TLS public key of the mail host (SMTP)",
                "recommended", publish=inp.dnssec)
        lines.append("")

    if d != h:
        lines += [
            "; For the machine, only needs to be created once, for the first domain added:",
            "; ",
            "; SPF-allow host for itself, resulting in relaxed DMARC pass for (postmaster)",
            "; messages (DSNs) sent from host:",
            (h + ".").ljust(20 + L) + ' TXT "v=spf1 a -all"',
            "",
        ]
        rec(f"{h}.", "TXT", "v=spf1 a -all", "host SPF: mail host may send its own DSNs", "recommended")
    htr = inp.static.HostTLSRPT
    if d != h and htr.Account:
        try:
            hlp = names.parse_localpart(htr.Localpart)
        except names.ParseError as e:
            raise RecordsError(f"mox.conf: HostTLSRPT.Localpart {htr.Localpart!r}: {e}") from None
        if hlp:
            v = "v=TLSRPTv1; rua=" + _mailto(hlp, host, ",!;")
            lines += [
                "; For the machine, only needs to be created once, for the first domain added:",
                "; ",
                "; Request reporting about success/failures of TLS connections to (MX) host, for DANE.",
                "_smtp._tls." + (h + ".").ljust(20 + L - 11) + "         TXT \"" + v + '"',
                "",
            ]
            rec(f"_smtp._tls.{h}.", "TXT", v, "host TLSRPT: reports about TLS to the mail host",
                "recommended")

    lines += [
        "; Deliver email for the domain to this host.",
        f"{d}.                    MX 10 {h}.",
        "",
        "; Outgoing messages will be signed with the first two DKIM keys. The other two",
        "; configured for backup, switching to them is just a config change.",
    ]
    rec(f"{d}.", "MX", f"10 {h}.", "MX: deliver email for the domain to the mail host", "required")
    for sel in sorted(conf.DKIM.Selectors, key=lambda s: s.encode()):
        key = inp.dkim.get(sel)
        txt = dkim_value(key)
        if len(txt) > 100:
            lines += [
                "; NOTE: The following is a single long record split over several lines for use",
                "; in zone files. When adding through a DNS operator web interface, combine the",
                "; strings into a single string, without ().",
            ]
        lines.append(f"{sel}._domainkey.{d}.   TXT {txt_strings_mox(txt)}")
        rec(_owner(f"{sel}._domainkey.{d}"), "TXT", txt, f"DKIM public key, selector {sel}", "required",
            placeholder=key is None)

    dmarc = "v=DMARC1;p=reject"
    if conf.DMARC is not None:
        lp, adom = _reporting("DMARC", conf.DMARC.Localpart, conf.DMARC.Domain, inp.domain, conf,
                              inp.domains)
        dmarc += ";rua=" + _mailto(lp, adom, ",!") + "!10m"
    spf = spf_value(inp.static)
    lines += [
        "",
        "; Specify the MX host is allowed to send for our domain and for itself (for DSNs).",
        "; ~all means softfail for anything else, which is done instead of -all to prevent older",
        "; mail servers from rejecting the message because they never get to looking for a dkim/dmarc pass.",
        f'{d}.                    TXT "{spf}"',
        "",
        "; Emails that fail the DMARC check (without aligned DKIM and without aligned SPF)",
        "; should be rejected, and request reports. If you email through mailing lists that",
        "; strip DKIM-Signature headers and don't rewrite the From header, you may want to",
        "; set the policy to p=none.",
        f'_dmarc.{d}.             TXT "{dmarc}"',
        "",
    ]
    rec(f"{d}.", "TXT", spf, "SPF: the mail host may send for the domain", "required")
    rec(f"_dmarc.{d}.", "TXT", dmarc, "DMARC policy and aggregate reports", "required")

    if conf.MTASTS is not None:
        sts = f"v=STSv1; id={conf.MTASTS.PolicyID}"
        lines += [
            "; Remote servers can use MTA-STS to verify our TLS certificate with the",
            "; WebPKI pool of CA's (certificate authorities) when delivering over SMTP with",
            "; STARTTLS.",
            f"mta-sts.{d}.            CNAME {h}.",
            f'_mta-sts.{d}.           TXT "{sts}"',
            "",
        ]
        rec(f"mta-sts.{d}.", "CNAME", f"{h}.", "MTA-STS policy host", "recommended")
        rec(f"_mta-sts.{d}.", "TXT", sts, "MTA-STS policy version", "recommended")
    else:
        lines += [
            "; Note: No MTA-STS to indicate TLS should be used. Either because disabled for the",
            "; domain or because mox.conf does not have a listener with MTA-STS configured.",
            "",
        ]

    if conf.TLSRPT is not None:
        lp, adom = _reporting("TLSRPT", conf.TLSRPT.Localpart, conf.TLSRPT.Domain, inp.domain, conf,
                              inp.domains)
        v = "v=TLSRPTv1; rua=" + _mailto(lp, adom, ",!;")
        lines += ["; Request reporting about TLS failures.", f'_smtp._tls.{d}.         TXT "{v}"', ""]
        rec(f"_smtp._tls.{d}.", "TXT", v, "TLSRPT: reports about TLS to the domain", "recommended")

    if csd != h:
        lines += [
            "; Client settings will reference a subdomain of the hosted domain, making it",
            "; easier to migrate to a different server in the future by not requiring settings",
            "; in all clients to be updated.",
            (csd + ".").ljust(20 + L) + f" CNAME {h}.",
            "",
        ]
        rec(f"{csd}.", "CNAME", f"{h}.", "client settings host name", "recommended")

    lines += [
        "; Autoconfig is used by Thunderbird. Autodiscover is (in theory) used by Microsoft.",
        f"autoconfig.{d}.         CNAME {h}.",
        f"_autodiscover._tcp.{d}. SRV 0 1 443 {h}.",
        "",
        "; For secure IMAP and submission autoconfig, point to mail host.",
        f"_imaps._tcp.{d}.        SRV 0 1 993 {csd}.",
        f"_submissions._tcp.{d}.  SRV 0 1 465 {csd}.",
        "",
        "; Next records specify POP3 and non-TLS ports are not to be used.",
        "; These are optional and safe to leave out (e.g. if you have to click a lot in a",
        "; DNS admin web interface).",
        f"_imap._tcp.{d}.         SRV 0 0 0 .",
        f"_submission._tcp.{d}.   SRV 0 0 0 .",
        f"_pop3._tcp.{d}.         SRV 0 0 0 .",
        f"_pop3s._tcp.{d}.        SRV 0 0 0 .",
    ]
    rec(f"autoconfig.{d}.", "CNAME", f"{h}.", "autoconfig (Thunderbird)", "recommended")
    rec(f"_autodiscover._tcp.{d}.", "SRV", f"0 1 443 {h}.", "autodiscover (Microsoft)", "recommended")
    rec(f"_imaps._tcp.{d}.", "SRV", f"0 1 993 {csd}.", "IMAP with TLS for mail clients", "recommended")
    rec(f"_submissions._tcp.{d}.", "SRV", f"0 1 465 {csd}.", "submission with TLS for mail clients",
        "recommended")
    for svc in ("imap", "submission", "pop3", "pop3s"):
        rec(f"_{svc}._tcp.{d}.", "SRV", "0 0 0 .", f"{svc} not offered", "optional")

    issuer = inp.cert_issuer
    if issuer:
        lines += [
            "",
            "; Optional:",
            "; You could mark Let's Encrypt as the only Certificate Authority allowed to",
            "; sign TLS certificates for your domain.",
            f'{d}.                    CAA 0 issue "{issuer}"',
        ]
        rec(f"{d}.", "CAA", f'0 issue "{issuer}"', "CAA: only this CA may issue certificates", "optional")
        uri = inp.acme_account_uri
        if uri:
            x = f"{issuer}; accounturi={uri}; validationmethods=tls-alpn-01,http-01"
            caa = f'0 issue "{x}"'
            lines += [
                ";",
                "; Optionally limit certificates for this domain to the account ID and methods used by mox.",
                f";; {d}.                 CAA {caa}",
                ";",
                "; Or alternatively only limit for email-specific subdomains, so you can use",
                "; other accounts/methods for other subdomains.",
                f";; autoconfig.{d}.      CAA {caa}",
                f";; mta-sts.{d}.         CAA {caa}",
            ]
            purpose = "CAA variant: only mox's ACME account"
            rec(f"{d}.", "CAA", caa, purpose, "optional", publish=False)
            rec(f"autoconfig.{d}.", "CAA", caa, purpose, "optional", publish=False)
            rec(f"mta-sts.{d}.", "CAA", caa, purpose, "optional", publish=False)
            if csd != h:
                lines.append(";; " + csd.ljust(17 + L) + f" CAA {caa}")
                rec(f"{csd}.", "CAA", caa, purpose, "optional", publish=False)
            if h.endswith("." + d):
                lines += [";", "; And the mail hostname.", ";; " + (h + ".").ljust(17 + L) + f" CAA {caa}"]
                rec(f"{h}.", "CAA", caa, purpose, "optional", publish=False)
        else:
            lines += [
                ";",
                "; Note: After starting up, once an ACME account has been created, CAA records",
                "; that restrict issuance to the account will be suggested.",
            ]
    report = Report(inp.domain, host, inp.dnssec, tuple(lines), tuple(recs))
    for r in report.records:
        if not r.placeholder:
            r.rdata()  # every value must be valid DNS
    return report


# ---------------------------------------------------------------------------------------------
# Keys from disk


def load_host_keys(paths: ConfigPaths, static: mc.Static) -> HostKeys:
    """The `public` listener's HostPrivateKeyFiles as mox loads them (first PEM block only)."""
    public = static.Listeners.get("public")
    if public is None or public.TLS is None:
        return HostKeys()
    ecs: list[ec.EllipticCurvePublicKey] = []
    rsas: list[rsa.RSAPublicKey] = []
    ignored: list[str] = []
    for name in public.TLS.HostPrivateKeyFiles:
        path = paths.resolve(name)
        key = _load_host_key(path)
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048:
            rsas.append(key.public_key())
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            ecs.append(key.public_key())
        else:
            ignored.append(str(path))
    return HostKeys(tuple(ecs), tuple(rsas), tuple(ignored))


def _load_host_key(path: Path) -> object:
    what = f"{path}: host private key for DANE"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RecordsError(f"{what}: {e.strerror or e}") from None
    begin = data.find(b"-----BEGIN ")
    if begin < 0:
        raise RecordsError(f"{what}: no PEM block")
    end_of_type = data.find(b"-----", begin + 11)
    pem_type = data[begin + 11 : end_of_type].decode("ascii", "replace")
    end_marker = f"-----END {pem_type}-----".encode()
    end = data.find(end_marker, begin)
    if end < 0:
        raise RecordsError(f"{what}: unterminated PEM block")
    block = data[begin : end + len(end_marker)]
    if pem_type not in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"):
        raise RecordsError(f"{what}: unknown pem type {pem_type!r}")
    try:
        return serialization.load_pem_private_key(block, password=None)
    except (ValueError, TypeError, Exception) as e:
        raise RecordsError(f"{what}: parsing private key: {e}") from None


def load_dkim_keys(paths: ConfigPaths, conf: mc.Domain) -> dict[str, PublicKey]:
    """Public keys of every selector, read from the key files like mox does on config load."""
    from reconciler.mox.keyfiles import KeyFileError, load_dkim_private_key

    out: dict[str, PublicKey] = {}
    for sel, s in conf.DKIM.Selectors.items():
        try:
            key = load_dkim_private_key(paths.resolve(s.PrivateKeyFile))
        except KeyFileError as e:
            raise RecordsError(f"DKIM selector {sel!r}: {e}") from None
        pub = key.public_key()
        if not isinstance(pub, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
            raise RecordsError(f"unrecognized private key for DKIM selector {sel!r}: {type(key).__name__}")
        out[sel] = pub
    return out


def find_domain(dynamic: mc.Dynamic, s: str) -> tuple[names.Domain, mc.Domain]:
    """A domain of the config by any spelling (`café.example`, `xn--caf-dma.example`, `Example.ORG`)."""
    try:
        d = names.parse_domain(s)
    except names.ParseError as e:
        raise RecordsError(f"domain {s!r}: {e}") from None
    conf = dynamic.Domains.get(d.name())
    if d.name() not in dynamic.Domains:
        raise RecordsError(f"unknown domain {d.name()!r} (not in domains.conf)")
    return d, conf if conf is not None else mc.Domain()


def for_live(
    live: LiveConfig, domain: str, *, dnssec: bool = False, acme_account_uri: str = "",
    host_keys: HostKeys | None = None,
) -> Report:
    """The report for a domain of the live config, keys read from disk (what `mox config dnsrecords` does)."""
    d, conf = find_domain(live.dynamic, domain)
    hk = host_keys if host_keys is not None else load_host_keys(live.paths, live.static)
    return generate(Inputs(
        domain=d, config=conf, static=live.static, dkim=load_dkim_keys(live.paths, conf), host_keys=hk,
        dnssec=dnssec, cert_issuer=cert_issuer(live.static), acme_account_uri=acme_account_uri,
        domains={k: (v if v is not None else mc.Domain()) for k, v in live.dynamic.Domains.items()},
    ))


def records_for_plan(
    domain: str, conf: mc.Domain, static: mc.Static, *,
    paths: ConfigPaths | None = None, dkim: Mapping[str, PublicKey | None] | None = None,
    dnssec: bool = False, domains: Mapping[str, mc.Domain] | None = None,
) -> Report:
    """Records a domain will need after a plan is applied, before it exists in the live config.

    DKIM keys not given (not generated yet) become placeholders marked "generated at apply"; with
    `paths`, the host keys for DANE are read from the installation.
    """
    try:
        d = names.parse_domain(domain)
    except names.ParseError as e:
        raise RecordsError(f"domain {domain!r}: {e}") from None
    keys: dict[str, PublicKey | None] = dict.fromkeys(conf.DKIM.Selectors)
    keys.update(dkim or {})
    hk = load_host_keys(paths, static) if paths is not None else HostKeys()
    return generate(Inputs(d, conf, static, keys, hk, dnssec, cert_issuer(static), "",
                           dict(domains or {})))


def merge(reports: Sequence[Report]) -> list[Record]:
    """Published records of several domains (no placeholders), deduplicated, as one zone needs them.

    The host SPF `v=spf1 a -all` suggested for the mail host gives way to the full domain SPF when
    the mail host name is itself a hosted domain: one name must not have two SPF records.
    """
    out: list[Record] = []
    seen: set[tuple[str, str, str]] = set()
    domain_spf = {
        r.name for rep in reports for r in rep.records if r.type == "TXT" and r.tag() == "v=spf1"
        and r.name == rep.domain.ascii + "."
    }
    for rep in reports:
        for r in rep.records:
            if not r.publish or r.placeholder:
                continue
            if r.type == "TXT" and r.value == "v=spf1 a -all" and r.name in domain_spf:
                continue
            k = (r.name, r.type, r.value)
            if k not in seen:
                seen.add(k)
                out.append(r)
    return out
