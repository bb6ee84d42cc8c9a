"""Benchmark: add N domains to a config of M domains, as one batch and one primitive call at a time.

Run from the repository root:

    .venv/bin/python bench/bench_batch.py --domains 1000 --add 100

The base config has M domains, each with one Ed25519 DKIM selector (real key files, so validation
reads M keys per write as mox does; Ed25519 keeps building the base config fast), and one account
with an address per domain. Every added domain gets two RSA-2048 keys, as mox's DomainAdd does.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.apply import batch, keyfiles
from reconciler.mox import config as mc
from reconciler.mox import keygen, sconf
from reconciler.mox.admin import DomainAdd, make_account_config
from reconciler.mox.live import ConfigPaths
from reconciler.mox.names import parse_domain

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden"
NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def build(root: Path, n: int) -> ConfigPaths:
    cfg = root / "config"
    shutil.copytree(GOLDEN / "instance" / "config", cfg)
    (root / "data").mkdir()
    bootstrap = GOLDEN / "steps" / "00-init-bootstrap" / "domains.conf"
    base = sconf.parse(bootstrap.read_text(), mc.Dynamic)
    domains = dict(base.Domains)
    dests: dict[str, mc.Destination] = {}
    for i in range(n):
        name = f"d{i:04d}.example"
        req = keygen.KeyRequest("ed", name, keygen.ED25519, NOW)
        keyfiles.write_key_file(cfg, req.path, keygen.generate(req), None)
        sel = mc.Selector(PrivateKeyFile=req.path)
        domains[name] = mc.Domain(DKIM=mc.DKIM(Selectors={"ed": sel}, Sign=("ed",)))
        dests[f"user@{name}"] = mc.Destination()
    acc = make_account_config("user@d0000.example", parse_domain("d0000.example"))
    dyn = replace(base, Domains=domains, Accounts={**base.Accounts, "user": replace(acc, Destinations=dests)})
    (cfg / "domains.conf").write_bytes(sconf.write_bytes(dyn))
    return ConfigPaths(cfg / "mox.conf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--add", type=int, default=100)
    ap.add_argument("--workers", type=int, default=None, help="key generation processes (default: all cores)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        template = build(Path(tmp) / "template", args.domains)
        print(f"base config: {args.domains} domains, built in {time.perf_counter() - t0:.1f}s, "
              f"domains.conf {template.domains_conf.stat().st_size // 1024} KB")
        ops = [DomainAdd(f"new{i:03d}.example", "user") for i in range(args.add)]

        one = Path(tmp) / "batch"
        shutil.copytree(Path(tmp) / "template", one)
        paths = ConfigPaths(one / "config" / "mox.conf")
        t0 = time.perf_counter()
        res = batch.apply_batch(paths, ops, now=NOW, workers=args.workers)
        total = time.perf_counter() - t0
        kg = res.timings["keygen"]
        print(f"one batch of {args.add} DomainAdd: {total:.2f}s total; key generation {kg:.2f}s "
              f"({100 * kg / total:.0f}%), validation {res.timings['validate']:.2f}s, "
              f"write {res.timings['write']:.3f}s")

        each = Path(tmp) / "each"
        shutil.copytree(Path(tmp) / "template", each)
        paths = ConfigPaths(each / "config" / "mox.conf")
        per: list[float] = []
        kg_sum = 0.0
        t0 = time.perf_counter()
        for op in ops:
            t1 = time.perf_counter()
            r = batch.apply_batch(paths, [op], now=NOW)
            per.append(time.perf_counter() - t1)
            kg_sum += r.timings["keygen"]
        total1 = time.perf_counter() - t0
        print(f"{args.add} single-operation calls: {total1:.2f}s total, median {statistics.median(per):.3f}s "
              f"per call; key generation {kg_sum:.2f}s ({100 * kg_sum / total1:.0f}%)")
        same = paths.domains_conf.read_bytes() == res.path.read_bytes()
        print(f"same resulting domains.conf: {same}")


if __name__ == "__main__":
    main()
