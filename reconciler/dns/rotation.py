"""DNS for DKIM rotation: check the rotating domains' selector records through the resolver (as
`records --check` does), and publish new ones and delete retired ones with RFC 2136 (as `records
--publish` does), touching nothing but those DKIM records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.dns.formats import in_zone
from reconciler.dns.reports import find_domain, load_dkim_keys
from reconciler.errors import REPORTED, ReconcilerError
from reconciler.mox import config as mc
from reconciler.mox.dnsrecords import Record, dkim_owner, dkim_record
from reconciler.mox.errors import MoxError
from reconciler.mox.live import LiveConfig
from reconciler.mox.names import ParseError, parse_domain
from reconciler.plan.rotation import RotationStatus
from reconciler.plan.rotation_memory import Answer, DomainMemory, Seen

# The DNS check and publishing (dnspython) are imported when a domain rotates: a plan of
# domains without `DKIM.Rotation` asks DNS nothing.
if TYPE_CHECKING:
    import dns.tsig

    from reconciler.dns.check import Server

DKIM_TAG = "v=DKIM1"
CHECK_TIMEOUT = 5.0


def selector_records(live: LiveConfig, domain: str, selectors: Iterable[str]) -> dict[str, Record]:
    """The DKIM records of `selectors` of a live domain, from their key files (as mox's dnsrecords)."""
    d, conf = find_domain(live.dynamic, domain)
    wanted = {s: conf.DKIM.Selectors[s] for s in selectors if s in conf.DKIM.Selectors}
    keys = load_dkim_keys(live.paths, mc.Domain(DKIM=mc.DKIM(Selectors=wanted)))
    return {s: dkim_record(d, s, k) for s, k in keys.items()}


def record_name(domain: str, selector: str) -> str:
    """The owner name of a selector's record, ASCII, absolute."""
    return dkim_owner(selector, parse_domain(domain))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _dkim_values(server: Server, name: str) -> list[str]:
    from reconciler.dns.check import lookup

    found = lookup(server, name, "TXT")
    texts = [b"".join(getattr(rd, "strings", [])).decode("utf-8", "replace") for rd in found]
    return [t for t in texts if t.split(";", 1)[0].strip() == DKIM_TAG]


def check_domain(live: LiveConfig, domain: str, memory: DomainMemory, server: Server | None,
                 problem: str = "") -> dict[str, Answer]:
    """What DNS has for every selector of `domain` (and for retired selectors whose records are
    to be deleted). A failed lookup makes the rest of the domain's answers failed too."""
    from reconciler.dns.check import DNSCheckError

    conf = live.dynamic.Domains.get(domain)
    selectors = sorted(conf.DKIM.Selectors) if conf is not None else []
    retired = sorted(k for k, v in memory.retired.items() if not v.record_removed)
    answers: dict[str, Answer] = {}
    failure = problem
    try:
        records = selector_records(live, domain, selectors)
    except REPORTED as e:
        return dict.fromkeys([*selectors, *retired], Answer(Seen.FAILED, f"reading the keys: {e}"))
    for sel in [*selectors, *retired]:
        if failure or server is None:
            answers[sel] = Answer(Seen.FAILED, failure or "no resolver")
            continue
        rec = records.get(sel)
        try:
            values = _dkim_values(server, rec.name if rec is not None else record_name(domain, sel))
        except (DNSCheckError, MoxError, ParseError) as e:
            failure = str(e)
            answers[sel] = Answer(Seen.FAILED, failure)
            continue
        if rec is None:  # a retired selector: any DKIM record there is ours to delete
            answers[sel] = Answer(Seen.PRESENT if values else Seen.MISSING)
            continue
        digest = _digest(rec.value)
        if rec.value in values:  # TXT compared by joined text, as `records --check`
            answers[sel] = Answer(Seen.PRESENT, value=digest)
        elif values:
            shown = values[0] if len(values[0]) <= 60 else values[0][:57] + "..."
            answers[sel] = Answer(Seen.DIFFERENT, shown, digest)
        else:
            answers[sel] = Answer(Seen.MISSING, value=digest)
    return answers


def check_rotating(live: LiveConfig, domains: Iterable[str], memory: Mapping[str, DomainMemory],
                   server: Server | None, problem: str = "") -> dict[str, dict[str, Answer]]:
    """`check_domain` for each rotating domain (`problem`: why there is no resolver to ask)."""
    return {d: check_domain(live, d, memory.get(d, DomainMemory()), server, problem) for d in domains}


# ---------------------------------------------------------------------------------------------
# Publishing


@dataclass(frozen=True, slots=True)
class Publisher:
    """Where rotating domains' DKIM records are published: `--publish rfc2136`."""

    server: Server
    key: dns.tsig.Key
    zones: tuple[str, ...] = ()  # empty: each domain is its own zone

    def zone_of(self, domain: str) -> str | None:
        """The (longest) configured zone holding `domain`; the domain itself when none is configured."""
        ascii_name = parse_domain(domain).ascii
        if not self.zones:
            return ascii_name
        inside = [z for z in self.zones if in_zone(ascii_name, z)]
        return max(inside, key=len) if inside else None

    def describe(self) -> str:
        zones = ", ".join(self.zones) if self.zones else "each domain's own zone"
        return f"RFC 2136 to {self.server} ({zones})"


@dataclass(frozen=True, slots=True)
class DNSAccess:
    """How DKIM rotation reaches DNS: the resolver it checks records with (`--resolver`, default
    the system's first name server) and where it publishes them (`--publish rfc2136`; None: by hand)."""

    resolver: str | None = None
    publisher: Publisher | None = None

    def server(self) -> tuple[Server | None, str]:
        """The resolver, or None and why there is none (then every check fails, and nothing advances)."""
        from reconciler.dns.check import DNSCheckError, parse_server

        try:
            return parse_server(self.resolver), ""
        except DNSCheckError as e:
            return None, str(e)


@dataclass(frozen=True, slots=True)
class Published:
    """What publishing did for one domain: a summary, or the error."""

    domain: str
    ok: bool
    text: str


def publish_rotation(live: LiveConfig, domains: Iterable[str], memory: Mapping[str, DomainMemory],
                     publisher: Publisher, timeout: float = 10.0) -> list[Published]:
    """Bring each rotating domain's DKIM records in DNS to its live selectors, and delete those
    of retired selectors. Nothing else in the zone is touched; nothing is sent when DNS matches."""
    from reconciler.dns.publish import Withdrawal, describe, publish

    out = []
    for domain in domains:
        zone = publisher.zone_of(domain)
        if zone is None:
            out.append(Published(domain, False, f"{domain} is in none of the zones to publish to "
                                 f"({', '.join(publisher.zones)}): publish its DKIM records by hand"))
            continue
        conf = live.dynamic.Domains.get(domain)
        selectors = sorted(conf.DKIM.Selectors) if conf is not None else []
        retired = {k for k, v in memory.get(domain, DomainMemory()).retired.items() if not v.record_removed}
        try:
            records = list(selector_records(live, domain, selectors).values())
            withdraw = [Withdrawal(record_name(domain, s), "TXT", DKIM_TAG) for s in sorted(retired)]
            if not records and not withdraw:
                continue
            result = publish(records, zone, publisher.server, publisher.key, withdraw=withdraw, timeout=timeout)
        except (ReconcilerError, MoxError, ParseError) as e:
            out.append(Published(domain, False, f"publishing the DKIM records of {domain}: {e}"))
            continue
        out.append(Published(domain, True, describe(result).rstrip("\n")))
    return out


def zone_lines(live: LiveConfig, status: RotationStatus) -> tuple[list[str], list[str]]:
    """For the plan: the records to publish (zone lines, for selectors whose keys exist) and the
    names whose DKIM records are to be deleted."""
    try:
        records = selector_records(live, status.domain, status.records_wanted())
    except REPORTED:
        records = {}
    add = [f"{r.name} {r.ttl} IN TXT {r.presentation()}" for _, r in sorted(records.items())]
    try:
        delete = [f"{record_name(status.domain, s)} TXT {DKIM_TAG}" for s in status.retired]
    except (MoxError, ParseError):
        delete = []
    return add, delete
