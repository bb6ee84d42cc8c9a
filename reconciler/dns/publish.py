"""Publish the suggested records into a zone with RFC 2136 dynamic updates, signed with TSIG.

Only what the reconciler owns is touched: the (name, type) RRsets it generates for the domains in
the zone, and for TXT only the values of the same kind (`v=spf1`, `v=DKIM1`, ...), so a site
verification TXT beside the SPF record survives. Only changed RRsets are sent, all in one update
message, each guarded by a prerequisite on what we read: "RRset exists with exactly these values"
(value-dependent, RFC 2136 2.4.2) or "RRset does not exist" (2.4.3). A concurrent change makes
the server refuse the whole message (YXRRSET/NXRRSET) and nothing is clobbered; re-running reads
again. When DNS already matches, nothing is sent.

An update that would weaken what is there (an SPF record ending in `-all` replaced by mox's `~all`,
a DMARC policy made less strict) is a warning, and refused unless forced: someone chose the
stricter record by hand.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update

from reconciler.dns.check import Server, lookup, value_key
from reconciler.dns.formats import in_zone
from reconciler.errors import ReconcilerError
from reconciler.mox.dnsrecords import Record

ALGORITHMS = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


class PublishError(ReconcilerError):
    """The update cannot be made or the server refused it."""


# ---------------------------------------------------------------------------------------------
# TSIG key files


_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*|#[^\n]*", re.S)
_KEY_RE = re.compile(
    r'\s*key\s+(?:"(?P<qname>[^"]+)"|(?P<name>[^\s{]+))\s*\{(?P<body>[^}]*)\}\s*;?\s*', re.S)
_KEYWORD = re.compile(r"\s*([A-Za-z-]+)")
_KEYWORDS = ("algorithm", "secret")
_STMT_RE = re.compile(r'\s*(?P<kw>[A-Za-z-]+)\s+(?:"(?P<q>[^"]*)"|(?P<v>[^\s;"]+))\s*;', re.S)


def load_tsig_key(path: Path) -> dns.tsig.Key:
    """A BIND key file (`key "name" { algorithm hmac-sha256; secret "base64"; };`), as tsig-keygen
    writes it; comments allowed. Exactly one key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PublishError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise PublishError(f"{path}: not a BIND key file: not UTF-8 text") from None
    text = _COMMENTS.sub("", text)
    m = _KEY_RE.fullmatch(text)
    if m is None:
        raise PublishError(f'{path}: not a BIND key file (expected key "name" {{ algorithm ...; secret "...";'
                           " };)")
    fields: dict[str, str] = {}
    body = m.group("body")
    name = m.group("qname") or m.group("name")
    pos = 0
    while body[pos:].strip():
        sm = _STMT_RE.match(body, pos)
        if sm is None:
            # Name the statement by its keyword only: the text after it may be (part of) the secret.
            kw = _KEYWORD.match(body, pos)
            what = f"the {kw.group(1)!r} statement" if kw and kw.group(1).lower() in _KEYWORDS else (
                f"statement {len(fields) + 1}")
            raise PublishError(f"{path}: key {name!r}: cannot parse {what} (expected `algorithm NAME;` and "
                               '`secret "BASE64";`)')
        fields[sm.group("kw").lower()] = sm.group("q") if sm.group("q") is not None else sm.group("v")
        pos = sm.end()
    algo = fields.get("algorithm", "hmac-sha256").lower()
    if algo not in ALGORITHMS:
        raise PublishError(f"{path}: key {name!r}: unsupported algorithm (use one of {', '.join(ALGORITHMS)})")
    if "secret" not in fields:
        raise PublishError(f"{path}: key {name!r}: no secret")
    try:
        secret = base64.b64decode(fields["secret"], validate=True)
    except (binascii.Error, ValueError):
        raise PublishError(f"{path}: key {name!r}: secret is not base64") from None
    return dns.tsig.Key(dns.name.from_text(name), secret, ALGORITHMS[algo])


# ---------------------------------------------------------------------------------------------
# Planning the update


@dataclass(frozen=True, slots=True)
class Change:
    """One RRset to change; `current` is the whole RRset as read (the prerequisite)."""

    name: str
    type: str
    current: tuple[dns.rdata.Rdata, ...]
    delete: tuple[dns.rdata.Rdata, ...]
    add: tuple[dns.rdata.Rdata, ...]
    ttl: int


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Values the reconciler no longer generates but still owns, to delete: those of kind `tag`
    (`v=DKIM1`) at `name` (a retired DKIM selector's record)."""

    name: str
    type: str
    tag: str


def owned_records(records: Sequence[Record], zone: str) -> list[Record]:
    """Published records with a known value whose names fall inside `zone`."""
    return [r for r in records if r.publish and not r.placeholder and in_zone(r.name, zone)]


def plan(records: Sequence[Record], zone: str, server: Server, withdraw: Sequence[Withdrawal] = ()) -> list[Change]:
    """Read each owned RRset from the server and compute what to delete and add."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in owned_records(records, zone):
        groups.setdefault((r.name.lower(), r.type), []).append(r)
    gone: dict[tuple[str, str], set[str]] = {}
    for w in withdraw:
        key = (w.name.lower(), w.type)
        if key not in groups and in_zone(w.name, zone):
            gone.setdefault(key, set()).add(w.tag)
    changes: list[Change] = []
    for (name, rtype), recs in [*groups.items(), *((k, []) for k in gone)]:
        tags = {r.tag() for r in recs} | gone.get((name, rtype), set())
        current = lookup(server, name, rtype)
        owned = [rd for rd in current if rtype != "TXT" or _txt_tag(rd) in tags]
        want = {value_key(r.rdata()): r.rdata() for r in recs}
        have = {value_key(rd): rd for rd in owned}
        delete = tuple(rd for k, rd in have.items() if k not in want)
        add = tuple(rd for k, rd in want.items() if k not in have)
        if delete or add:
            changes.append(Change(recs[0].name if recs else name, rtype, tuple(current), delete, add,
                                  recs[0].ttl if recs else 0))
    return changes


def _txt(rd: dns.rdata.Rdata) -> str:
    strings: list[bytes] = getattr(rd, "strings", [])
    return b"".join(strings).decode("utf-8", "replace")


def _txt_tag(rd: dns.rdata.Rdata) -> str:
    return _txt(rd).split(";", 1)[0].split(" ", 1)[0]


# SPF's `all` by how much it rejects (RFC 7208 4.6.2: qualifier `+` when absent; no `all` at all
# is "neutral" like `?all`, 4.7); DMARC's policies (RFC 7489 6.3).
_SPF_ALL = {"-": 3, "~": 2, "?": 1, "+": 0}
_DMARC_POLICY = {"reject": 2, "quarantine": 1, "none": 0}


def _spf_all(text: str) -> tuple[int, str]:
    for term in text.split()[1:]:
        q, rest = (term[0], term[1:]) if term[:1] in _SPF_ALL else ("+", term)
        if rest.lower() == "all":
            return _SPF_ALL[q], term
    return 1, "no all (neutral)"


def _dmarc_policy(text: str) -> tuple[int, str]:
    tags = dict(t.strip().partition("=")[::2] for t in text.split(";"))
    p = tags.get("p", "none").strip().lower()
    return _DMARC_POLICY.get(p, 0), f"p={p}"


def weakenings(changes: Sequence[Change]) -> list[str]:
    """What the changes would make weaker than it is: SPF's `all` (`-all` -> `~all`) or the DMARC
    policy (`p=reject` -> `p=none`), one sentence each."""
    out = []
    for c in changes:
        if c.type != "TXT" or not c.delete or not c.add:
            continue
        for tag, strength, what in (("v=spf1", _spf_all, "SPF"), ("v=DMARC1", _dmarc_policy, "DMARC policy")):
            old = [strength(_txt(rd)) for rd in c.delete if _txt_tag(rd) == tag]
            new = [strength(_txt(rd)) for rd in c.add if _txt_tag(rd) == tag]
            if old and new and min(new)[0] < max(old)[0]:
                out.append(f"{c.name} TXT: this would weaken the {what} from {max(old)[1]} to {min(new)[1]} "
                           f"(now: {' '.join(_txt(rd) for rd in c.delete if _txt_tag(rd) == tag)})")
    return out


def build_update(zone: str, changes: Sequence[Change], key: dns.tsig.Key | None) -> dns.update.UpdateMessage:
    """One update message for all changes, each RRset guarded by a prerequisite."""
    origin = dns.name.from_text(zone.rstrip(".") + ".")
    upd = dns.update.UpdateMessage(origin, keyring=key, keyname=key.name if key else None,
                                   keyalgorithm=key.algorithm if key else dns.tsig.default_algorithm)
    for c in changes:
        name = dns.name.from_text(c.name)
        rdtype = dns.rdatatype.from_text(c.type)
        if c.current:
            rds = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype)
            for rd in c.current:
                rds.add(rd, 0)
            upd.present(name, rds)
        else:
            upd.absent(name, rdtype)
    for c in changes:
        name = dns.name.from_text(c.name)
        for rd in c.delete:
            upd.delete(name, rd)
        for rd in c.add:
            upd.add(name, c.ttl, rd)
    return upd


@dataclass(frozen=True, slots=True)
class PublishResult:
    zone: str
    changes: tuple[Change, ...]
    update: dns.update.UpdateMessage | None  # None when nothing had to change
    sent: bool
    warnings: tuple[str, ...] = ()  # what the update weakens (sent only with force)


def publish(records: Sequence[Record], zone: str, server: Server, key: dns.tsig.Key | None, *,
            dry_run: bool = False, force: bool = False, timeout: float = 10.0,
            withdraw: Sequence[Withdrawal] = ()) -> PublishResult:
    """Bring the owned RRsets of `zone` to `records`, deleting the `withdraw`n values; sends
    nothing when they already match, nor (unless `force`) when it would weaken an SPF or DMARC
    record."""
    if not any(in_zone(name, zone) for name in [*(r.name for r in records), *(w.name for w in withdraw)]):
        raise PublishError(f"no records fall inside zone {zone!r}; is --zone the zone of the domain?")
    changes = plan(records, zone, server, withdraw)
    if not changes:
        return PublishResult(zone, (), None, False)
    weak = tuple(weakenings(changes))
    upd = build_update(zone, changes, key)
    if dry_run:
        return PublishResult(zone, tuple(changes), upd, False, weak)
    if weak and not force:
        raise PublishError(f"zone {zone}: not publishing: " + "; ".join(weak)
                           + ". Nothing was sent; re-run with --force to publish anyway, or keep the "
                           "stricter record")
    try:
        resp = dns.query.tcp(upd, server.host, port=server.port, timeout=timeout)
    except (dns.exception.DNSException, OSError) as e:  # TSIG errors too (wrong key or secret)
        raise PublishError(f"sending update for zone {zone} to {server}: {e or type(e).__name__}") from None
    rc = resp.rcode()
    if rc in (dns.rcode.YXRRSET, dns.rcode.NXRRSET, dns.rcode.YXDOMAIN, dns.rcode.NXDOMAIN):
        raise PublishError(f"update for zone {zone} refused ({dns.rcode.to_text(rc)}): the zone changed "
                           "since it was read; nothing was changed, run again")
    if rc != dns.rcode.NOERROR:
        raise PublishError(f"update for zone {zone} refused by {server}: {dns.rcode.to_text(rc)}"
                           + (" (check the TSIG key, the zone's allow-update, and the server's log:"
                              " BIND also refuses an MX/SRV target in the zone without address records)"
                              if rc in (dns.rcode.REFUSED, dns.rcode.NOTAUTH) else ""))
    return PublishResult(zone, tuple(changes), upd, True, weak)


def describe(result: PublishResult) -> str:
    """Human summary: one line per changed RRset, then (dry run) the update message."""
    if not result.changes:
        return f"zone {result.zone}: up to date, nothing sent\n"
    verb = "sent" if result.sent else "would send (dry run)"
    lines = [f"warning: {w}" + ("" if result.sent else " (refused without --force)") for w in result.warnings]
    lines.append(f"zone {result.zone}: {verb} update changing {len(result.changes)} RRset(s)")
    for c in result.changes:
        for rd in c.delete:
            lines.append(f"  - {c.name} {c.type} {rd.to_text()}")
        for rd in c.add:
            lines.append(f"  + {c.name} {c.ttl} {c.type} {rd.to_text()}")
    if not result.sent and result.update is not None:
        lines += ["", result.update.to_text()]
    return "\n".join(lines) + "\n"
