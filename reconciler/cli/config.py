"""`mox-reconciler config test|dump`: read mox's config as mox does."""

from __future__ import annotations

import argparse
import sys

from reconciler.cli.parser import add_global_options


def configure(p: argparse.ArgumentParser) -> None:
    verbs = p.add_subparsers(dest="config_command", metavar="VERB", required=True)
    t = verbs.add_parser("test", help="parse and validate mox.conf + domains.conf like `mox config test`")
    t.set_defaults(func=run_test)
    d = verbs.add_parser("dump", help="print domains.conf re-serialized exactly as mox would write it, "
                         "secrets (webhook Authorization) as <redacted>")
    d.add_argument("--show-secrets", action="store_true", help="print secrets as they are")
    d.set_defaults(func=run_dump)
    for sub in (t, d):  # `config test --config X`, as after every other verb
        add_global_options(sub, after_verb=True)


def run_test(args: argparse.Namespace) -> int:
    from reconciler.mox.live import locate, read_live
    from reconciler.mox.validate import check_live

    paths = locate(args.config)
    live = read_live(paths)
    errors = check_live(live)
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    print("config OK")
    return 0


def run_dump(args: argparse.Namespace) -> int:
    from reconciler.mox import sconf
    from reconciler.mox.live import locate, read_live
    from reconciler.mox.secret import redacted

    live = read_live(locate(args.config))
    try:
        data = sconf.write_bytes(live.dynamic if args.show_secrets else redacted(live.dynamic))
    except sconf.WriteRefused as e:
        print(f"error: {live.paths.domains_conf}: cannot write: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0
