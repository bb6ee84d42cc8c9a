"""DNS-record reports for the live config or a plan: mox's generator fed with what is on disk.

`reconciler.mox.dnsrecords.generate` is pure; here its inputs are gathered the way `mox config
dnsrecords` gathers them (the domain's config, the DKIM public keys from the selectors' key files,
the public listener's host keys), or as they will be after a plan is applied (keys still to be
generated become placeholders). `merge` turns the reports of several domains into the one set of
records a zone needs, for the DNS check and the RFC 2136 publisher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from reconciler.mox import config as mc
from reconciler.mox import names
from reconciler.mox.dnsrecords import Inputs, PublicKey, Record, Report, cert_issuer, generate
from reconciler.mox.errors import RecordsError
from reconciler.mox.keyfiles import HostKeys, KeyFileError, load_dkim_private_key
from reconciler.mox.keyfiles import load_host_keys as _load_host_keys
from reconciler.mox.live import ConfigPaths, LiveConfig


def load_host_keys(paths: ConfigPaths, static: mc.Static) -> HostKeys:
    """The public listener's host keys for DANE, as mox loads them; RecordsError if one cannot be read."""
    try:
        return _load_host_keys(paths, static)
    except KeyFileError as e:
        raise RecordsError(str(e)) from None


def load_dkim_keys(paths: ConfigPaths, conf: mc.Domain) -> dict[str, PublicKey]:
    """Public keys of every selector, read from the key files like mox does on config load."""
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
