"""DNS-record reports for the live config or a plan: mox's generator fed with what is on disk.

`reconciler.mox.dnsrecords.generate` is pure; here its inputs are gathered the way `mox config
dnsrecords` gathers them (the domain's config, the DKIM public keys from the selectors' key files,
the public listener's host keys), or as they will be after a plan is applied (keys still to be
generated become placeholders). `merge` turns the reports of several domains into the one set of
records a zone needs, for the DNS check and the RFC 2136 publisher.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.mox import config as mc
from reconciler.mox import names
from reconciler.mox.dnsrecords import DKIM_PLACEHOLDER, Inputs, Record, Report, cert_issuer, generate
from reconciler.mox.errors import RecordsError
from reconciler.mox.keyfiles import HostKeys, KeyFileError, load_dkim_private_key
from reconciler.mox.keyfiles import load_host_keys as _load_host_keys
from reconciler.mox.live import ConfigPaths, LiveConfig

if TYPE_CHECKING:
    from reconciler.mox.dnsrecords import PublicKey


def load_host_keys(paths: ConfigPaths, static: mc.Static) -> HostKeys:
    """The public listener's host keys for DANE, as mox loads them; RecordsError if one cannot be read."""
    try:
        return _load_host_keys(paths, static)
    except KeyFileError as e:
        raise RecordsError(str(e)) from None


def load_dkim_keys(paths: ConfigPaths, conf: mc.Domain) -> dict[str, PublicKey]:
    """Public keys of every selector, read from the key files like mox does on config load."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

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
    return for_config(live.paths, live.static, live.dynamic, domain, dnssec=dnssec,
                      acme_account_uri=acme_account_uri, host_keys=host_keys)


def for_config(
    paths: ConfigPaths, static: mc.Static, dynamic: mc.Dynamic, domain: str, *, dnssec: bool = False,
    acme_account_uri: str = "", host_keys: HostKeys | None = None,
) -> Report:
    """The report for a domain of `dynamic` (a config read from disk, or one about to be written
    whose key files exist already), keys read from the files its selectors name."""
    d, conf = find_domain(dynamic, domain)
    hk = host_keys if host_keys is not None else load_host_keys(paths, static)
    return generate(Inputs(
        domain=d, config=conf, static=static, dkim=load_dkim_keys(paths, conf), host_keys=hk,
        dnssec=dnssec, cert_issuer=cert_issuer(static), acme_account_uri=acme_account_uri,
        domains={k: (v if v is not None else mc.Domain()) for k, v in dynamic.Domains.items()},
    ))


# The value of a DKIM record whose public key is not known where the plan is made (a snapshot
# of the live config without private keys, and no earlier report of the selector).
DKIM_NOT_COMPUTED = "(not computed: no private key in this config dir and no earlier report)"


def records_for_plan(
    domain: str, conf: mc.Domain, static: mc.Static, *,
    paths: ConfigPaths | None = None, dkim: Mapping[str, PublicKey | None] | None = None,
    dnssec: bool = False, domains: Mapping[str, mc.Domain] | None = None,
    host_keys: HostKeys | None = None, not_computed: Collection[str] = (),
) -> Report:
    """Records a domain will need after a plan is applied, before it exists in the live config.

    DKIM keys not given (not generated yet) become placeholders marked "generated at apply", the
    selectors in `not_computed` (existing keys that cannot be read here) placeholders saying so;
    host keys for DANE: `host_keys`, else read from the installation with `paths`.
    """
    try:
        d = names.parse_domain(domain)
    except names.ParseError as e:
        raise RecordsError(f"domain {domain!r}: {e}") from None
    keys: dict[str, PublicKey | None] = dict.fromkeys(conf.DKIM.Selectors)
    keys.update(dkim or {})
    hk = host_keys if host_keys is not None else load_host_keys(paths, static) if paths is not None else HostKeys()
    report = generate(Inputs(d, conf, static, keys, hk, dnssec, cert_issuer(static), "",
                             dict(domains or {})))
    if not not_computed:
        return report
    unknown = {f"{names.parse_domain(sel).ascii}._domainkey.{d.ascii}." for sel in not_computed}
    records = tuple(dataclasses.replace(r, value=r.value.replace(DKIM_PLACEHOLDER, DKIM_NOT_COMPUTED))
                    if r.placeholder and r.name in unknown else r for r in report.records)
    return dataclasses.replace(report, records=records)


def placeholder_reason(r: Record) -> str:
    """Why a placeholder record has no value yet."""
    if DKIM_NOT_COMPUTED in r.value:
        return "DKIM public key not computed here (no private key, no earlier report)"
    return "DKIM key generated at apply"


def dkim_keys_from_report(path: Path, domain: str) -> dict[str, PublicKey]:
    """The DKIM public keys a JSON report (`records --format json`, what apply and `snapshot`
    write) published for `domain`, by selector; {} when there is none or it cannot be read.

    For plans made where the private keys are not (a CI snapshot): the records of existing
    selectors are computed from the public keys of the last report."""
    try:
        data = json.loads(path.read_bytes())
        d = names.parse_domain(domain)
    except (OSError, ValueError, names.ParseError):
        return {}
    suffix = f"._domainkey.{d.ascii}."
    out: dict[str, PublicKey] = {}
    doms = data.get("domains", []) if isinstance(data, dict) and data.get("format") == "mox-reconciler/dns-records" \
        else []
    for rep in doms:
        if not isinstance(rep, dict) or rep.get("domain") != d.ascii or not isinstance(rep.get("records"), list):
            continue
        for r in rep["records"]:
            if not isinstance(r, dict) or r.get("type") != "TXT" or r.get("placeholder"):
                continue
            name, value = str(r.get("name", "")), str(r.get("value", ""))
            if not name.lower().endswith(suffix) or not value.startswith("v=DKIM1"):
                continue
            key = _dkim_public_key(value)
            if key is not None:
                out[_selector_name(name[: -len(suffix)])] = key
    return out


def _selector_name(ascii_label: str) -> str:
    try:
        return names.parse_domain(ascii_label).name()
    except names.ParseError:
        return ascii_label


def _dkim_public_key(value: str) -> PublicKey | None:
    """The public key of a DKIM record value (`v=DKIM1;...;k=ed25519;p=...`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    tags = dict(t.strip().partition("=")[::2] for t in value.split(";"))
    try:
        raw = base64.b64decode(tags.get("p", ""), validate=True)
        if tags.get("k", "rsa") == "ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        key = serialization.load_der_public_key(raw)
    except (binascii.Error, ValueError):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


HOST_SPF = "v=spf1 a -all"


def merge(reports: Sequence[Report]) -> list[Record]:
    """Published records of several domains (no placeholders), deduplicated, as one zone needs them.

    The host SPF `v=spf1 a -all` suggested for the mail host gives way to the full domain SPF when
    the mail host name is itself a hosted domain: one name must not have two SPF records. Whether
    it is hosted is known from the config each report was made from (`Report.host_is_hosted`),
    not from the reports at hand, so a run for one domain and a run for all publish the same
    record at the host's name.
    """
    out: list[Record] = []
    seen: set[tuple[str, str, str]] = set()
    hosted_names = {rep.domain.ascii + "." for rep in reports} | {
        rep.hostname.ascii + "." for rep in reports if rep.host_is_hosted}
    for rep in reports:
        domain_spf = next((r.value for r in rep.records if r.type == "TXT" and r.tag() == "v=spf1"
                           and r.name == rep.domain.ascii + "."), None)
        for r in rep.records:
            if not r.publish or r.placeholder:
                continue
            if r.type == "TXT" and r.value == HOST_SPF and r.name in hosted_names and domain_spf is not None:
                # the domain SPF of the host's own domain (the same value for every domain: mox
                # builds it from mox.conf alone, mox.DomainSPFIPs)
                r = dataclasses.replace(r, value=domain_spf, purpose="SPF: the mail host's name is a hosted "
                                        "domain: its domain SPF")
            k = (r.name, r.type, r.value)
            if k not in seen:
                seen.add(k)
                out.append(r)
    return out
