"""`mox-reconciler import [-o PATH]`: write the desired state describing the live config.

Adopting an existing mox is: import, commit, and from then on the plan is empty. Without -o,
one document goes to stdout; `-o FILE.yaml` writes one file; `-o DIR` writes one file per
domain (`domain-<ascii name>.yaml`) plus `accounts.yaml` (and `global.yaml` for global routes
or DNSBLs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        default=None,
        help="directory (one file per domain + accounts.yaml) or FILE.yaml; default: stdout",
    )
    p.add_argument(
        "--schema",
        metavar="URL",
        default=None,
        help="add a yaml-language-server $schema modeline pointing here",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--secrets-dir", metavar="DIR", default="/run/secrets/mox-reconciler",
                   help="secrets (webhook Authorization) are not written; they become references to files "
                   "in DIR (default: /run/secrets/mox-reconciler)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.desired.importer import dump, import_files, import_live, secret_files, write_files
    from reconciler.mox.live import locate, read_live

    live = read_live(locate(args.config))
    out = args.output
    if out is None or out == "-":
        sys.stdout.write(dump(import_live(live.static, live.dynamic, args.secrets_dir), args.schema))
    else:
        path = Path(out)
        if path.suffix in (".yaml", ".yml"):
            text = dump(import_live(live.static, live.dynamic, args.secrets_dir), args.schema)
            write_files(path.parent, {path.name: text}, args.force)
            written = [path]
        else:
            written = write_files(path, import_files(live.static, live.dynamic, args.schema, args.secrets_dir),
                                  args.force)
        print(f"wrote {len(written)} file{'s' if len(written) != 1 else ''} to {path}", file=sys.stderr)
    for name, account in live.dynamic.Accounts.items():
        for hook, file in secret_files(name, account, args.secrets_dir).items():
            print(f"note: Accounts.{name}.{hook}.Authorization is a secret: not written, but read from {file}; "
                  f"put the value from {live.paths.domains_conf} there before the next plan", file=sys.stderr)
    return 0
