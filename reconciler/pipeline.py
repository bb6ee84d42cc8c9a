"""One reconcile, end to end: source -> desired (+ secrets) -> live -> plan -> safety -> apply ->
inventory -> records -> passwords.

The CLI verbs `plan` and `apply` and the watcher all go through here, so a scheduled run, a
pull-request job and a human at a terminal do exactly the same thing. I/O lives here; the
planner (`plan.make_plan`) stays pure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from reconciler.desired.cache import ParseCache, default_root
from reconciler.desired.fleet import INSTANCES_DIR, Instance, find_instances
from reconciler.desired.includes import INCLUDE, digest_of, read_with_includes
from reconciler.desired.load import load_desired
from reconciler.desired.models import DesiredState
from reconciler.desired.secrets import leave_unread, read_secrets
from reconciler.desired.source import Source, materialize_source, resolve_source
from reconciler.desired.yamlload import YAMLProblem, read_source_file, yaml_names
from reconciler.dns.formats import remove_stale_reports, render_zone, write_files
from reconciler.dns.reports import dkim_keys_from_report, for_config, load_host_keys, records_for_plan
from reconciler.dns.rotation import DNSAccess, Published, Publisher, check_rotating, publish_rotation, zone_lines
from reconciler.errors import (
    REPORTED,
    ConfigInvalid,
    DesiredStateError,
    LiveConfigError,
    ReconcilerError,
    RecordsError,
    StalePlan,
)
from reconciler.fsutil import SharedDir, permission_problem
from reconciler.mox import config as mc
from reconciler.mox import keygen, names, sconf
from reconciler.mox.admin import DOMAIN_ADD_SELECTORS, AccountRemove, Operation, now_local, used_key_paths
from reconciler.mox.ctl import Ctl, ctl_path
from reconciler.mox.dnsrecords import Report
from reconciler.mox.keyfiles import RSA, HostKeys, KeyCache, KeyFileError, load_dkim_private_key
from reconciler.mox.live import (
    ConfigPaths,
    LiveConfig,
    account_dirs,
    config_dir_path,
    dynamic_digest,
    read_live,
    read_static,
)
from reconciler.mox.validate import dynamic_errors, key_file_errors, require_valid
from reconciler.plan.document import Action, PlanDocument, SourceInfo
from reconciler.plan.explain import PlanRejected
from reconciler.plan.inventory import Inventory, read_inventory
from reconciler.plan.keyverdicts import StoredKeyCache
from reconciler.plan.objects import ObjectKind, ObjectRef
from reconciler.plan.passwords import (
    PasswordStatus,
    SetPassword,
    password_statuses,
    password_text,
    passwords_path,
    read_password_book,
)
from reconciler.plan.planner import Plan, PlanInput, make_plan, plan_document
from reconciler.plan.render import DNSSection
from reconciler.plan.rotation import RotationInput, RotationStatus, StageChange, settle
from reconciler.plan.rotation_memory import DomainMemory, memory_path, read_memory, write_memory
from reconciler.plan.safety import require_safe
from reconciler.planmemo import PlanMemo

# What only an apply uses is imported where it is used: `plan` does not load the batch, the
# writer, the key threads or the confirmation (bench/README.md "startup").
if TYPE_CHECKING:
    from reconciler.apply.batch import BatchResult, Validator, Work
    from reconciler.apply.confirm import Accepted, Confirmation
    from reconciler.apply.keymaker import KeyMaker, Progress
    from reconciler.apply.passwords import PasswordResult
    from reconciler.apply.rounds import Applied
    from reconciler.apply.writer import Snapshot

log = logging.getLogger(__name__)

REPORT_FORMATS = ("mox", "zone", "json")
# In a config dir made by `mox-reconciler snapshot`: a copy of the live config to plan against,
# never to apply to.
SNAPSHOT_FILE = "mox-reconciler.snapshot.json"


def is_snapshot(paths: ConfigPaths) -> bool:
    return (paths.config_dir / SNAPSHOT_FILE).exists()


def refuse_snapshot(paths: ConfigPaths) -> None:
    if is_snapshot(paths):
        raise ReconcilerError(f"{paths.config_dir} is a snapshot of a live config (it has {SNAPSHOT_FILE}): "
                              "plan against it, apply to the live config")


def reports_dir_default(paths: ConfigPaths) -> Path:
    """Where DNS-record reports go after an apply unless --reports-dir says otherwise."""
    return paths.config_dir / "mox-reconciler.records"


def desired_digest(path: Path, root: Path | None = None, files: Sequence[Path] | None = None,
                   desired: DesiredState | None = None) -> str:
    """SHA-256 over the desired-state files (names relative to `path`'s directory, and bytes),
    exactly the files `load_desired` reads, included ones too (never through a link): detects
    edits in a plain directory or uncommitted ones. `desired`: the state loaded from `path`
    (the digest of the bytes it was loaded from); `files`: the ones already read, else they are
    found again."""
    base = os.path.abspath(path if path.is_dir() else path.parent)
    if desired is not None:
        known = desired.digest_at(base)
        if known is not None:
            return known
        files = desired.paths
    if files is not None:
        return digest_of(base, files)
    read = _read_unparsed(path, base)
    if read is not None:
        return digest_of(base, *read)
    try:
        reading = read_with_includes(path, root)
    except DesiredStateError:
        return digest_of(base, [])
    return digest_of(base, reading.paths, reading.contents)


_MAY_INCLUDE = (INCLUDE.encode(), b"\\")


def _read_unparsed(path: Path, base: str) -> tuple[list[str], dict[str, bytes]] | None:
    """The files `read_with_includes` takes and their bytes, read without parsing them, when no
    file can include another: none has `Include` in its text, nor a backslash (a double-quoted
    key could spell it with escapes; the files are UTF-8 without NUL, `yamlload.read_source_file`).
    None when one may, or one cannot be read as a desired-state file (the reading says why)."""
    try:
        files = [os.path.join(base, n) for n in yaml_names(path)] if path.is_dir() else [os.path.abspath(path)]
        contents = {}
        for f in files:
            raw = read_source_file(f)
            if any(mark in raw for mark in _MAY_INCLUDE):
                return None
            contents[f] = raw
    except (OSError, YAMLProblem):
        return None
    return (files, contents) if files else None


def _key_maker() -> KeyMaker:
    from reconciler.apply.keymaker import KeyMaker

    return KeyMaker()


@dataclass
class Caches:
    """What a process keeps from one reconcile to the next (the watcher: for weeks).

    `keys`: the verdicts on DKIM key files (kind or mox's error) by file identity, so unchanged
    key files are not parsed again; `maker`: the threads generating new keys, started as soon as
    a plan names them (`prepare`) and handed to the batch (`apply_prepared`), or None to wait
    until apply asks (`plan`); `parsed`: where parsed desired-state files are cached on disk
    (`reconciler.desired.cache`), None for no cache.
    """

    keys: KeyCache = field(default_factory=KeyCache)
    maker: KeyMaker | None = field(default_factory=_key_maker)
    parsed: Path | None = None
    valid: Verdicts = field(default_factory=lambda: Verdicts(None))
    # The domains.conf files this version's writer wrote (so the next write can keep the bytes
    # of what it does not change: `sconf.write_bytes_reusing`).
    written: Verdicts = field(default_factory=lambda: Verdicts(None))

    @classmethod
    def for_cli(cls, cache_dir: Path | None, *, generate: bool) -> Caches:
        """A verb's caches: parsed files, validation verdicts and key files' verdicts in
        `--cache-dir` (else the user's cache dir)."""
        parsed = default_root(cache_dir)
        return cls(keys=StoredKeyCache(parsed.parent.parent / "keys" / parsed.name),
                   maker=_key_maker() if generate else None, parsed=parsed,
                   valid=Verdicts(parsed.parent.parent / "valid" / parsed.name),
                   written=Verdicts(parsed.parent.parent / "written" / parsed.name))

    def parse_cache(self, source: Source) -> ParseCache | None:
        if self.parsed is None:
            return None
        return ParseCache(self.parsed, f"{source.location}//{source.subdir}")

    def close(self) -> None:
        if self.maker is not None:
            self.maker.close()


class Verdicts:
    """The configs (mox.conf and domains.conf, by SHA-256, in one config dir) that validated
    without an error under this version: the live config they stand for can be the base of an
    incremental validation (`validate_dynamic(base=...)`). Recorded after every validated write;
    an empty marker file each, in the cache dir (no cache dir: nothing is known)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _marker(self, paths: ConfigPaths, dynamic_sha256: str) -> Path | None:
        if self.root is None:
            return None
        try:
            static = hashlib.sha256(paths.mox_conf.read_bytes()).hexdigest()
        except OSError:
            return None
        key = f"{os.path.abspath(paths.config_dir)}\0{static}\0{dynamic_sha256}"
        return self.root / hashlib.sha256(key.encode()).hexdigest()

    def known(self, paths: ConfigPaths, dynamic_sha256: str) -> bool:
        marker = self._marker(paths, dynamic_sha256)
        try:
            return marker is not None and os.lstat(marker).st_uid == os.geteuid()
        except OSError:
            return False

    def record(self, paths: ConfigPaths, dynamic_sha256: str) -> None:
        marker = self._marker(paths, dynamic_sha256)
        if marker is None:
            return
        with contextlib.suppress(OSError):
            marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            marker.touch()
            for old in sorted(marker.parent.iterdir(), key=lambda p: p.stat().st_mtime_ns)[:-KEEP_VERDICTS]:
                old.unlink(missing_ok=True)


KEEP_VERDICTS = 64


@dataclass(frozen=True)
class Prepared:
    """Everything a plan was computed from, and the plan."""

    paths: ConfigPaths
    live: LiveConfig | None
    desired: DesiredState
    source: Source | None
    inventory: Inventory
    plan: Plan
    doc: PlanDocument
    static: mc.Static = field(default_factory=mc.Static)
    now: datetime | None = None  # the time the plan was simulated at (key names, policy IDs)
    caches: Caches | None = None
    dns: DNSAccess = field(default_factory=DNSAccess)  # DKIM rotation's resolver and publisher
    rotation: RotationInput = field(default_factory=RotationInput)  # what the plan's DKIM rotation saw


class _PlannedKeys(KeyCache):
    """Key files as they will be after apply: the ones the plan creates exist (of the planned
    kind), the others are read from disk. Lets the plan's result be validated.

    A key file the live config already names that is absent here counts as present (of the kind
    its name says): a plan needs no private keys, so it can be made against a copy of the live
    config without them (`snapshot`, a CI job). Apply validates with the real files.
    """

    def __init__(self, config_dir: Path, new_keys: Mapping[str, str], live_keys: Iterable[str] = (),
                 known: KeyCache | None = None) -> None:
        super().__init__()
        if known is not None:
            self.verdicts = known.verdicts  # shared: what is learnt here serves later runs
        self._new = {config_dir_path(config_dir, p): keygen.ED25519 if kind == keygen.ED25519 else RSA
                     for p, kind in new_keys.items()}
        self._config_dir = config_dir
        self._live_names = live_keys
        self._live: set[Path] | None = None  # made when a key file is missing (rarely: a snapshot)

    def kind(self, path: Path) -> str:
        planned = self._new.get(path)
        if planned is not None:
            return planned
        try:
            return super().kind(path)
        except KeyFileError:
            if self._live is None:
                self._live = {config_dir_path(self._config_dir, p) for p in self._live_names}
            if path in self._live and not path.exists():  # a live key file not copied (a snapshot)
                return keygen.ED25519 if "ed25519" in path.name else RSA
            raise


def check_result(plan: Plan, static: mc.Static, paths: ConfigPaths, live: mc.Dynamic | None = None,
                 keys: KeyCache | None = None, base: mc.Dynamic | None = None,
                 desired: DesiredState | None = None) -> None:
    """Refuse a plan whose result mox would reject (e.g. removing the postmaster account), so
    the reviewer sees it in the plan, not at apply time; each of mox's messages at its cause in
    the desired state. `base`: the live config, when it is known to validate (only what the
    plan changes is checked again on its own)."""
    if plan.empty:
        return
    planned = _PlannedKeys(paths.config_dir, plan.new_keys, used_key_paths(live) if live is not None else (), keys)
    errors = dynamic_errors(static, plan.result, paths.config_dir, keys=planned, base=base)
    if errors and desired is not None:
        raise PlanRejected(errors, desired)
    if errors:
        raise ConfigInvalid(errors, where="the plan's result would be rejected by mox")


def rotating_domains(desired: DesiredState) -> list[str]:
    """Domains whose DKIM keys rotate by policy (`DKIM.Rotation`)."""
    return [n for n, d in desired.Domains.items() if d.DKIM is not None and d.DKIM.Rotation is not None]


def rotation_input(paths: ConfigPaths, live: LiveConfig, desired: DesiredState, dns: DNSAccess, *,
                   recording: bool) -> RotationInput:
    """The rotation's memory, and (when a domain rotates) this run's DNS check and the selector
    names key files already use."""
    memory = read_memory(paths.config_dir)
    rotating = rotating_domains(desired)
    if not rotating or is_snapshot(paths):  # a snapshot (CI) has no keys to check, and nothing advances
        return RotationInput(memory, recording=recording)
    server, problem = dns.server()
    answers = check_rotating(live, rotating, memory, server, problem)
    from reconciler.apply.keyfiles import used_selector_names

    return RotationInput(memory, answers, used_selector_names(paths.config_dir), recording)


def _with_records(doc: PlanDocument, live: LiveConfig, plan: Plan, dns: DNSAccess) -> PlanDocument:
    """The plan document with each rotating domain's DKIM records to publish and to delete."""
    infos = []
    for info, st in zip(doc.dkim_rotation, plan.rotations, strict=True):
        add, delete = zone_lines(live, st)
        published_by = dns.publisher.describe() if dns.publisher is not None else None
        infos.append(info.model_copy(update={"publish": add, "unpublish": delete, "published_by": published_by}))
    return doc.model_copy(update={"dkim_rotation": infos})


def _password_statuses(paths: ConfigPaths, desired: DesiredState, *, snapshot: bool = False,
                       ) -> dict[str, PasswordStatus]:
    """What the reconciler knows of each desired account's password (its password book)."""
    with_password = {name for name, a in desired.Accounts.items() if a.Password is not None}
    if snapshot:  # no secrets, no digests: only a new account shows its password step
        return dict.fromkeys(with_password, PasswordStatus.SAME)
    return password_statuses(desired, read_password_book(paths.config_dir)) if with_password else {}


def prepare(paths: ConfigPaths, source: Source, *, now: datetime | None = None,
            caches: Caches | None = None, domains: Iterable[str] | None = None, dns: DNSAccess | None = None,
            recording: bool = False, memo: PlanMemo | None = None) -> Prepared:
    """Read everything and plan (no writes); the plan's result is validated as mox would.
    `domains` (--domain): only operations on those domains and their addresses and aliases.

    With `caches` (an apply), the new keys the plan names start being generated at once, while
    the result is validated and the plan shown. DKIM rotation checks DNS for its domains here;
    `recording`: the run will keep what it saw (apply, watch), so a gap in the sightings restarts
    the wait; a plan looks ahead without it. `memo`: a plan without operations is remembered
    there (`reconciler.planmemo`)."""
    before = memo.before(paths) if memo is not None else None
    desired = load_desired(source.path, source.root, caches.parse_cache(source) if caches is not None else None)
    snapshot = is_snapshot(paths)
    if snapshot:  # a copy of the live config without secrets (CI): nothing to compare them with
        leave_unread(desired)
    else:
        read_secrets(desired)
    maker = caches.maker if caches is not None and domains is None else None
    live = read_live(paths, on_read=(lambda data: prefetch_new_domain_keys(
        maker, desired, sconf.entry_names(data, "Domains"), at_most=EARLY_KEYS)) if maker is not None else None)
    if maker is not None:  # the names as parsed: the first guess made exact
        prefetch_new_domain_keys(maker, desired, live.dynamic.Domains)
    inventory = read_inventory(paths.config_dir)
    data_dir = paths.data_dir(live.static)
    now = now or now_local()
    dns = dns or DNSAccess()
    rotation = rotation_input(paths, live, desired, dns, recording=recording)
    dirs = account_dirs(data_dir)
    plan = make_plan(PlanInput(desired, live.static, live.dynamic, inventory, now, data_dir, dirs,
                               _password_statuses(paths, desired, snapshot=snapshot), _scope(domains), rotation))
    if caches is not None and caches.maker is not None:
        caches.maker.start(plan.key_requests)
    if caches is not None:
        base = live.dynamic if caches.valid.known(paths, live.digest) else None
        check_result(plan, live.static, paths, live.dynamic, caches.keys, base, desired)
        if isinstance(caches.keys, StoredKeyCache):
            caches.keys.save()
    else:
        check_result(plan, live.static, paths, live.dynamic, desired=desired)
    doc = plan_document(plan, source=source, live_path=str(paths.domains_conf),
                        live_digest=live.digest, desired_digest=desired_digest(source.path, desired=desired),
                        created=now)
    if plan.rotations:
        doc = _with_records(doc, live, plan, dns)
    elif memo is not None:
        memo.record(before, paths, source, domains, desired=desired, live_digest=live.digest, data_dir=data_dir,
                    account_dirs=dirs, doc=doc)
    return Prepared(paths, live, desired, source, inventory, plan, doc, live.static, now, caches, dns, rotation)


# Keys started on the names found in domains.conf's bytes, before it is parsed: about what the
# key threads make while 10,000 domains are parsed, and a bound on what a wrong guess costs (a
# hand-written file whose layout hides its domains from the scan).
EARLY_KEYS = 64


def prefetch_new_domain_keys(maker: KeyMaker, desired: DesiredState, live_domains: Collection[str], *,
                             at_most: int | None = None) -> None:
    """Start the keys of the domains the plan will add before it is made: each DomainAdd makes
    two RSA-2048 keys (`mox.admin`), and at 1,000 domains and more parsing domains.conf and
    planning take seconds that the key threads can use. The plan's own requests take these keys
    (`KeyMaker.prefetch`); a `--domain` plan prefetches none. Called first with the names found
    in domains.conf's bytes (`at_most` EARLY_KEYS), then with the parsed ones (exact: a surplus
    is cancelled)."""
    known = set(live_domains)
    keys = len(DOMAIN_ADD_SELECTORS) * sum(1 for name in desired.Domains if name not in known)
    maker.prefetch(keygen.RSA2048, keys if at_most is None else min(keys, at_most))


def _scope(domains: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(domains) if domains is not None else None


def _static_for_base_ref(paths: ConfigPaths) -> mc.Static:
    """mox.conf when --config points at one (a snapshot), else a neutral one."""
    try:
        return read_static(paths)
    except LiveConfigError:
        return mc.Static(Hostname="mail.invalid", Postmaster=mc.Postmaster("postmaster", "Postmaster"))


def _plan_from_base(paths: ConfigPaths, static: mc.Static, base: DesiredState, head: DesiredState,
                    source: Source, base_ref: str, when: datetime,
                    domains: Iterable[str] | None = None) -> Prepared:
    """The plan from the desired state `base` (taken as the live config, everything in it
    owned) to `head`. A pull-request job has no access to the server's secrets: none is read."""
    for state in (base, head):
        leave_unread(state)
    base_live = base.to_dynamic(static, None, when)
    inventory = Inventory.of([*map(ObjectRef.domain, base.Domains), *map(ObjectRef.account, base.Accounts)])
    # Only a reference that changed is known to change a password here (the secrets are not read).
    passwords = {name: PasswordStatus.SAME for name, a in head.Accounts.items()
                 if a.Password is not None and name in base.Accounts and base.Accounts[name].Password == a.Password}
    plan = make_plan(PlanInput(head, static, base_live, inventory, when, passwords=passwords, domains=_scope(domains)))
    doc = plan_document(plan, source=source, live_path=f"(desired state at {base_ref})",
                        live_digest=hashlib.sha256(base_ref.encode()).hexdigest(),
                        desired_digest=desired_digest(source.path, desired=head), base_ref=base_ref,
                        created=when)
    return Prepared(paths, None, head, source, inventory, plan, doc, static)


def prepare_base_ref(paths: ConfigPaths, source: Source, base_ref: str, *, now: datetime | None = None,
                     domains: Iterable[str] | None = None) -> Prepared:
    """Plan the change from the desired state at `base_ref` to the one at the checkout.

    For pull-request jobs that cannot reach the live server: the desired state at the base is
    taken as the live config (everything in it owned), so the plan shows what merging changes.
    mox.conf is read when --config points at one (a snapshot), else a neutral one is assumed.
    """
    with materialize_source(source, base_ref) as at_base:
        base = load_desired(at_base.path, at_base.root)
    head = load_desired(source.path, source.root)
    return _plan_from_base(paths, _static_for_base_ref(paths), base, head, source, base_ref, now or now_local(),
                           domains)


@dataclass(frozen=True)
class InstancePlan:
    """One instance of a fleet in a pull-request plan: its plan from the base (None: the
    instance's directory is gone at the checkout), and whether it is new."""

    instance: Instance
    prepared: Prepared | None
    added: bool


def _instance_source(source: Source, inst: Instance) -> Source:
    subdir = str(PurePosixPath(source.subdir, inst.subdir)) if source.subdir else inst.subdir
    return dataclasses.replace(source, path=source.path / inst.subdir, subdir=subdir)


def prepare_fleet(paths: ConfigPaths, source: Source, base_ref: str, instances_dir: str = INSTANCES_DIR, *,
                  now: datetime | None = None) -> list[InstancePlan]:
    """`prepare_base_ref` for every instance of a fleet repository (SOURCE/instances/*, at the
    checkout or at the base): what merging changes on each mox server, shared files included."""
    when = now or now_local()
    static = _static_for_base_ref(paths)
    out = []
    with materialize_source(source, base_ref) as at_base:
        head = {i.name: i for i in find_instances(source.path, instances_dir, must_exist=False)}
        base = {i.name: i for i in find_instances(at_base.path, instances_dir, must_exist=False)}
        if not head and not base:
            raise ReconcilerError(f"{source.path / instances_dir}: no instance directories, at the checkout "
                                  f"or at {base_ref}")
        for name in sorted(head.keys() | base.keys()):
            inst = head.get(name) or base[name]
            if name not in head:
                out.append(InstancePlan(inst, None, added=False))
                continue
            was = load_desired(at_base.path / inst.subdir, at_base.root) if name in base else DesiredState()
            src = _instance_source(source, inst)
            now_state = load_desired(src.path, src.root)
            out.append(InstancePlan(inst, _plan_from_base(paths, static, was, now_state, src, base_ref, when),
                                    added=name not in base))
    return out


@dataclass(frozen=True)
class PlanRecords:
    """The DNS records a plan's created or changed domains need, and what could not be computed."""

    reports: list[Report]
    notes: list[str]


_KEY_UNREADABLE: tuple[type[Exception], ...] = (*REPORTED, OSError, ValueError)
BASE_REF_NO_RECORDS = ("DNS records are left out: a --base-ref plan has no live config (no mail host, no DKIM "
                       "keys); plan against the live config or a `snapshot` of it to see them.")


def plan_records(prepared: Prepared) -> PlanRecords:
    """DNS records the created or changed domains will need. Keys that exist are read; where a
    private key is not here (a snapshot), its public key comes from the last report of the
    domain, else the record is marked as not computed."""
    plan = prepared.plan
    if prepared.live is None:
        return PlanRecords([], [BASE_REF_NO_RECORDS] if plan.changed_domains() else [])
    if not plan.changed_domains():
        return PlanRecords([], [])  # no records to show, so nothing to say about what they leave out
    paths = prepared.paths
    notes: list[str] = []
    try:
        host_keys = load_host_keys(paths, prepared.static)
    except RecordsError as e:
        host_keys = HostKeys()
        notes.append(f"DANE TLSA records left out: the mail host's keys cannot be read here ({e}).")
    reports = []
    for name in plan.changed_domains():
        conf = plan.result.Domains[name]
        keys: dict[str, Any] = {}
        unknown: list[str] = []
        live_domain = prepared.live.dynamic.Domains.get(name)
        last: dict[str, Any] | None = None
        for sel, s in (conf.DKIM.Selectors.items() if live_domain is not None else ()):
            have = live_domain.DKIM.Selectors.get(sel) if live_domain is not None else None
            if have is None or have.PrivateKeyFile != s.PrivateKeyFile:
                continue  # generated at apply
            try:
                keys[sel] = load_dkim_private_key(paths.resolve(s.PrivateKeyFile)).public_key()
                continue
            except _KEY_UNREADABLE:
                pass
            if last is None:
                last = dict(dkim_keys_from_report(reports_dir_default(paths) / f"{_ascii(name)}.json", name))
            if sel in last:
                keys[sel] = last[sel]
            else:
                unknown.append(sel)
        if unknown:
            notes.append(f"{name}: the DKIM public key of selector{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)} is not computed (no private key in this config dir, no earlier "
                         "report).")
        reports.append(records_for_plan(name, conf, prepared.static, dkim=keys, domains=plan.result.Domains,
                                        host_keys=host_keys, not_computed=unknown))
    return PlanRecords(reports, notes)


def plan_reports(prepared: Prepared) -> list[Report]:
    """The records of `plan_records`."""
    return plan_records(prepared).reports


def plan_dns_sections(prepared: Prepared) -> tuple[list[DNSSection], list[str]]:
    """The records of `plan_records` as the Markdown renderer shows them (zone text per domain),
    and notes on what was left out."""
    records = plan_records(prepared)
    return ([DNSSection(rep.domain.name(), sum(r.publish for r in rep.records), render_zone([rep]))
             for rep in records.reports], records.notes)


@dataclass(frozen=True)
class Outcome:
    """What an apply did, and whether the running mox holds it."""

    doc: PlanDocument
    applied: Applied  # its rounds (locked batches) and the confirmation of the last one
    reports: tuple[Path, ...]
    # Domains no longer hosted whose reports were removed: the records to delete from DNS.
    records_to_delete: Mapping[str, list[str]] = field(default_factory=dict)
    passwords: tuple[PasswordResult, ...] = ()  # the SetPassword steps, each set or pending
    rotation_changes: tuple[StageChange, ...] = ()  # DKIM rotation stages that changed in this run
    published: tuple[Published, ...] = ()  # DKIM records sent by RFC 2136 (or why not)

    @property
    def passwords_pending(self) -> tuple[PasswordResult, ...]:
        """Passwords not set (the reason is in each): the run is not done, exit 1."""
        return tuple(r for r in self.passwords if not r.set)

    @property
    def written(self) -> bool:
        return bool(self.applied.writes)

    @property
    def path(self) -> Path:
        """domains.conf."""
        return self.applied.batches[-1].path

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every operation written, over all rounds."""
        return tuple(op for b in self.applied.writes for op in b.operations)

    @property
    def rewrites(self) -> int:
        """Writes after the first: mox (or someone) wrote over the change before mox loaded it."""
        return max(len(self.applied.writes) - 1, 0)

    @property
    def replanned(self) -> bool:
        """domains.conf or the inventory had changed since the plan was made: planned again."""
        return any(b.replanned for b in self.applied.batches)

    @property
    def keys_created(self) -> tuple[str, ...]:
        return tuple(k for b in self.applied.writes for k in b.keys_created)

    @property
    def keys_retired(self) -> tuple[str, ...]:
        return tuple(k for b in self.applied.writes for k in b.keys_retired)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for b in self.applied.writes for n in b.notes))

    @property
    def inventory_changed(self) -> bool:
        return any(b.inventory_changed for b in self.applied.batches)

    @property
    def confirmation(self) -> Confirmation:
        return self.applied.confirmation


@dataclass(frozen=True)
class RotationRun:
    """What a run hands on to keep DKIM rotation going: the statuses and memory the plan made
    (None for a replayed plan file), the rotating domains and where to publish their records."""

    statuses: tuple[RotationStatus, ...] | None = None
    memory: Mapping[str, DomainMemory] | None = None
    domains: tuple[str, ...] = ()
    publisher: Publisher | None = None
    scope: frozenset[str] | None = None  # --domain: the memory of other domains is kept as it is

    @classmethod
    def of(cls, prepared: Prepared) -> RotationRun:
        plan = prepared.plan
        return cls(plan.rotations, plan.rotation_memory, tuple(st.domain for st in plan.rotations),
                   prepared.dns.publisher, plan.domains)

    @classmethod
    def replay(cls, doc: PlanDocument, publisher: Publisher | None) -> RotationRun:
        """A saved plan: its rotating domains; the memory is read again."""
        return cls(None, None, tuple(info.domain for info in doc.dkim_rotation), publisher)


def keep_rotation(paths: ConfigPaths, run: RotationRun, now: datetime,
                  known: Snapshot | None = None) -> tuple[list[StageChange], list[Published]]:
    """After a run: keep the rotation memory (under the config lock) with the applied selectors
    folded in, then publish the rotating domains' DKIM records when publishing is configured.
    `known`: domains.conf as the run left it (the last batch's), taken while the file still holds
    it instead of being read and parsed again (seconds at 10,000 domains, on every run once a
    rotation memory exists)."""
    statuses = run.statuses
    memory = run.memory
    if statuses is None:
        memory = read_memory(paths.config_dir)
    if not statuses and not memory and not memory_path(paths.config_dir).exists():
        return [], []
    from reconciler.apply.writer import config_lock

    live: LiveConfig | None = None
    with config_lock(paths.config_dir):
        if known is not None and _still(known):
            dynamic = known.dynamic
        else:
            live = read_live(paths)
            dynamic = live.dynamic
        kept, changes = settle(memory or {}, statuses, dynamic, now)
        if run.scope is not None:  # a plan limited to some domains says nothing about the others
            outside = {d: m for d, m in read_memory(paths.config_dir).items() if d not in run.scope}
            kept = {**outside, **kept}
        write_memory(paths.config_dir, kept)
    for change in changes:
        log.info("%s", change.message())
    for st in statuses or ():
        for problem in st.problems:
            log.error("DKIM rotation of %s: %s", st.domain, problem)
    published: list[Published] = []
    if run.publisher is not None and run.domains:
        published = publish_rotation(live or read_live(paths), run.domains, kept, run.publisher)
        for p in published:
            (log.info if p.ok else log.error)("DKIM rotation of %s: %s", p.domain, p.text)
    return changes, published


def _still(state: Snapshot) -> bool:
    """domains.conf is still the file of `state` (`writer.holds`; unreadable counts as not)."""
    from reconciler.apply.writer import holds

    try:
        return holds(state)
    except OSError:
        return False


def check_safety(doc: PlanDocument, *, force: bool) -> None:
    """Refuse a plan that needs --force (from the document's own numbers), unless forced."""
    require_safe(doc.safety_problem(), force=force)


def _validator(caches: Caches, base: tuple[mc.Static, mc.Dynamic] | None) -> Validator:
    """The batch's validation: incremental against `base` (a config that validated under that
    mox.conf: the plan's checked result) when mox.conf is still the same, with the shared keys.
    The plan's result itself (domains.conf unchanged since the plan) needs only its key files,
    which exist now, checked again (`key_file_errors`)."""

    def validate(static: mc.Static, dynamic: mc.Dynamic, config_dir: Path) -> None:
        known = base[1] if base is not None and base[0] == static else None
        if known is not None and dynamic == known:
            errors = key_file_errors(static, dynamic, config_dir, keys=caches.keys)
            if errors:
                raise ConfigInvalid(errors)
            return
        require_valid(static, dynamic, config_dir, keys=caches.keys, base=known)

    return validate


def check_reports_dir(shared: SharedDir, out: Path, first: str) -> None:
    """The reports dir can be written (or created), checked before domains.conf is written: an
    apply must not write the config and then fail on its reports. A link planted in its place
    is refused too. `first`: the first file the apply writes there (named in the message)."""
    existing = out
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        why = "not a directory" if existing == out else f"cannot be created: {existing} is not a directory"
        raise ReconcilerError(f"reports dir {out}: {why}; nothing was written (give --reports-dir a directory "
                              "this user can write)")
    if not os.access(existing, os.W_OK | os.X_OK):
        inside = out / first if existing == out else existing / out.relative_to(existing).parts[0]
        raise permission_problem(inside, shared.owner, creating=True)
    try:
        shared.names(out)
    except OSError as e:
        raise ReconcilerError(f"reports dir {out}: {e.strerror or e}; nothing was written") from None


class _Replanner:
    """The writes of a prepared plan (a `PlanFor`): its operations while domains.conf and the
    inventory are what it was made from; otherwise a new plan of the same desired state against
    them (another writer got there first, or mox wrote over the change), checked for safety again."""

    def __init__(self, prepared: Prepared, force: bool) -> None:
        self.prepared = prepared
        self.force = force
        self.changed_domains = list(prepared.doc.changed_domains)
        self.passwords = _password_steps(prepared.plan.operations)
        commit = prepared.doc.source.commit if prepared.doc.source is not None else None
        self.commit = commit.model_dump(mode="json") if commit is not None else None

    def __call__(self, snap: Snapshot, inventory: Inventory) -> Work:
        from reconciler.apply.batch import Work

        p = self.prepared
        if p.live is not None and snap.digest == p.live.digest and inventory == p.inventory:
            ops, described = _config_ops(p.plan.operations, [s.description() for s in p.plan.steps])
            return Work(ops, Inventory(p.plan.inventory_after), self.commit, p.now, descriptions=described)
        plan = replan(p.paths, p.desired, p.static, snap.dynamic, inventory, now_local(), p.plan.domains,
                      p.rotation)
        plan.check_safety(force=self.force)
        self.changed_domains += [d for d in plan.changed_domains() if d not in self.changed_domains]
        log.info("apply: %s or the inventory changed since the plan was made; planned again: %s",
                 p.paths.domains_conf, plan.summary())
        # No `now`: the batch's clock names new key files (a new plan has no earlier names to keep).
        ops, described = _config_ops(plan.operations, [s.description() for s in plan.steps])
        return Work(ops, Inventory(plan.inventory_after), self.commit, replanned=True, descriptions=described)


def replan(paths: ConfigPaths, desired: DesiredState, static: mc.Static, live: mc.Dynamic, inventory: Inventory,
           now: datetime, domains: Iterable[str] | None = None, rotation: RotationInput | None = None) -> Plan:
    """The plan of `desired` against `live` and `inventory` as they are under the lock (limited
    to `domains`, as the plan it replaces: --domain), with what the first plan's DKIM rotation
    saw (its memory, the DNS check; default: the memory as it is, no DNS check)."""
    data_dir = paths.data_dir(static)
    rotation = rotation or RotationInput(read_memory(paths.config_dir), recording=False)
    return make_plan(PlanInput(desired, static, live, inventory, now, data_dir, account_dirs(data_dir),
                               passwords=_password_statuses(paths, desired), domains=_scope(domains),
                               rotation=rotation))


def _password_steps(ops: Sequence[Operation]) -> tuple[SetPassword, ...]:
    return tuple(op for op in ops if isinstance(op, SetPassword))


def _config_ops(ops: Sequence[Operation], described: Sequence[str]) -> tuple[tuple[Operation, ...], tuple[str, ...]]:
    """The operations that write domains.conf (and their descriptions, when given one each): the
    passwords are set through mox's control socket after mox holds the config (`set_passwords`)."""
    keep = [i for i, op in enumerate(ops) if not isinstance(op, SetPassword)]
    return (tuple(ops[i] for i in keep),
            tuple(described[i] for i in keep) if len(described) == len(ops) else ())


class _Reviewed:
    """The writes of a saved plan (`apply --plan`): exactly its operations, on the domains.conf it
    was made against. After mox wrote over them, they are planned again from the plan's (checked)
    source against mox's version, and only operations the plan has may be written."""

    def __init__(self, paths: ConfigPaths, doc: PlanDocument, ops: tuple[Operation, ...],
                 source: Source | None, static: mc.Static) -> None:
        self.paths = paths
        self.doc = doc
        self.ops = ops
        self.passwords = _password_steps(ops)
        self.source = source
        self.static = static
        self.changed_domains = list(doc.changed_domains)
        self.written = False
        commit = doc.source.commit if doc.source is not None else None
        self.commit = commit.model_dump(mode="json") if commit is not None else None

    def __call__(self, snap: Snapshot, inventory: Inventory) -> Work:
        from reconciler.apply.batch import Work
        from reconciler.apply.confirm import LoadNotConfirmed

        doc = self.doc
        if snap.digest == doc.live.sha256:
            self.written = True
            deleted = {c.object for c in doc.changes if c.action is Action.DELETE}
            after = (inventory.objects | set(doc.inventory_after)) - deleted
            ops, described = _config_ops(self.ops, [c.description for c in doc.changes]
                                         if self.ops == doc.operations else [])
            return Work(ops, Inventory(frozenset(after)), self.commit, descriptions=described)
        if not self.written:
            raise StalePlan(f"stale plan: {self.paths.domains_conf} changed since the plan was checked; "
                            "make a new plan")
        if self.source is None:
            raise LoadNotConfirmed(f"{self.paths.domains_conf} was written over before mox loaded the plan, and "
                               "the plan names no source to plan it again from; lost: "
                               + "; ".join(op.describe() for op in self.ops))
        desired = load_desired(self.source.path, self.source.root)
        read_secrets(desired)
        plan = replan(self.paths, desired, self.static, snap.dynamic, inventory, now_local(), doc.domains)
        reviewed = {_op_key(op) for op in self.ops}
        config_ops, described = _config_ops(plan.operations, [s.description() for s in plan.steps])
        extra = [op.describe() for op in config_ops if _op_key(op) not in reviewed]
        if extra:
            raise LoadNotConfirmed(f"{self.paths.domains_conf} was written over before mox loaded the plan, and "
                               f"applying it again on top would need operations the plan does not have: "
                               f"{'; '.join(extra)}; make a new plan")
        self.changed_domains += [d for d in plan.changed_domains() if d not in self.changed_domains]
        return Work(config_ops, Inventory(plan.inventory_after), self.commit, replanned=True, descriptions=described)


def _op_key(op: Operation) -> str:
    return json.dumps(op.to_json(), sort_keys=True)


def _probe_domains(doc: PlanDocument) -> list[str]:
    """Domains whose presence in mox's memory shows it loaded the change: created, changed, removed."""
    removed = [c.object.name for c in doc.changes if c.action is Action.DELETE and c.object.kind is ObjectKind.DOMAIN]
    return list(dict.fromkeys([*doc.changed_domains, *removed]))


def _finish(paths: ConfigPaths, plan_for: _Replanner | _Reviewed | _Recalled, doc: PlanDocument, static: mc.Static, *,
            force: bool, reports_dir: Path | None, progress: Progress | None = None, ctl: Ctl | None = None,
            caches: Caches | None = None, base: tuple[mc.Static, mc.Dynamic] | None = None,
            now: datetime | None = None, rotation: RotationRun | None = None,
            known: Sequence[tuple[bytes, mc.Dynamic]] = ()) -> Outcome:
    from reconciler.apply.batch import default_validator
    from reconciler.apply.confirm import LoadNotConfirmed
    from reconciler.apply.passwords import forget_accounts, set_passwords
    from reconciler.apply.rounds import apply_until_loaded

    ours = [hashlib.sha256(data).hexdigest() for data, _ in known]
    written_by_us = [d for d in ours if caches is not None and caches.written.known(paths, d)]
    check_safety(doc, force=force)
    shared = SharedDir.of(paths.domains_conf)
    out = reports_dir or reports_dir_default(paths)
    domains = list(doc.changed_domains)
    check_reports_dir(shared, out, f"{_ascii(domains[0])}.txt" if domains else APPLY_REPORT)
    # Every password is read before anything is written: a missing secret stops the apply here.
    steps = [(op, password_text(op)) for op in plan_for.passwords]
    # The DNS records of the changed domains are computed from the config about to be written
    # (its key files exist by then), inside the batch's validation: a config whose records cannot
    # be made is refused before the write, so an apply never writes domains.conf and then fails.
    reports: list[Report] = []
    validate = _validator(caches, base) if caches is not None else default_validator

    def validate_and_make_records(static: mc.Static, dynamic: mc.Dynamic, config_dir: Path) -> None:
        validate(static, dynamic, config_dir)
        hk = load_host_keys(paths, static)
        domains = [d for d in plan_for.changed_domains if d in dynamic.Domains]
        reports[:] = [for_config(paths, static, dynamic, name, host_keys=hk) for name in domains]

    ctl = ctl or Ctl(ctl_path(paths, static.DataDir))
    try:
        applied = apply_until_loaded(paths, plan_for, ctl, domains=_probe_domains(doc), progress=progress,
                                     validator=validate_and_make_records,
                                     keys=caches.maker if caches is not None else None, known=known,
                                     written_by_us=written_by_us, accepted=_accepted(paths, caches, validate))
    except LoadNotConfirmed as e:
        batches: tuple[BatchResult, ...] = tuple(getattr(e, "batches", ()))
        writes = tuple(b for b in batches if b.written)
        _record_valid(caches, paths, writes)
        if writes:  # the file was written: the artifacts say so, and that mox was not seen to load it
            _reports(paths, doc, writes, batches[-1].state, reports, out, shared, str(e))
        raise
    _record_valid(caches, paths, applied.writes)
    # domains.conf as mox holds it (or as written, when mox is not running): the config the last
    # batch wrote or read, not read and parsed again (at 10,000 domains that is seconds).
    state = applied.batches[-1].state
    if not applied.writes and not steps:
        return Outcome(doc, applied, (), **_keep_rotation(paths, rotation, now, state))
    # The passwords once mox holds the config (its accounts exist there), outside the config lock.
    passwords = tuple(set_passwords(paths, steps, accounts_after=set(state.dynamic.Accounts)))
    removed = any(isinstance(op, AccountRemove) for b in applied.writes for op in b.operations)
    if not steps and removed and passwords_path(paths.config_dir).exists():
        forget_accounts(paths, set(state.dynamic.Accounts))
    written, stale = _reports(paths, doc, applied.writes, state, reports, out, shared, applied.confirmation,
                              passwords)
    return Outcome(doc, applied, tuple(written), stale, passwords, **_keep_rotation(paths, rotation, now, state))


def _keep_rotation(paths: ConfigPaths, rotation: RotationRun | None, now: datetime | None,
                   state: Snapshot) -> dict[str, Any]:
    """keep_rotation's result as Outcome fields."""
    changes, published = keep_rotation(paths, rotation or RotationRun(), now or now_local(), state)
    return {"rotation_changes": tuple(changes), "published": tuple(published)}


def _accepted(paths: ConfigPaths, caches: Caches | None, validate: Validator) -> Accepted:
    """The file an apply's write replaced validates (confirm's early check): a verdict recorded
    for it, or the batch's validation (incremental, with the shared key cache), then recorded."""
    from reconciler.apply.rounds import validates

    check = validates(paths, validate)

    def accepted(snap: Snapshot) -> bool:
        if caches is None:
            return check(snap)
        if caches.valid.known(paths, snap.digest):
            return True
        if not check(snap):
            return False
        caches.valid.record(paths, snap.digest)
        return True

    return accepted


def _record_valid(caches: Caches | None, paths: ConfigPaths, writes: Sequence[BatchResult]) -> None:
    """The configs written were validated (bases for the next incremental validation) and are
    this writer's output (bases for the next write)."""
    if caches is not None:
        for b in writes:
            caches.valid.record(paths, b.sha256)
            caches.written.record(paths, b.sha256)


def _reports(paths: ConfigPaths, doc: PlanDocument, writes: Sequence[BatchResult], state: Snapshot,
             reports: Sequence[Report], out: Path, shared: SharedDir, confirmation: Confirmation | str,
             passwords: tuple[PasswordResult, ...] = ()) -> tuple[list[Path], dict[str, list[str]]]:
    """After a write: the DNS-record reports of the last write (made while validating it), stale
    ones removed; and last-apply.json (also after passwords alone). `state`: domains.conf after
    the apply. Reports are artifacts: written without an fsync each, then their directory synced once."""
    written: list[Path] = []
    stale: dict[str, list[str]] = {}
    if writes:
        if reports:
            written = write_files(out, list(reports), REPORT_FORMATS, shared=shared, sync_dir=False)
        stale = remove_stale_reports(out, [_ascii(d) for d in state.dynamic.Domains], REPORT_FORMATS,
                                     shared=shared, sync_dir=False)
    domains = [r.domain.name() for r in reports] if writes else []
    written.append(_write_apply_report(out, doc, writes, paths, state.digest, written, stale, shared, domains,
                                       confirmation, passwords))
    shared.fsync(out)
    return written, stale


def _ascii(domain: str) -> str:
    """A config's domain key in the ASCII form its report files are named by."""
    try:
        return names.parse_domain(domain).ascii
    except names.ParseError:
        return domain


APPLY_REPORT = "last-apply.json"


def _write_apply_report(out: Path, doc: PlanDocument, writes: Sequence[BatchResult], paths: ConfigPaths,
                        digest_after: str, records: list[Path], to_delete: Mapping[str, list[str]],
                        shared: SharedDir, domains: Sequence[str], confirmation: Confirmation | str,
                        passwords: tuple[PasswordResult, ...] = ()) -> Path:
    """The artifact of an apply: which commit was applied, what was done, the DNS reports,
    whether the running mox loaded it, and the passwords by account and reference, with the reason
    of any not set (never a password)."""
    from reconciler.apply.confirm import Confirmation

    if isinstance(confirmation, Confirmation):
        loaded = {"status": str(confirmation.status), "message": confirmation.message,
                  "waited_seconds": round(confirmation.waited, 3), "at_once": confirmation.at_once}
    else:
        loaded = {"status": "failed", "message": confirmation, "waited_seconds": None, "at_once": None}
    report = {
        "version": 1,
        "time": now_local().isoformat(),
        "source": doc.source.model_dump(mode="json") if doc.source is not None else None,
        "live": {"path": str(paths.domains_conf), "sha256_before": doc.live.sha256,
                 "sha256_after": digest_after},
        "summary": doc.summary.text,
        "operations": [op.describe() for b in writes for op in b.operations],
        "writes": len(writes),
        "confirmation": loaded,
        "keys_created": [k for b in writes for k in b.keys_created],
        "keys_retired": [k for b in writes for k in b.keys_retired],
        "notes": list(dict.fromkeys(n for b in writes for n in b.notes)),
        "changed_domains": list(domains),
        "dns_reports": [p.name for p in records],
        "dns_records_to_delete": {d: list(lines) for d, lines in to_delete.items()},
        "passwords": [r.to_json() for r in passwords],
    }
    path = out / APPLY_REPORT
    if shared.relative(out) is None:
        out.mkdir(parents=True, exist_ok=True)
    shared.write_json(path, report, sync_dir=False, sync_data=False)
    return path


def apply_prepared(prepared: Prepared, *, force: bool = False, reports_dir: Path | None = None,
                   now: datetime | None = None, progress: Progress | None = None, ctl: Ctl | None = None) -> Outcome:
    """Apply a plan of the desired state, planned again under the lock when domains.conf or the
    inventory moved since; returns once the running mox holds it (or is not running)."""
    refuse_snapshot(prepared.paths)
    checked = prepared.plan.result if not prepared.plan.empty else None  # check_result found no error in it
    return _finish(prepared.paths, _Replanner(prepared, force), prepared.doc, prepared.static, force=force,
                   reports_dir=reports_dir, progress=progress, ctl=ctl, caches=prepared.caches,
                   base=(prepared.static, checked) if checked is not None else None, now=now or prepared.now,
                   rotation=RotationRun.of(prepared), known=_parsed(prepared.live))


def _parsed(live: LiveConfig | None) -> tuple[tuple[bytes, mc.Dynamic], ...]:
    """domains.conf as the plan read and parsed it: not parsed again under the lock when unchanged."""
    return ((live.dynamic_bytes, live.dynamic),) if live is not None else ()


class RecalledMoved(Exception):
    """domains.conf or the inventory is no longer what a recalled plan was made from (read under
    the lock): nothing was written; the caller plans again."""


class _Recalled:
    """The writes of a plan recalled from the memo (`reconciler.planmemo`: no operations, no DKIM
    rotation): none, with the inventory it gives, while domains.conf and the inventory are what
    it was made from and gives (so the batch writes nothing at all); otherwise RecalledMoved."""

    def __init__(self, doc: PlanDocument) -> None:
        self.doc = doc
        self.changed_domains: list[str] = []
        self.passwords: tuple[SetPassword, ...] = ()
        self.after = Inventory(frozenset(doc.inventory_after))
        commit = doc.source.commit if doc.source is not None else None
        self.commit = commit.model_dump(mode="json") if commit is not None else None

    def __call__(self, snap: Snapshot, inventory: Inventory) -> Work:
        from reconciler.apply.batch import Work

        if snap.digest != self.doc.live.sha256 or inventory != self.after:
            raise RecalledMoved(f"{snap.path} or the inventory changed since the remembered plan")
        return Work((), self.after, self.commit)


def apply_recalled(paths: ConfigPaths, doc: PlanDocument, *, force: bool = False, reports_dir: Path | None = None,
                   progress: Progress | None = None, caches: Caches | None = None,
                   known: Sequence[tuple[bytes, mc.Dynamic]] = (), publisher: Publisher | None = None,
                   ctl: Ctl | None = None) -> Outcome:
    """The apply of a plan recalled from the memo, as `apply_prepared` does a plan with no
    operations: under the lock domains.conf and the inventory are read (`known`: domains.conf
    bytes already parsed, not parsed again) and found unchanged, nothing is written, the running
    mox is asked whether it holds domains.conf, the rotation memory is kept (a plan without
    rotation has none to keep). RecalledMoved when they changed since the plan was made."""
    refuse_snapshot(paths)
    if doc.changes or doc.dkim_rotation or doc.domains is not None:
        raise ValueError("only a plan with no operations and no DKIM rotation, of every domain, is recalled")
    return _finish(paths, _Recalled(doc), doc, read_static(paths), force=force, reports_dir=reports_dir,
                   progress=progress, ctl=ctl, caches=caches,
                   rotation=RotationRun(statuses=(), memory={}, publisher=publisher), known=known)


def check_fresh(paths: ConfigPaths, doc: PlanDocument, source: str | None = None) -> Source | None:
    """Refuse a saved plan whose live config or source changed since it was made.

    The source is resolved again (`source`, or the location the plan recorded; a remote at the
    same ref, so a branch that moved makes the plan stale) and its commit and files compared.
    """
    if doc.base_ref:
        raise StalePlan("this plan was made with --base-ref (against the desired state, not a live "
                        "config): it cannot be applied")
    read_static(paths)  # mox.conf must be readable, as for the apply
    live = dynamic_digest(paths)
    want = doc.live.sha256
    if live != want:
        raise StalePlan(
            f"stale plan: {paths.domains_conf} changed since the plan was made (sha256 {live[:12]}, "
            f"plan was made against {want[:12]}); make a new plan"
        )
    src = doc.source
    if src is None:
        return None
    location = source or src.location
    commit = src.commit
    try:
        now_src = _resolve_again(src, location)
    except ReconcilerError as e:
        raise StalePlan(f"stale plan: cannot re-read its source {location}: {e}") from None
    if commit is not None and (now_src.commit is None or now_src.commit.sha != commit.sha):
        new = now_src.commit.sha[:12] if now_src.commit is not None else "(none)"
        raise StalePlan(
            f"stale plan: the source moved from commit {commit.sha[:12]} to {new}; "
            "make a new plan"
        )
    digest = doc.desired_digest
    if digest and desired_digest(now_src.path, now_src.root) != digest:
        raise StalePlan("stale plan: the desired-state files changed since the plan was made; make a new plan")
    return now_src


def _resolve_again(src: SourceInfo, location: str) -> Source:
    """The plan's source as it is now: the same location, ref and desired-state directory (the
    plan's subdir is relative to the repository root, a local location may be below it)."""
    if src.remote:
        return resolve_source(location, ref=src.ref, subdir=src.subdir or None)
    here = resolve_source(location, ref=src.ref)
    if here.subdir == src.subdir or not src.subdir or Path(location).is_file():
        return here
    try:
        sub = PurePosixPath(src.subdir).relative_to(here.subdir) if here.subdir else PurePosixPath(src.subdir)
    except ValueError:  # the location is no longer above the plan's directory: compared as it is
        return here
    return resolve_source(location, ref=src.ref, subdir=str(sub))


def apply_plan_doc(paths: ConfigPaths, doc: PlanDocument, *, source: str | None = None,
                   force: bool = False, reports_dir: Path | None = None, now: datetime | None = None,
                   progress: Progress | None = None, publisher: Publisher | None = None,
                   ctl: Ctl | None = None) -> Outcome:
    """`apply --plan FILE` (`doc` from `read_plan_file`): exactly the operations that were
    reviewed, if nothing moved since (`publisher`: where the rotating domains' DKIM records go);
    returns once the running mox holds them."""
    refuse_snapshot(paths)
    checked = check_fresh(paths, doc, source)
    ops = doc.operations
    if doc.has_redacted_secrets():
        ops = _unredacted_ops(paths, doc, source, now)
    static = read_static(paths)
    return _finish(paths, _Reviewed(paths, doc, ops, checked, static), doc, static, force=force,
                   reports_dir=reports_dir, progress=progress, ctl=ctl, now=now,
                   rotation=RotationRun.replay(doc, publisher))


def _unredacted_ops(paths: ConfigPaths, doc: PlanDocument, source: str | None,
                    now: datetime | None) -> tuple[Operation, ...]:
    """The plan file shows secrets (webhook Authorization) as <redacted>; replaying that would
    write "<redacted>" into domains.conf. Re-plan from the (unchanged) source and use its
    operations when they are the reviewed ones (same checksum)."""
    src = doc.source
    location = source or (src.location if src is not None else "")
    if not location:
        raise StalePlan("this plan contains redacted secrets and names no source to read them from; "
                        "apply from the source instead")
    fresh = prepare(paths, _resolve_again(src, location) if src is not None else resolve_source(location), now=now,
                    domains=doc.domains)
    if fresh.doc.checksum != doc.checksum:
        raise StalePlan("stale plan: re-planning from the source (to read redacted secrets) gives other "
                        "operations; make a new plan")
    return fresh.plan.operations

