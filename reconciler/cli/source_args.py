"""Options shared by the verbs that read a desired state from a source (plan, apply, watch)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.desired.source import Source
    from reconciler.plan.document import PlanDocument


def add_source_options(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        p.add_argument("source", nargs="?", default=".", metavar="SOURCE",
                       help="desired state: a directory, a git checkout, or a git URL (default: .)")
    p.add_argument("--ref", help="branch, tag or commit of a git SOURCE (default: HEAD / the remote's default)")
    p.add_argument("--subdir", help="directory of the desired state inside the repository")
    p.add_argument("--cache-dir", type=Path,
                   help="where remote sources are cloned and parsed desired-state files are cached "
                   "(default: ~/.cache/mox-reconciler)")
    p.add_argument("--require-signed-commits", action="store_true",
                   help="refuse a commit whose GPG/SSH signature git does not verify")
    p.add_argument("--allowed-signers", type=Path, metavar="FILE",
                   help="SSH allowed-signers file for --require-signed-commits")


def add_all_instances_option(p: argparse.ArgumentParser, what: str) -> None:
    """`--all-instances [DIR]`: every instance directory of a fleet repository (docs/fleet.md)."""
    p.add_argument("--all-instances", nargs="?", const="instances", default=None, metavar="DIR",
                   help=f"{what} every instance of a fleet repository: SOURCE/DIR/* (DIR default: instances)")


def add_domain_option(p: argparse.ArgumentParser) -> None:
    """`--domain D`, repeatable (as octoDNS's --zone)."""
    p.add_argument("--domain", action="append", metavar="DOMAIN", dest="domains",
                   help="only operations on this domain and on the addresses and aliases in it (repeatable); "
                   "accounts' other fields, other domains and global settings are left as they are")


def resolve_from_args(args: argparse.Namespace, source: str | None = None) -> Source:
    from reconciler.desired.source import resolve_source

    return resolve_source(
        source if source is not None else args.source,
        ref=args.ref,
        cache_dir=args.cache_dir,
        subdir=args.subdir,
        require_signed=args.require_signed_commits,
        allowed_signers=args.allowed_signers,
    )


def add_strict_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="treat the plan's warnings (Removed entries that name nothing, signing with a "
                   "selector this apply creates) as errors: exit 1, nothing applied")


def check_strict(args: argparse.Namespace, doc: PlanDocument) -> None:
    """With --strict, a plan with warnings is an error (after it was shown)."""
    from reconciler.errors import ReconcilerError

    if args.strict and doc.warnings:
        n = len(doc.warnings)
        raise ReconcilerError(f"the plan has {n} warning{'s' if n != 1 else ''} and --strict makes them errors:\n  "
                              + "\n  ".join(doc.warnings))
