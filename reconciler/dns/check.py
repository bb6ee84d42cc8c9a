"""Check published DNS against the records the reconciler suggests, and find the DNSSEC status.

Each suggested record is looked up (dnspython, directly at `--resolver` or the system's first
name server) and reported as present, missing (no RRset), or different (the RRset exists but
lacks this value); values found in a checked RRset that nobody asked for are reported as extra.
TXT RRsets are judged per kind (`v=spf1`, `v=DKIM1`, ...), so unrelated TXT records at the same
name (site verifications) are not "extra".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver

from reconciler.errors import ReconcilerError
from reconciler.mox.dnsrecords import Record

Status = Literal["present", "missing", "different", "extra"]


class DNSCheckError(ReconcilerError):
    """The resolver cannot be reached or answers with an error."""


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_server(s: str | None) -> Server:
    """`IP`, `IP:PORT` or `[IPv6]:PORT`; None: the system resolver's first name server."""
    if not s:
        try:
            ns = dns.resolver.get_default_resolver().nameservers
        except Exception as e:
            raise DNSCheckError(f"no system resolver configured ({e}); use --resolver IP[:PORT]") from None
        if not ns:
            raise DNSCheckError("no system resolver configured; use --resolver IP[:PORT]")
        return Server(str(ns[0]))
    host, port = s, "53"
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif s.count(":") == 1:
        host, port = s.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DNSCheckError(f"bad server address {s!r}: port must be 1-65535")
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise DNSCheckError(f"bad server address {s!r}: not an IP address") from None
    return Server(host, int(port))


def query(server: Server, name: str, rtype: str, *, timeout: float = 5.0,
          want_ad: bool = False) -> dns.message.Message:
    """One query, UDP then TCP when truncated; raises DNSCheckError for network errors."""
    q = dns.message.make_query(name, rtype)
    if want_ad:
        q.flags |= dns.flags.AD
    try:
        resp, _ = dns.query.udp_with_fallback(q, server.host, timeout=timeout, port=server.port)
    except (dns.exception.DNSException, OSError) as e:
        raise DNSCheckError(f"querying {name} {rtype} at {server}: {e or type(e).__name__}") from None
    return resp


def lookup(server: Server, name: str, rtype: str) -> list[dns.rdata.Rdata]:
    """The RRset's rdatas (empty for NXDOMAIN/NODATA); other rcodes are errors."""
    resp = query(server, name, rtype)
    rc = resp.rcode()
    if rc == dns.rcode.NXDOMAIN:
        return []
    if rc != dns.rcode.NOERROR:
        raise DNSCheckError(f"{name} {rtype}: server {server} answered {dns.rcode.to_text(rc)}")
    qname = dns.name.from_text(name)
    want = dns.rdatatype.from_text(rtype)
    for rrset in resp.answer:
        if rrset.name == qname and rrset.rdtype == want:
            return list(rrset)
    return []


def dnssec_status(server: Server, domain_ascii: str) -> bool:
    """mox's DNSSEC test: the AD bit on a TXT lookup of `<domain>.` (NXDOMAIN is fine)."""
    resp = query(server, domain_ascii.rstrip(".") + ".", "TXT", want_ad=True)
    rc = resp.rcode()
    if rc not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DNSCheckError(f"looking up record for dnssec-status: {domain_ascii}: {dns.rcode.to_text(rc)}")
    return bool(resp.flags & dns.flags.AD)


@dataclass(frozen=True, slots=True)
class Finding:
    status: Status
    name: str
    type: str
    expected: str  # presentation form; empty for "extra"
    found: tuple[str, ...]  # what the RRset holds (same kind for TXT)
    level: str
    purpose: str

    @property
    def ok(self) -> bool:
        return self.status == "present"


def _txt(rd: dns.rdata.Rdata) -> str:
    strings: list[bytes] = getattr(rd, "strings", [])
    return b"".join(strings).decode("utf-8", "replace")


def value_key(rd: dns.rdata.Rdata) -> object:
    """What makes two values equal: TXT by joined text (how the strings are split does not
    matter to SPF/DKIM/DMARC readers), other types by dnspython's rdata comparison."""
    if rd.rdtype == dns.rdatatype.TXT:
        return ("TXT", _txt(rd))
    return rd


def _same_kind(rd: dns.rdata.Rdata, tags: set[str]) -> bool:
    if rd.rdtype != dns.rdatatype.TXT:
        return True
    return _txt(rd).split(";", 1)[0].split(" ", 1)[0] in tags


def check(records: Sequence[Record], server: Server) -> list[Finding]:
    """Compare each published record with DNS; one finding per record plus one per extra value."""
    wanted = [r for r in records if r.publish and not r.placeholder]
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in wanted:
        groups.setdefault((r.name.lower(), r.type), []).append(r)
    out: list[Finding] = []
    for (name, rtype), recs in groups.items():
        tags = {r.tag() for r in recs}
        found = [rd for rd in lookup(server, name, rtype) if _same_kind(rd, tags)]
        found_text = tuple(rd.to_text() for rd in found)
        found_keys = {value_key(rd) for rd in found}
        expected = {value_key(r.rdata()) for r in recs}
        group: list[Finding] = []
        for r in recs:
            if value_key(r.rdata()) in found_keys:
                status: Status = "present"
            elif not found:
                status = "missing"
            else:
                status = "different"
            group.append(Finding(status, r.name, r.type, r.presentation(), found_text, r.level, r.purpose))
        out += group
        if any(f.status == "different" for f in group):
            continue  # the values found are part of the "different" finding
        for rd in found:
            if value_key(rd) not in expected:
                out.append(Finding("extra", recs[0].name, rtype, "", (rd.to_text(),), "", "not suggested"))
    return out


def all_required_ok(findings: Sequence[Finding]) -> bool:
    return all(f.ok for f in findings if f.level == "required")


def render_findings(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        if f.status == "extra":
            lines.append(f"extra      {f.name} {f.type} {f.found[0]}")
            continue
        lines.append(f"{f.status:<10} {f.name} {f.type} {f.expected}  ({f.level})")
        if f.status == "different":
            for v in f.found:
                lines.append(f"{'':<10}   found: {v}")
    return "\n".join(lines) + ("\n" if lines else "")
