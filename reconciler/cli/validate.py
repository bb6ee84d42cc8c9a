"""`mox-reconciler validate [SOURCE]`: check a desired state without touching mox.

With `--subdir DIR` the desired state is SOURCE/DIR and its includes may reach anything in
SOURCE; with `--all-instances` every `instances/<name>/` of a fleet repository is checked, each
on its own (CI runs this on every pull request).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.source_args import add_all_instances_option

if TYPE_CHECKING:
    from reconciler.desired.models import DesiredState


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=".", help="desired state directory or file (default: .)")
    p.add_argument("--subdir", metavar="DIR",
                   help="check SOURCE/DIR, whose Include: paths may reach anything in SOURCE "
                   "(a fleet repository: --subdir instances/NAME)")
    add_all_instances_option(p, "check")
    p.set_defaults(func=run)


def summary(state: DesiredState) -> str:
    """One line: what the desired state defines."""
    addresses = sum(len(a.Destinations) for a in state.Accounts.values())
    aliases = sum(len(d.Aliases) for d in state.Domains.values())
    idn = sum(1 for d in state.Domains if not d.isascii())  # keys are checked to be Unicode names
    return (
        f"desired state OK: {len(state.Domains)} domains ({idn} internationalized), "
        f"{len(state.Accounts)} accounts, {addresses} addresses, {aliases} aliases, "
        f"{len(state.files)} files"
    )


def _check(path: Path, root: Path | None, label: str = "") -> bool:
    """Load one desired state; print its summary or its problems. True when valid."""
    from reconciler.desired.load import load_desired
    from reconciler.errors import DesiredStateError

    try:
        state = load_desired(path, root)
    except DesiredStateError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        n = len(e.problems)
        print(f"error: {label}desired state invalid: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
        return False
    print(f"{label}{summary(state)}")
    return True


def run(args: argparse.Namespace) -> int:
    from reconciler.desired.fleet import find_instances, relative_dir

    source = Path(args.source)
    if args.all_instances is not None:
        if args.subdir:
            print("error: --subdir and --all-instances exclude each other", file=sys.stderr)
            return 1
        instances = find_instances(source, args.all_instances)
        bad = [i.name for i in instances if not _check(source / i.subdir, source, f"{i.subdir}: ")]
        if bad:
            print(f"error: {len(bad)} of {len(instances)} instances invalid: {', '.join(bad)}", file=sys.stderr)
            return 1
        print(f"all {len(instances)} instances OK")
        return 0
    if args.subdir:
        return 0 if _check(source / relative_dir(args.subdir, "--subdir"), source) else 1
    return 0 if _check(source, None) else 1
