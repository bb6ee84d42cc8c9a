"""Seeded configs for comparing `records --format mox` with the real mox's `config dnsrecords`.

`records_cases(seed, n)` returns `RecordsCase`s: a golden config dir with edits that change what
the DNS records say: hosted domains with Unicode, IDN and newer-Unicode names, DKIM selectors
with Unicode names, RSA and Ed25519 keys, hash and sign settings, DMARC and TLSRPT reporting
addresses (other domains, Unicode localparts), MTA-STS policy IDs, client settings domains,
and in mox.conf the host name, listener IPs and NAT IPs, DANE host keys, the host TLSRPT
localpart and a second SMTP listener. Each case lists the domains to ask for, each with or
without DNSSEC. The same seed gives the same cases on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .golden import GOLDEN
from .mutate import NEW_LETTERS, Config, golden

# Hosted domain names as mox wants them written (Unicode, lower case, NFC); the others are verdict
# cases (tests/mutate.py).
DOMAIN_NAMES = [
    "example.com", "café.example", "bücher.example", "ünï.example", "例え.テスト", "βόλοσ.example", "faß.example",
    "☕.example", "a-b.example", "x1.example", "sub.example.org", "dž.example", "\U00010d70.example",
    *[chr(cp) + ".example" for cp in NEW_LETTERS if cp not in (0x11B60, 0x16EA0)], "mail.example.org",
]
# Selectors as mox wants them written: Unicode, lower case (Go's case mapping: ɤ is Ꟁ's lower case).
SELECTORS = ["ünï", "2027a", "s-1", "a.b", "☕", chr(NEW_LETTERS[0]), "x" * 63, "ɤx", "2026a", "\U00010d70",
             "例え"]
LOCALPARTS = ["dmarcreports", "tlsreports", "dmarc-reports", "rapports", "Reports", "r+x"]  # ASCII only (mox)
HOSTNAMES = ["mail.example.org", "mäil.example.org", "mx.café.example", "mail.例え.テスト"]
IPS = ["198.51.100.7", "2001:db8::7", "203.0.113.9", "2001:db8::1:2", "192.0.2.1", "::ffff:192.0.2.8"]
_KEYS = sorted(p.name for p in (GOLDEN / "dkim-keys").iterdir())
RSA_KEYS = [k for k in _KEYS if "rsa2048" in k]
ED25519_KEYS = [k for k in _KEYS if "ed25519" in k]


@dataclass(frozen=True)
class RecordsCase:
    name: str
    config: Config
    queries: tuple[tuple[str, bool], ...]  # (domain as configured, DNSSEC)
    smtp_listeners: int  # SPF lists their IPs in an order Go's map iteration picks when > 1


def _selector_block(rng: random.Random, name: str) -> list[str]:
    ed25519 = rng.random() < 0.2
    key = rng.choice(ED25519_KEYS if ed25519 else RSA_KEYS)
    block = [f"{name}:"]
    if rng.random() < 0.5:
        block.append(f"\tHash: {rng.choice(['sha256'] if ed25519 else ['sha256', 'sha1'])}")
    if rng.random() < 0.3:
        block += ["\tCanonicalization:", f"\t\tHeaderRelaxed: {rng.choice(['true', 'false'])}",
                  f"\t\tBodyRelaxed: {rng.choice(['true', 'false'])}"]
    if rng.random() < 0.3:
        block += ["\tHeaders:", "\t\t- From", "\t\t- Subject"]
    if rng.random() < 0.2:
        block.append("\tDontSealHeaders: true")
    block += [f"\tExpiration: {rng.choice(['72h', '1h0m0s'])}", f"\tPrivateKeyFile: dkim/{key}"]
    return block


def _reporting(rng: random.Random, c: Config, kind: str, domain: str, hosted: list[str]) -> list[str]:
    block = [f"{kind}:", f"\tLocalpart: {rng.choice(LOCALPARTS)}"]
    if rng.random() < 0.3:
        block.append(f"\tDomain: {rng.choice([d for d in hosted if d != domain] or [domain])}")
    block += [f"\tAccount: {rng.choice(c.children(c.domains, ['Accounts']))}",
              f"\tMailbox: {rng.choice(['DMARC', 'TLSRPT', 'Reports', 'Rapports/été'])}"]
    return block


def e_domain(rng: random.Random, c: Config) -> str:
    """A new hosted domain with its own DKIM selectors and reporting."""
    hosted = c.children(c.domains, ["Domains"])
    name = rng.choice([d for d in DOMAIN_NAMES if d not in hosted])
    block = [f"{name}:"]
    csd = rng.choice(["", f"mail.{name}", "mail.example.org", f"pöst.{name}", "other.example.org"])
    if csd:
        block.append(f"\tClientSettingsDomain: {csd}")
    block.append("\tLocalpartCatchallSeparator: +")
    selectors = rng.sample(SELECTORS, rng.randint(0, 3))
    if selectors:
        block += ["\tDKIM:", "\t\tSelectors:"]
        for s in selectors:
            block += ["\t\t\t" + ln for ln in _selector_block(rng, s)]
        signed = [s for s in selectors if rng.random() < 0.6]
        if signed:
            block += ["\t\tSign:", *[f"\t\t\t- {s}" for s in signed]]
    for kind in ("DMARC", "TLSRPT"):
        if rng.random() < 0.7:
            block += ["\t" + ln for ln in _reporting(rng, c, kind, name, [*hosted, name])]
    if rng.random() < 0.6:
        block += ["\tMTASTS:", f"\t\tPolicyID: {rng.choice(['20261125T162843', 'x', 'v2'])}",
                  f"\t\tMode: {rng.choice(['enforce', 'testing', 'none'])}", "\t\tMaxAge: 24h0m0s"]
    c.add(c.domains, ["Domains"], block)
    return name


def e_selector(rng: random.Random, c: Config) -> str:
    """Another selector in a domain that has some."""
    dom = rng.choice([d for d in c.children(c.domains, ["Domains"])
                      if c.key_index(c.domains, ["Domains", d, "DKIM", "Selectors"]) >= 0])
    taken = c.children(c.domains, ["Domains", dom, "DKIM", "Selectors"])
    name = rng.choice([s for s in SELECTORS if s not in taken])
    c.add(c.domains, ["Domains", dom, "DKIM", "Selectors"], _selector_block(rng, name))
    return dom


def s_static(rng: random.Random, c: Config) -> int:
    """mox.conf edits; the number of SMTP listeners after them."""
    what = rng.choice(["hostname", "natips", "ips", "hostkeys", "tlsrpt", "listener"])
    smtp = 1
    if what == "hostname":
        c.set(c.static, ["Hostname"], rng.choice(HOSTNAMES))
    elif what == "natips":
        i = c.key_index(c.static, ["Listeners", "public", "NATIPs"])
        del c.static[i : i + 3]
        if rng.random() < 0.7:
            c.add(c.static, ["Listeners", "public", "NATIPs"], [f"- {ip}" for ip in rng.sample(IPS, rng.randint(1, 3))])
    elif what == "ips":
        c.add(c.static, ["Listeners", "public", "IPs"], [f"- {rng.choice(['0.0.0.0', '::', '127.0.0.2'])}"])
    elif what == "hostkeys":
        i = c.key_index(c.static, ["Listeners", "public", "TLS", "HostPrivateKeyFiles"])
        candidates = [ln.strip().removeprefix("- ") for ln in c.static[i + 1 : i + 3]]
        for k in RSA_KEYS[:2] + ED25519_KEYS:  # DKIM keys are PKCS#8 too: usable as host keys
            c.files[f"hostkeys/{k}"] = (GOLDEN / "dkim-keys" / k).read_bytes()
            candidates.append(f"hostkeys/{k}")
        chosen = rng.sample(candidates, rng.randint(0, 3))
        c.static[i : i + 3] = ["\t\t\tHostPrivateKeyFiles:", *[f"\t\t\t\t- {k}" for k in chosen]] if chosen else []
    elif what == "tlsrpt":
        c.set(c.static, ["HostTLSRPT", "Localpart"], rng.choice(["tlsreports", "tls-reports", "TLS.Reports"]))
    else:  # another SMTP listener (a second one when this edit comes twice: a key is written once)
        extra = len([n for n in c.children(c.static, ["Listeners"]) if n.startswith("extra")])
        c.add(c.static, ["Listeners", f"extra{extra or ''}"], [
            "IPs:", f"\t- {rng.choice(['127.0.0.3', '192.0.2.10', '2001:db8::9'])}", "TLS:", "\tKeyCerts:", "\t\t-",
            "\t\t\tCertFile: tls/mail.example.org.crt.pem", "\t\t\tKeyFile: tls/mail.example.org.key.pem",
            "SMTP:", "\tEnabled: true", f"\tPort: {10026 + extra}"])
        smtp = 2 + extra
    return smtp


def records_cases(seed: int, n: int) -> list[RecordsCase]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        c = golden(rng.choice(["14", "17", "34"]))
        smtp = 1
        for _ in range(rng.randint(1, 3)):
            r = rng.random()
            if r < 0.5:
                e_domain(rng, c)
            elif r < 0.7:
                e_selector(rng, c)
            else:
                smtp = max(smtp, s_static(rng, c))
        domains = [d for d in c.children(c.domains, ["Domains"])
                   if c.key_index(c.domains, ["Domains", d, "Disabled"]) < 0 or rng.random() < 0.3]
        queries = tuple((d, rng.random() < 0.3) for d in domains)
        out.append(RecordsCase(f"records-{seed}-{k}", c, queries, smtp))
    return out
