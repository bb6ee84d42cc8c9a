"""`mox-reconciler validate [SOURCE]`: check a desired state without touching mox."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.desired.models import DesiredState


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=".", help="desired state directory or file (default: .)")
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


def run(args: argparse.Namespace) -> int:
    from reconciler.desired.load import load_desired
    from reconciler.errors import DesiredStateError

    try:
        state = load_desired(Path(args.source))
    except DesiredStateError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        n = len(e.problems)
        print(f"error: desired state invalid: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
        return 1
    print(summary(state))
    return 0
