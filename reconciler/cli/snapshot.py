"""`mox-reconciler snapshot OUT_DIR`: a secret-free copy of the live config for CI plans."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Write a copy of the live config (--config) that a CI job can plan against without access to the "
        "server: mox.conf and domains.conf with secrets redacted, the inventory, and the DNS-record "
        "reports of every domain (DKIM public keys; private keys are never copied). Commit OUT_DIR to the "
        "desired-state repository and refresh it now and then; `plan --config OUT_DIR/mox.conf` uses it, "
        "apply refuses it.")
    p.add_argument("out_dir", type=Path, nargs="?", metavar="OUT_DIR",
                   help="directory to write (new, empty, or an earlier snapshot)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.mox.live import locate
    from reconciler.snapshot import SnapshotError, take_snapshot

    if args.out_dir is None:
        raise SnapshotError("snapshot needs OUT_DIR, the directory to write the copy to")
    snap = take_snapshot(locate(args.config), args.out_dir)
    print(f"Snapshot of {snap.domains} domain{'s' if snap.domains != 1 else ''} written to {snap.out} "
          f"({len(snap.files)} files, no secrets, no private keys); plan with --config {snap.out / 'mox.conf'}")
    return 0
