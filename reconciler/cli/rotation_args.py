"""Options of the verbs that plan (plan, apply, watch) for DKIM rotation: the resolver that DNS is
checked with, RFC 2136 publishing, and `--now` for planning ahead (docs/dkim-rotation.md)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.dns.rotation import DNSAccess


def rfc3339(text: str) -> datetime:
    """An RFC 3339 time with its offset (2026-12-01T12:00:00Z), as an aware local time to the second."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: expected RFC 3339, e.g. 2026-12-01T12:00:00Z") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} has no UTC offset: add Z or e.g. +01:00")
    return t.astimezone().replace(microsecond=0)


def add_rotation_options(p: argparse.ArgumentParser, *, publishing: bool = True) -> None:
    p.add_argument("--now", type=rfc3339, metavar="TIME",
                   help="act as if it were TIME (RFC 3339, e.g. 2026-12-01T12:00:00Z): DKIM rotation steps, key "
                   "names, MTA-STS policy IDs. For planning ahead and for tests")
    p.add_argument("--resolver", metavar="IP[:PORT]",
                   help="resolver that DKIM rotation checks its records with (default: the system's first name "
                   "server)")
    if not publishing:
        return
    p.add_argument("--publish", choices=["rfc2136"],
                   help="publish the DKIM records of rotating domains with RFC 2136 (needs --server and "
                   "--tsig-key-file); without it, publish them by hand from the plan or the DNS-record reports")
    p.add_argument("--server", metavar="IP[:PORT]", help="primary name server for --publish")
    p.add_argument("--zone", action="append", default=[], metavar="ZONE",
                   help="zone to publish into (repeatable; default: each rotating domain is its own zone)")
    p.add_argument("--tsig-key-file", type=Path, metavar="FILE",
                   help='BIND key file for --publish: key "name" { algorithm hmac-sha256; secret "..."; };')


def dns_access(args: argparse.Namespace) -> DNSAccess:
    """The resolver and publisher the options name (a TSIG key file is read here: errors show early).
    dnspython is loaded only when one is named (a plan without rotation asks DNS nothing)."""
    from reconciler.dns.rotation import DNSAccess, Publisher

    publisher = None
    if getattr(args, "publish", None):
        from reconciler.dns.check import parse_server
        from reconciler.dns.publish import load_tsig_key

        if not (args.server and args.tsig_key_file):
            raise ReconcilerError("--publish rfc2136 needs --server and --tsig-key-file")
        zones = tuple(z.rstrip(".").lower() for z in args.zone if z.strip())
        publisher = Publisher(parse_server(args.server), load_tsig_key(args.tsig_key_file), zones)
    elif getattr(args, "server", None) or getattr(args, "zone", None) or getattr(args, "tsig_key_file", None):
        raise ReconcilerError("--server, --zone and --tsig-key-file are for --publish rfc2136")
    if args.resolver:
        from reconciler.dns.check import parse_server

        parse_server(args.resolver)  # a bad address is an error now, not a failed check at every run
    return DNSAccess(args.resolver, publisher)
