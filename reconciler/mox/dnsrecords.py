"""DNS records for a hosted domain: mox's `config dnsrecords` text, byte for byte, plus structure.

A port of mox v0.0.17's `DomainRecords` (admin/dnsrecords.go) with its value builders
(`mox.TXTStrings` in mox-/txt.go, `mox.DomainSPFIPs` in mox-/ip.go, the DKIM, DMARC, SPF and
TLSRPT record types). `generate` is pure: it takes the domain's config, mox.conf, the public keys
and the DNSSEC flag, and returns both the exact lines mox prints and one `Record` per DNS record
(name, type, TTL, value, purpose, level). The structured records are what the renderers, the DNS
check and the RFC 2136 publisher use; they are built in the same pass as the text, one method per
group of records in mox's order, so the two cannot drift apart. Reading the inputs from disk for a
live config or a plan is `reconciler.dns.reports`.

Go iterates maps in random order; where that shows (SPF with several SMTP listeners or SOCKS
transports) we use the config file's order, which is one of the orders mox can print.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from reconciler.mox import config as mc
from reconciler.mox import names
from reconciler.mox.admin import reporting_address
from reconciler.mox.errors import RecordsError
from reconciler.mox.golang import ip_to4, parse_ip, sorted_strings
from reconciler.mox.keyfiles import HostKeys
from reconciler.mox.names import Address

# dnspython and cryptography are imported where records are made (a plan without rotation or a
# Markdown comment makes none).
if TYPE_CHECKING:
    import dns.rdata
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

TTL = 300
LETSENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
DKIM_PLACEHOLDER = "(generated at apply)"

Level = Literal["required", "recommended", "optional"]



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
        import dns.rdata
        import dns.rdataclass
        import dns.rdatatype

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
    # The mail host's name is itself a domain of the config (Inputs.domains): its SPF is that
    # domain's, not the host SPF suggested here (reconciler.dns.reports.merge).
    host_is_hosted: bool = False

    def text(self) -> str:
        """Exactly what `mox config dnsrecords` prints."""
        return "\n".join(self.lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Value builders (mox.TXTStrings, dkim.Record, DANE's TLSA, mox.DomainSPFIPs + spf.Record)


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
    """dkim.Record of a selector's public key (sha256 only, k=ed25519 for Ed25519); a placeholder for None."""
    if key is None:
        return "v=DKIM1;h=sha256;p=" + DKIM_PLACEHOLDER
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "v=DKIM1;h=sha256;k=ed25519;p=" + base64.b64encode(raw).decode()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1;h=sha256;p=" + base64.b64encode(der).decode()


def dkim_record(domain: names.Domain, selector: str, key: PublicKey | None) -> Record:
    """The DKIM TXT record of one selector (a placeholder for a key not generated yet)."""
    return Record(dkim_owner(selector, domain), "TXT", dkim_value(key), f"DKIM public key, selector {selector}",
                  "required", placeholder=key is None)


def tlsa_value(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    """DANE-EE, SPKI, SHA2-256 of a host key: the TLSA rdata mox suggests."""
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "3 1 1 " + hashlib.sha256(der).hexdigest()


def _spf_ip(s: str) -> tuple[str, str] | None:
    """(mechanism, address) of one IP as spf.Record prints it; None for unparsable or unspecified."""
    ip = parse_ip(s)
    if ip is None or ip.is_unspecified:
        return None
    v4 = ip_to4(ip)
    return ("ip4", str(v4)) if v4 is not None else ("ip6", str(ip))


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
        got = _spf_ip(s)
        if got is not None:
            parts.append(f"{got[0]}:{got[1]}")
    parts += ["mx", "~all"]
    return " ".join(parts)


def _mailto(lp: str, domain: names.Domain, escape: str) -> str:
    """A `mailto:` reporting URI as dmarc.URI / tlsrpt.RUA print it (`,` and `!` and `;` escaped)."""
    addr = names.localpart_string(lp) + "@" + domain.ascii
    for c in escape:
        addr = addr.replace(c, f"%{ord(c):02X}")
    return "mailto:" + addr


def _reporting(what: str, rep: mc.DMARC | mc.TLSRPT, inp: Inputs) -> Address:
    """The reporting address as mox keeps it (see `admin.reporting_address`); RecordsError if invalid."""
    own = inp.domain.name()
    try:
        return reporting_address({**inp.domains, own: inp.config}, own, rep)
    except names.ParseError as e:
        raise RecordsError(f"domain {own}: {what}: {e}") from None


def cert_issuer(static: mc.Static) -> str:
    """The CA's CAA domain when the public listener gets certificates by ACME, as `mox config
    dnsrecords` passes it (main.go cmdConfigDNSRecords; Let's Encrypt's default from
    PrepareStaticConfig)."""
    public = static.Listeners.get("public")
    if public is None or public.TLS is None or not public.TLS.ACME:
        return ""
    acme = static.ACME.get(public.TLS.ACME)
    if acme is None:
        return ""
    if not acme.IssuerDomainName and acme.DirectoryURL == LETSENCRYPT_DIRECTORY:
        return "letsencrypt.org"
    return acme.IssuerDomainName


def dkim_owner(selector: str, domain: names.Domain) -> str:
    """The owner name of a DKIM key record: `<selector>._domainkey.<domain>.`, ASCII, built label
    by label. A selector is a domain name of its own (mox's Selector.Domain, from dns.ParseDomain),
    so a Unicode selector is queried by its A-label; `_domainkey` is no host name and never goes
    through IDNA (mox prints the selector as configured, see `_Generator.dkim`)."""
    try:
        sel = names.parse_domain(selector)
    except names.ParseError as e:
        raise RecordsError(f"DKIM selector {selector!r}: {e}") from None
    return f"{sel.ascii}._domainkey.{domain.ascii}."


# ---------------------------------------------------------------------------------------------
# The generator: admin/dnsrecords.go DomainRecords, one method per group of records in mox's order


def generate(inp: Inputs) -> Report:
    """mox's DomainRecords: the text lines and the structured records, in mox's order."""
    return _Generator(inp).report()


class _Generator:
    """One DomainRecords run: the names it derives once, and the lines and records it appends."""

    def __init__(self, inp: Inputs) -> None:
        try:
            self.host = names.parse_domain(inp.static.Hostname)
        except names.ParseError as e:
            raise RecordsError(f"mox.conf: Hostname {inp.static.Hostname!r}: {e}") from None
        self.inp = inp
        self.conf = inp.config
        self.d = inp.domain.ascii  # mox's d, h and csd: the domain, the host, the client settings host
        self.h = self.host.ascii
        self.csd = self.h
        if self.conf.ClientSettingsDomain:
            try:
                csd_dom = names.parse_domain(self.conf.ClientSettingsDomain)
            except names.ParseError as e:
                raise RecordsError(f"domain {inp.domain.name()}: ClientSettingsDomain: {e}") from None
            if csd_dom != self.host:
                self.csd = csd_dom.ascii
        self.pad = len(self.d)  # mox aligns columns with 20+len(d)
        self.lines: list[str] = []
        self.records: list[Record] = []

    def report(self) -> Report:
        for group in (self.header, self.dane, self.host_spf, self.host_tlsrpt, self.mx, self.dkim,
                      self.spf_dmarc, self.mtasts, self.tlsrpt, self.client_settings, self.autoconfig,
                      self.caa):
            group()
        report = Report(self.inp.domain, self.host, self.inp.dnssec, tuple(self.lines), tuple(self.records),
                        self.host.name() in self.inp.domains or self.host.name() == self.inp.domain.name())
        for r in report.records:
            if not r.placeholder:
                r.rdata()  # every value must be valid DNS
        return report

    def rec(self, name: str, rtype: str, value: str, purpose: str, level: Level, publish: bool = True,
            placeholder: bool = False) -> None:
        self.records.append(Record(name, rtype, value, purpose, level, publish=publish, placeholder=placeholder))

    def header(self) -> None:
        self.lines += [
            "; Time To Live of 5 minutes, may be recognized if importing as a zone file.",
            "; Once your setup is working, you may want to increase the TTL.",
            "$TTL 300",
            "",
        ]

    def dane(self) -> None:
        """TLSA records for the public listener's host keys (commented out without DNSSEC)."""
        hk, h, pad = self.inp.host_keys, self.h, self.pad
        public = self.inp.static.Listeners.get("public")
        if public is None or public.TLS is None or not (hk.ecdsa_p256 or hk.rsa2048):
            return
        self.lines += [
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
        if not self.inp.dnssec:
            self.lines += [
                ";",
                "; WARNING: Domain does not appear to be DNSSEC-signed. To enable DANE, first",
                "; enable DNSSEC on your domain, then add the TLSA records. Records below have been",
                "; commented out.",
            ]
        host_pubs: list[ec.EllipticCurvePublicKey | rsa.RSAPublicKey] = [*hk.ecdsa_p256, *hk.rsa2048]
        for hkey in host_pubs:
            tlsa = tlsa_value(hkey)
            if self.inp.dnssec:
                self.lines.append("_25._tcp." + (h + ".").ljust(20 + pad - 9) + " TLSA " + tlsa)
            else:
                self.lines.append(";; _25._tcp." + (h + ".").ljust(20 + pad - 12) + " TLSA " + tlsa)
            self.rec(f"_25._tcp.{h}.", "TLSA", tlsa, "DANE: TLS public key of the mail host (SMTP)",
                     "recommended", publish=self.inp.dnssec)
        self.lines.append("")

    def host_spf(self) -> None:
        """SPF for the mail host itself (its DSNs), once per machine."""
        d, h = self.d, self.h
        if d == h:
            return
        self.lines += [
            "; For the machine, only needs to be created once, for the first domain added:",
            "; ",
            "; SPF-allow host for itself, resulting in relaxed DMARC pass for (postmaster)",
            "; messages (DSNs) sent from host:",
            (h + ".").ljust(20 + self.pad) + ' TXT "v=spf1 a -all"',
            "",
        ]
        self.rec(f"{h}.", "TXT", "v=spf1 a -all", "host SPF: mail host may send its own DSNs", "recommended")

    def host_tlsrpt(self) -> None:
        """TLSRPT for the mail host (mox.conf HostTLSRPT), once per machine."""
        d, h = self.d, self.h
        htr = self.inp.static.HostTLSRPT
        if d == h or not htr.Account:
            return
        try:
            hlp = names.parse_localpart(htr.Localpart)
        except names.ParseError as e:
            raise RecordsError(f"mox.conf: HostTLSRPT.Localpart {htr.Localpart!r}: {e}") from None
        if not hlp:
            return
        v = "v=TLSRPTv1; rua=" + _mailto(hlp, self.host, ",!;")
        self.lines += [
            "; For the machine, only needs to be created once, for the first domain added:",
            "; ",
            "; Request reporting about success/failures of TLS connections to (MX) host, for DANE.",
            "_smtp._tls." + (h + ".").ljust(20 + self.pad - 11) + "         TXT \"" + v + '"',
            "",
        ]
        self.rec(f"_smtp._tls.{h}.", "TXT", v, "host TLSRPT: reports about TLS to the mail host", "recommended")

    def mx(self) -> None:
        d, h = self.d, self.h
        self.lines += [
            "; Deliver email for the domain to this host.",
            f"{d}.                    MX 10 {h}.",
            "",
        ]
        self.rec(f"{d}.", "MX", f"10 {h}.", "MX: deliver email for the domain to the mail host", "required")

    def dkim(self) -> None:
        """One TXT record per selector, sorted (placeholders for keys generated at apply)."""
        d = self.d
        self.lines += [
            "; Outgoing messages will be signed with the first two DKIM keys. The other two",
            "; configured for backup, switching to them is just a config change.",
        ]
        for sel in sorted_strings(self.conf.DKIM.Selectors):
            key = self.inp.dkim.get(sel)
            txt = dkim_value(key)
            if len(txt) > 100:
                self.lines += [
                    "; NOTE: The following is a single long record split over several lines for use",
                    "; in zone files. When adding through a DNS operator web interface, combine the",
                    "; strings into a single string, without ().",
                ]
            self.lines.append(f"{sel}._domainkey.{d}.   TXT {txt_strings_mox(txt)}")
            self.records.append(dkim_record(self.inp.domain, sel, key))

    def spf_dmarc(self) -> None:
        """The domain's SPF (listener and SOCKS IPs, mx, ~all) and DMARC (p=reject, reports)."""
        d, conf, inp = self.d, self.conf, self.inp
        dmarc = "v=DMARC1;p=reject"
        if conf.DMARC is not None:
            addr = _reporting("DMARC", conf.DMARC, inp)
            dmarc += ";rua=" + _mailto(addr.localpart, addr.domain, ",!") + "!10m"
        spf = spf_value(inp.static)
        self.lines += [
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
        self.rec(f"{d}.", "TXT", spf, "SPF: the mail host may send for the domain", "required")
        self.rec(f"_dmarc.{d}.", "TXT", dmarc, "DMARC policy and aggregate reports", "required")

    def mtasts(self) -> None:
        d, h = self.d, self.h
        if self.conf.MTASTS is None:
            self.lines += [
                "; Note: No MTA-STS to indicate TLS should be used. Either because disabled for the",
                "; domain or because mox.conf does not have a listener with MTA-STS configured.",
                "",
            ]
            return
        sts = f"v=STSv1; id={self.conf.MTASTS.PolicyID}"
        self.lines += [
            "; Remote servers can use MTA-STS to verify our TLS certificate with the",
            "; WebPKI pool of CA's (certificate authorities) when delivering over SMTP with",
            "; STARTTLS.",
            f"mta-sts.{d}.            CNAME {h}.",
            f'_mta-sts.{d}.           TXT "{sts}"',
            "",
        ]
        self.rec(f"mta-sts.{d}.", "CNAME", f"{h}.", "MTA-STS policy host", "recommended")
        self.rec(f"_mta-sts.{d}.", "TXT", sts, "MTA-STS policy version", "recommended")

    def tlsrpt(self) -> None:
        d, conf, inp = self.d, self.conf, self.inp
        if conf.TLSRPT is None:
            return
        addr = _reporting("TLSRPT", conf.TLSRPT, inp)
        v = "v=TLSRPTv1; rua=" + _mailto(addr.localpart, addr.domain, ",!;")
        self.lines += ["; Request reporting about TLS failures.", f'_smtp._tls.{d}.         TXT "{v}"', ""]
        self.rec(f"_smtp._tls.{d}.", "TXT", v, "TLSRPT: reports about TLS to the domain", "recommended")

    def client_settings(self) -> None:
        """A CNAME for the client settings host, when it is not the mail host."""
        csd, h = self.csd, self.h
        if csd == h:
            return
        self.lines += [
            "; Client settings will reference a subdomain of the hosted domain, making it",
            "; easier to migrate to a different server in the future by not requiring settings",
            "; in all clients to be updated.",
            (csd + ".").ljust(20 + self.pad) + f" CNAME {h}.",
            "",
        ]
        self.rec(f"{csd}.", "CNAME", f"{h}.", "client settings host name", "recommended")

    def autoconfig(self) -> None:
        """Autoconfig/autodiscover, and the SRV records for mail clients (RFC 6186)."""
        d, h, csd = self.d, self.h, self.csd
        self.lines += [
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
        self.rec(f"autoconfig.{d}.", "CNAME", f"{h}.", "autoconfig (Thunderbird)", "recommended")
        self.rec(f"_autodiscover._tcp.{d}.", "SRV", f"0 1 443 {h}.", "autodiscover (Microsoft)", "recommended")
        self.rec(f"_imaps._tcp.{d}.", "SRV", f"0 1 993 {csd}.", "IMAP with TLS for mail clients", "recommended")
        self.rec(f"_submissions._tcp.{d}.", "SRV", f"0 1 465 {csd}.", "submission with TLS for mail clients",
                 "recommended")
        for svc in ("imap", "submission", "pop3", "pop3s"):
            self.rec(f"_{svc}._tcp.{d}.", "SRV", "0 0 0 .", f"{svc} not offered", "optional")

    def caa(self) -> None:
        """CAA for the ACME CA, and (commented out) the variants bound to mox's ACME account."""
        d, h, csd, pad = self.d, self.h, self.csd, self.pad
        issuer = self.inp.cert_issuer
        if not issuer:
            return
        self.lines += [
            "",
            "; Optional:",
            "; You could mark Let's Encrypt as the only Certificate Authority allowed to",
            "; sign TLS certificates for your domain.",
            f'{d}.                    CAA 0 issue "{issuer}"',
        ]
        self.rec(f"{d}.", "CAA", f'0 issue "{issuer}"', "CAA: only this CA may issue certificates", "optional")
        uri = self.inp.acme_account_uri
        if not uri:
            self.lines += [
                ";",
                "; Note: After starting up, once an ACME account has been created, CAA records",
                "; that restrict issuance to the account will be suggested.",
            ]
            return
        x = f"{issuer}; accounturi={uri}; validationmethods=tls-alpn-01,http-01"
        caa = f'0 issue "{x}"'
        self.lines += [
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
        self.rec(f"{d}.", "CAA", caa, purpose, "optional", publish=False)
        self.rec(f"autoconfig.{d}.", "CAA", caa, purpose, "optional", publish=False)
        self.rec(f"mta-sts.{d}.", "CAA", caa, purpose, "optional", publish=False)
        if csd != h:
            self.lines.append(";; " + csd.ljust(17 + pad) + f" CAA {caa}")
            self.rec(f"{csd}.", "CAA", caa, purpose, "optional", publish=False)
        if h.endswith("." + d):
            self.lines += [";", "; And the mail hostname.", ";; " + (h + ".").ljust(17 + pad) + f" CAA {caa}"]
            self.rec(f"{h}.", "CAA", caa, purpose, "optional", publish=False)
