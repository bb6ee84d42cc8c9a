"""Benchmark: plan and apply against a live config of N domains, with a desired state naming all
of them plus K new ones.

Run from the repository root:

    .venv/bin/python bench/bench_plan.py                 # --domains 10000 --add 100

The live config has N domains, each with one Ed25519 DKIM selector (all pointing at one shared
key file, so building it is fast; validation still stats/reads it per selector as mox does), and
one account `user` with an address per domain. The desired state is `import` of that config
(one YAML file) plus K new domains, each with an Ed25519 selector and an address of `user`.
Timed: load_desired, read_live, make_plan, the whole `apply` CLI verb (plan + safety + one
batch write + inventory + DNS-record reports of the K new domains), and the re-plan afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.apply import keyfiles
from reconciler.cli.main import main as cli_main
from reconciler.desired.importer import dump, import_live
from reconciler.desired.load import load_desired
from reconciler.mox import config as mc
from reconciler.mox import keygen, sconf
from reconciler.mox.admin import make_account_config
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.mox.names import parse_domain
from reconciler.plan.inventory import read_inventory
from reconciler.plan.planner import PlanInput, make_plan

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden"
NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def build(root: Path, n: int) -> ConfigPaths:
    cfg = root / "config"
    shutil.copytree(GOLDEN / "instance" / "config", cfg)
    (root / "data").mkdir()
    base = sconf.parse((GOLDEN / "steps" / "00-init-bootstrap" / "domains.conf").read_text(), mc.Dynamic)
    req = keygen.KeyRequest("ed", "shared.example", keygen.ED25519, NOW)
    keyfiles.write_key_file(cfg, req.path, keygen.generate(req), None)
    sel = mc.Selector(PrivateKeyFile=req.path)
    domains = dict(base.Domains)
    dests: dict[str, mc.Destination] = {}
    for i in range(n):
        name = f"d{i:05d}.example"
        domains[name] = mc.Domain(DKIM=mc.DKIM(Selectors={"ed": sel}, Sign=("ed",)))
        dests[f"user@{name}"] = mc.Destination()
    acc = make_account_config("user@d00000.example", parse_domain("d00000.example"))
    dyn = replace(base, Domains=domains, Accounts={**base.Accounts, "user": replace(acc, Destinations=dests)})
    (cfg / "domains.conf").write_bytes(sconf.write_bytes(dyn))
    return ConfigPaths(cfg / "mox.conf")


def timed(label: str, fn: object) -> object:
    t0 = time.perf_counter()
    result = fn()  # type: ignore[operator]
    print(f"{label:<44} {time.perf_counter() - t0:7.2f}s", file=sys.stderr)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--domains", type=int, default=10000)
    ap.add_argument("--add", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        paths = build(root / "mox", args.domains)
        live = read_live(paths)
        doc = import_live(live.static, live.dynamic)
        for i in range(args.add):
            name = f"new{i:03d}.example"
            doc["Domains"][name] = {"ReportsAccount": "user",
                                    "DKIM": {"Selectors": {"ed": {"Algorithm": "ed25519"}}, "Sign": ["ed"]}}
            doc["Accounts"]["user"]["Destinations"][f"user@{name}"] = {}
        desired = root / "desired"
        desired.mkdir()
        (desired / "desired.yaml").write_text(dump(doc))
        print(f"live: {len(live.dynamic.Domains)} domains, domains.conf "
              f"{paths.domains_conf.stat().st_size // 1024} KB; desired.yaml "
              f"{(desired / 'desired.yaml').stat().st_size // 1024} KB; built in {time.perf_counter() - t0:.1f}s")

        state = timed("load_desired", lambda: load_desired(desired))
        live = timed("read_live (parse domains.conf + mox.conf)", lambda: read_live(paths))  # type: ignore[assignment]
        inp = PlanInput(state, live.static, live.dynamic, now=NOW)  # type: ignore[arg-type]
        plan = timed("make_plan", lambda: make_plan(inp))
        print(f"  {plan.summary()}")  # type: ignore[attr-defined]

        argv = ["--config", str(paths.mox_conf), "apply", "--yes", str(desired)]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = timed(f"apply CLI ({args.add} new domains, one write)", lambda: cli_main(argv))
        assert rc == 0, out.getvalue()
        applied = [line for line in out.getvalue().splitlines() if line.startswith("Applied")]
        print(f"  {applied[0] if applied else out.getvalue()[-300:]}")
        print(f"  inventory: {len(read_inventory(paths.config_dir).objects)} objects")

        argv = ["--config", str(paths.mox_conf), "plan", "--detailed-exitcode", str(desired)]
        with contextlib.redirect_stdout(io.StringIO()):
            rc = timed("plan CLI afterwards (no changes)", lambda: cli_main(argv))
        assert rc == 0, rc


if __name__ == "__main__":
    main()
