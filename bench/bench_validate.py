"""Benchmark: validate a domains.conf of 10,000 domains and 10,000 accounts (20,000 DKIM selectors).

The config is generated in memory; the key files are real RSA-2048 PKCS#8 files (50 of them,
generated once into a temp dir, selectors point at them round-robin), the mox.conf is the golden
one. Run from the repository root:

    .venv/bin/python bench/bench_validate.py [--domains N]

Prints the time of: validation without a key cache (every selector's file read and parsed, as
mox does), with a cold KeyCache, and with a warm KeyCache (the reconciler's steady state).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.mox import sconf
from reconciler.mox.config import (
    DKIM,
    DMARC,
    TLSRPT,
    Account,
    AutomaticJunkFlags,
    Destination,
    Domain,
    Dynamic,
    JunkFilter,
    JunkParams,
    Selector,
    Static,
)
from reconciler.mox.keyfiles import KeyCache
from reconciler.mox.validate import validate_dynamic

GOLDEN_MOXCONF = Path(__file__).resolve().parent.parent / "tests/fixtures/golden/instance/config/mox.conf"


def make_keys(dir: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        name = f"dkim/key{i}.rsa2048.privatekey.pkcs8.pem"
        (dir / name).write_bytes(pem)
        names.append(name)
    return names


def make_config(n: int, keys: list[str]) -> Dynamic:
    ajf = AutomaticJunkFlags(
        Enabled=True,
        JunkMailboxRegexp="^(junk|spam)",
        NeutralMailboxRegexp="^(inbox|introbox|neutral|postmaster|dmarc|tlsrpt|rejects)",
    )
    jf = JunkFilter(Threshold=0.95, Params=JunkParams(Onegrams=True, MaxPower=0.01, TopWords=10))
    domains: dict[str, Domain] = {"mail.example.org": Domain()}
    accounts: dict[str, Account] = {"admin": Account(Domain="mail.example.org")}
    for i in range(n):
        d = f"d{i}.example"
        acc = f"user{i}"
        sels = {
            "2026a": Selector(Expiration="72h", PrivateKeyFile=keys[(2 * i) % len(keys)]),
            "2026b": Selector(Expiration="72h", PrivateKeyFile=keys[(2 * i + 1) % len(keys)]),
        }
        domains[d] = Domain(
            ClientSettingsDomain=f"mail.{d}",
            LocalpartCatchallSeparator="+",
            DKIM=DKIM(Selectors=sels, Sign=("2026a",)),
            DMARC=DMARC(Localpart="dmarcreports", Account=acc, Mailbox="DMARC"),
            TLSRPT=TLSRPT(Localpart="tlsreports", Account=acc, Mailbox="TLSRPT"),
        )
        accounts[acc] = Account(
            Domain=d,
            Destinations={f"{acc}@{d}": Destination(), f"postmaster@{d}": Destination()},
            RejectsMailbox="Rejects",
            AutomaticJunkFlags=ajf,
            JunkFilter=jf,
        )
    return Dynamic(Domains=domains, Accounts=accounts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=50)
    args = ap.parse_args()
    static = sconf.parse(GOLDEN_MOXCONF.read_text(), Static)
    with tempfile.TemporaryDirectory() as tmp:
        cdir = Path(tmp)
        (cdir / "dkim").mkdir()
        t0 = time.perf_counter()
        keys = make_keys(cdir, args.keys)
        print(f"generated {args.keys} RSA-2048 keys in {time.perf_counter() - t0:.2f}s")
        dyn = make_config(args.domains, keys)
        print(
            f"config: {len(dyn.Domains)} domains, {len(dyn.Accounts)} accounts, {2 * args.domains} selectors"
        )

        def run(label: str, cache: KeyCache | None) -> None:
            t = time.perf_counter()
            v = validate_dynamic(static, dyn, cdir, keys=cache)
            dt = time.perf_counter() - t
            assert v.errors == [], v.errors[:5]
            loads = f", key parses {cache.loads}" if cache is not None else ""
            print(f"{label:32s} {dt:6.2f}s  ({len(v.addresses)} addresses{loads})")

        run("no cache (every key parsed)", None)
        cache = KeyCache()
        run("KeyCache, cold", cache)
        run("KeyCache, warm", cache)
        run("KeyCache, warm (again)", cache)


if __name__ == "__main__":
    main()
