"""`mox-reconciler records`: the DNS records mox wants, as text/zone/JSON/Markdown/octoDNS,
checked against DNS (`--check`) or published with RFC 2136 (`--publish rfc2136`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.mox.dnsrecords import Report
    from reconciler.mox.live import LiveConfig

# `reconciler.dns.formats.FORMATS` (a test checks): named here so `records --help` does not import
# the record generator and with it dnspython, cryptography and PyYAML.
FORMAT_NAMES = ("mox", "zone", "json", "markdown", "octodns")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--domain", action="append", default=[], metavar="D",
                   help="domain to report (repeatable; default: every domain in domains.conf)")
    p.add_argument("--format", choices=FORMAT_NAMES, default="mox",
                   help="mox: exactly mox's text; zone: BIND fragment; json (docs/records.md); "
                        "markdown; octodns: YamlProvider YAML (default: mox)")
    p.add_argument("--out", metavar="DIR", type=Path, help="write one file per domain into DIR")
    p.add_argument("--dnssec", nargs="?", const="on", default="off", choices=["on", "off", "auto"],
                   help="the zone is DNSSEC-signed (enables the DANE TLSA records); "
                        "--dnssec=auto asks the resolver (AD bit), as mox does")
    p.add_argument("--acme-account-uri", default="", metavar="URI",
                   help="ACME account URL, for mox's optional CAA account records (mox fetches it online)")
    p.add_argument("--resolver", metavar="IP[:PORT]",
                   help="resolver for --check and --dnssec=auto (default: the system's first name server)")
    p.add_argument("--check", action="store_true",
                   help="query DNS: present/missing/different/extra per record; "
                        "exit 2 unless all required records match")
    p.add_argument("--publish", choices=["rfc2136"], help="publish with RFC 2136 dynamic updates")
    p.add_argument("--server", metavar="IP[:PORT]", help="primary name server for --publish")
    p.add_argument("--zone", help="zone to update with --publish (only records inside it are sent)")
    p.add_argument("--tsig-key-file", type=Path, metavar="FILE",
                   help='BIND key file: key "name" { algorithm hmac-sha256; secret "..."; };')
    p.add_argument("--dry-run", action="store_true", help="with --publish: print the update, send nothing")
    p.add_argument("--force", action="store_true",
                   help="with --publish: publish even when it weakens an SPF record (-all -> ~all) or a "
                   "DMARC policy that is there")
    p.set_defaults(func=run)


def _dnssec(args: argparse.Namespace, domain_ascii: str) -> bool:
    if args.dnssec == "auto":
        from reconciler.dns.check import dnssec_status, parse_server

        return dnssec_status(parse_server(args.resolver), domain_ascii)
    return bool(args.dnssec == "on")


def _in_zone(args: argparse.Namespace, live: LiveConfig) -> list[str]:
    """With --publish: the --domain names, each inside --zone (an error otherwise: its records
    cannot go into this zone); without --domain, the config's domains inside --zone."""
    from reconciler.dns import reports as dnsreports
    from reconciler.dns.formats import in_zone
    from reconciler.errors import RecordsError

    if not args.domain:
        inside = [d for d in sorted(live.dynamic.Domains)
                  if in_zone(dnsreports.find_domain(live.dynamic, d)[0].ascii, args.zone)]
        if not inside:
            raise RecordsError(f"no domain of domains.conf is inside --zone {args.zone}")
        return inside
    for dom in args.domain:
        d, _ = dnsreports.find_domain(live.dynamic, dom)
        if not in_zone(d.ascii, args.zone):
            raise RecordsError(f"--domain {dom} is not inside --zone {args.zone}: its records belong in "
                               "another zone; publish it with that zone's --zone")
    return list(args.domain)


def reports_for(args: argparse.Namespace, live: LiveConfig) -> list[Report]:
    from reconciler.dns import reports as dnsreports

    wanted = _in_zone(args, live) if args.publish else args.domain or sorted(live.dynamic.Domains)
    hk = dnsreports.load_host_keys(live.paths, live.static)
    out = []
    for dom in wanted:
        d, _ = dnsreports.find_domain(live.dynamic, dom)
        out.append(dnsreports.for_live(live, dom, dnssec=_dnssec(args, d.ascii),
                                    acme_account_uri=args.acme_account_uri, host_keys=hk))
    return out


def run(args: argparse.Namespace) -> int:
    from reconciler.dns import formats
    from reconciler.dns.reports import merge
    from reconciler.errors import RecordsError
    from reconciler.mox.live import locate, read_live

    if args.publish and not (args.server and args.zone and args.tsig_key_file):
        raise RecordsError("--publish rfc2136 needs --server, --zone and --tsig-key-file")
    if args.publish and args.check:
        raise RecordsError("use either --check or --publish, not both")
    live = read_live(locate(args.config))
    reports = reports_for(args, live)
    if args.publish:
        from reconciler.dns.check import parse_server
        from reconciler.dns.publish import describe, load_tsig_key, publish

        key = load_tsig_key(args.tsig_key_file)
        result = publish(merge(reports), args.zone, parse_server(args.server), key,
                         dry_run=args.dry_run, force=args.force)
        sys.stdout.write(describe(result))
        return 0
    if args.check:
        from reconciler.dns.check import all_required_ok, check, parse_server, render_findings

        server = parse_server(args.resolver)
        findings = check(merge(reports), server)
        sys.stdout.write(render_findings(findings))
        return 0 if all_required_ok(findings) else 2
    if args.out is not None:
        for path in formats.write_files(args.out, reports, [args.format], mode=0o666):
            print(path)
        return 0
    sys.stdout.write(formats.render(args.format, reports))
    return 0

