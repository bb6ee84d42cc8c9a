"""Live config -> desired-state YAML, so adopting an installation is: import, commit, empty plan.

Each domain and account is written as the difference from what the desired state's defaults
(DomainAdd / AccountAdd) would give, so a domain made by `mox config domain add` imports as a
few lines. DKIM selectors and MTA-STS are always written in full: selectors adopt their live key
files (`PrivateKeyFile`), and the MTA-STS policy ID is pinned. The round trip is exact:
`load_desired(import) .to_dynamic(static, None)` gives back the live domains and accounts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reconciler.desired.models import DesiredAccount, DesiredDomain
from reconciler.desired.tomox import account_to_mox, domain_to_mox
from reconciler.errors import ReconcilerError
from reconciler.fsutil import atomic_write, fsync_dir
from reconciler.mox import config as mc
from reconciler.mox.config import OPTIONAL, Dynamic, Static
from reconciler.mox.golang import Duration, format_duration
from reconciler.mox.names import ParseError, parse_domain

# Blocks whose keys are written in full even when zero: their desired defaults are not Go zeros.
_ALL_FIELDS = (mc.DMARC, mc.TLSRPT, mc.MTASTS)


def _zero(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def to_data(value: Any) -> Any:
    """A mox config value as YAML data, leaving out optional fields that are zero (like sconf)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        full = isinstance(value, _ALL_FIELDS)
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if full or not f.metadata.get(OPTIONAL) or v != _zero(f):
                out[f.name] = to_data(v)
        return out
    if isinstance(value, Duration):
        return format_duration(value)
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


def _selector(sel: mc.Selector) -> dict[str, Any]:
    return to_data(sel)  # type: ignore[no-any-return]


def import_domain(name: str, live: mc.Domain, static: Static) -> dict[str, Any]:
    """One domain as desired-state data: the fields that differ from the defaults."""
    out: dict[str, Any] = {}
    reports = ""
    for rep in (live.DMARC, live.TLSRPT):
        if rep is not None and rep.Account:
            reports = rep.Account
            break
    if reports:
        out["ReportsAccount"] = reports
    base = domain_to_mox(name, DesiredDomain(ReportsAccount=reports), static, None, None)
    for f in dataclasses.fields(mc.Domain):
        if f.name in ("DKIM", "MTASTS"):
            continue
        v = getattr(live, f.name)
        if v != getattr(base, f.name):
            out[f.name] = None if v is None else to_data(v)
    if live.DKIM.Selectors or live.DKIM.Sign:
        out["DKIM"] = {
            "Selectors": {k: _selector(s) for k, s in live.DKIM.Selectors.items()},
            "Sign": list(live.DKIM.Sign),
        }
    else:
        out["DKIM"] = None
    if live.MTASTS is not None:
        out["MTASTS"] = to_data(live.MTASTS)
    elif base.MTASTS is not None:
        out["MTASTS"] = None
    # Keep Go's field order, ReportsAccount first.
    order = ["ReportsAccount", *(f.name for f in dataclasses.fields(mc.Domain))]
    return {k: out[k] for k in order if k in out}


# Where imported secret references point (`import --secrets-dir`): a Kubernetes Secret or the
# compose/systemd credentials mounted there (docs/deploying.md).
SECRETS_DIR = "/run/secrets/mox-reconciler"
_HOOKS = (("OutgoingWebhook", "outgoing-webhook"), ("IncomingWebhook", "incoming-webhook"))


def secret_files(name: str, live: mc.Account, secrets_dir: str = SECRETS_DIR) -> dict[str, str]:
    """The account's secrets that `import` writes as references: field -> the file it names."""
    out = {}
    for hook, suffix in _HOOKS:
        value = getattr(live, hook)
        if value is not None and value.Authorization:
            out[hook] = f"{secrets_dir.rstrip('/')}/{name}.{suffix}"
    return out


def import_account(live: mc.Account, name: str = "", secrets_dir: str = SECRETS_DIR) -> dict[str, Any]:
    """One account as desired-state data: Domain, Destinations and what differs from AccountAdd.
    A webhook's Authorization becomes a reference to a file (`secret_files`): secrets stay out of git."""
    base = account_to_mox(DesiredAccount())
    out: dict[str, Any] = {}
    for f in dataclasses.fields(mc.Account):
        v = getattr(live, f.name)
        if f.name in ("Domain", "Destinations") or v != getattr(base, f.name):
            out[f.name] = None if v is None else to_data(v)
    for hook, path in secret_files(name, live, secrets_dir).items():
        out[hook]["Authorization"] = {"File": path}
    return out


def import_live(static: Static, dynamic: Dynamic, secrets_dir: str = SECRETS_DIR) -> dict[str, Any]:
    """The whole live config as one desired-state document."""
    doc: dict[str, Any] = {
        "Domains": {k: import_domain(k, d, static) for k, d in dynamic.Domains.items()},
        "Accounts": {k: import_account(a, k, secrets_dir) for k, a in dynamic.Accounts.items()},
    }
    if dynamic.Routes:
        doc["Routes"] = to_data(dynamic.Routes)
    if dynamic.MonitorDNSBLs:
        doc["MonitorDNSBLs"] = list(dynamic.MonitorDNSBLs)
    return doc


class _Dumper(yaml.SafeDumper):
    """Block style, Unicode as is, lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump(doc: Mapping[str, Any], schema: str | None = None, comment: str = "") -> str:
    head = f"# yaml-language-server: $schema={schema}\n" if schema else ""
    if comment:
        head += "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return head + body


def _ascii(name: str) -> str:
    try:
        return parse_domain(name).ascii
    except ParseError:
        return name


def import_files(static: Static, dynamic: Dynamic, schema: str | None = None,
                 secrets_dir: str = SECRETS_DIR) -> dict[str, str]:
    """File name -> YAML text: `domain-<ascii name>.yaml` per domain, `accounts.yaml`."""
    doc = import_live(static, dynamic, secrets_dir)
    files: dict[str, str] = {}
    for name, data in doc["Domains"].items():
        files[f"domain-{_ascii(name)}.yaml"] = dump({"Domains": {name: data}}, schema)
    files["accounts.yaml"] = dump({"Accounts": doc["Accounts"]}, schema)
    rest = {k: v for k, v in doc.items() if k not in ("Domains", "Accounts")}
    if rest:
        files["global.yaml"] = dump(rest, schema)
    return files


class ImportTargetExists(ReconcilerError):
    """The import target exists and --force was not given."""


def write_files(out: Path, files: Mapping[str, str], force: bool) -> list[Path]:
    """Write the files into `out` (created), refusing to overwrite without `force`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in files]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise ImportTargetExists(f"{existing[0]}: exists (use --force to overwrite)")
    for p in paths:
        atomic_write(p, files[p.name].encode(), 0o666, sync_dir=False)
    fsync_dir(out)
    return paths
