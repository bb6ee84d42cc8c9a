"""The planner: desired state x live config -> ordered operations. Pure: no I/O, no clock.

`make_plan` first builds the *target*: every domain and account the desired state names, as
the domains.conf entry it stands for (`DesiredState.domain_to_mox` / `account_to_mox`). It
then walks a fixed phase table, emitting operations of mox's primitives and running each one
against a simulated config (the primitives are pure), so every operation is checked against
the config as changed by the ones before it, exactly as the batch will run them. A final
residual pass saves whatever the targeted operations did not reach, so the simulated result
equals the target by construction (checked at the end).

Phases (the order is the dependency order):
  1. accounts and domains that do not exist yet (DomainAdd, AccountAdd)
  2. addresses added or moved between accounts (AddressAdd, AddressRemove of a moved address)
  3. DKIM selectors added (DKIMAdd)
  4. domain and account fields, DKIM settings and Sign (DomainSave, DKIMSave, AccountSave)
  5. aliases (AliasAdd, AliasUpdate, AliasAddressesAdd/Remove, AliasRemove)
  6. addresses removed (AddressRemove)
  7. DKIM selectors removed (DKIMRemove)
  8. accounts removed (AccountRemove, only when stated under Removed.Accounts)
  9. domains removed (DomainRemove: stated under Removed.Domains, or pruned)
 10. global settings (ConfigSave)
 11. passwords (SetPassword: for a new account, or when the secret changed; `passwords`)
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from reconciler.desired.models import DesiredState, Rotation
from reconciler.desired.source import Source
from reconciler.desired.yamlload import dotted
from reconciler.errors import REPORTED, ReconcilerError
from reconciler.mox import config as mc
from reconciler.mox import keygen
from reconciler.mox.admin import (
    AccountAdd,
    AccountRemove,
    AccountSave,
    AddressAdd,
    AddressRemove,
    AliasAdd,
    AliasAddressesAdd,
    AliasAddressesRemove,
    AliasRemove,
    AliasUpdate,
    ConfigSave,
    Context,
    DKIMAdd,
    DKIMRemove,
    DKIMSave,
    DomainAdd,
    DomainRemove,
    DomainSave,
    Operation,
    canonical_key,
    used_key_paths,
)
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.golang import GoSyntaxError, parse_duration
from reconciler.mox.keygen import KeyRequest
from reconciler.mox.names import ParseError, parse_address, parse_domain
from reconciler.plan.document import (
    PLAN_VERSION,
    Action,
    Change,
    LiveInfo,
    OperationSpec,
    PendingStep,
    PlanDocument,
    RotationInfo,
    Safety,
    SelfServiceKept,
    SourceInfo,
    Summary,
    ValueChange,
    checksum_of,
)
from reconciler.plan.explain import locate
from reconciler.plan.inventory import Inventory
from reconciler.plan.objects import CONFIG, ObjectKind, ObjectRef
from reconciler.plan.passwords import PasswordStatus, SetPassword
from reconciler.plan.rotation import RotationInput, RotationStatus, rotate_domain
from reconciler.plan.rotation_memory import DomainMemory
from reconciler.plan.safety import (
    DEFAULT_THRESHOLD,
    BlockedRemoval,
    SafetyProblem,
    SafetyThreshold,
    require_safe,
    safety_problem,
)
from reconciler.plan.selfservice import Kept, keep_owner_fields
from reconciler.plan.values import changed_values

_canon = canonical_key  # the address-index form of a destination key (catchalls as @<name>)


class PlanError(ReconcilerError):
    """The desired state cannot be reached from the live config (says which step fails and why)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One operation of the plan and the object it changes."""

    op: Operation
    object: ObjectRef
    action: Action
    creates: tuple[ObjectRef, ...] = ()  # objects this step creates besides `object` (DomainAdd's account)
    text: str = ""  # replaces the operation's own description where the plan knows better
    values: tuple[ValueChange, ...] = ()  # what it changes, old -> new

    @property
    def destructive(self) -> bool:
        return bool(self.op.destructive) and not self.text

    def description(self) -> str:
        return self.text or self.op.describe()

    def change(self) -> Change:
        """The step as the plan document shows it."""
        return Change(object=self.object, action=self.action, creates=list(self.creates),
                      destructive=self.destructive, description=self.description(), values=list(self.values),
                      operation=OperationSpec.of(self.op))


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered operations plus what a reviewer and the safety check need to know."""

    steps: tuple[Step, ...]
    unmanaged: tuple[ObjectRef, ...]  # live objects neither desired nor in the inventory: left alone
    blocked: tuple[BlockedRemoval, ...]  # removals the desired state implies but does not state
    managed_before: frozenset[ObjectRef]  # owned objects that exist in the live config
    inventory_after: frozenset[ObjectRef]
    result: Dynamic  # the simulated config after applying (key files named at plan time)
    threshold: SafetyThreshold = DEFAULT_THRESHOLD
    new_keys: Mapping[str, str] = field(default_factory=dict)  # key files `result` names that apply creates -> kind
    kept: tuple[Kept, ...] = ()  # self-service fields where mox differs from git and stays as mox has it
    kept_objects: tuple[ObjectRef, ...] = ()  # owned objects that left the desired state, Prune off: they stay
    warnings: tuple[str, ...] = ()  # problems that do not stop the plan (`--strict` makes them errors)
    key_requests: tuple[KeyRequest, ...] = ()  # those keys, as the batch will ask for them (started early)
    domains: frozenset[str] | None = None  # --domain: the plan covers only these domains
    rotations: tuple[RotationStatus, ...] = ()  # the DKIM rotation of each rotating domain
    rotation_memory: Mapping[str, DomainMemory] = field(default_factory=dict)  # to keep after applying

    @property
    def operations(self) -> tuple[Operation, ...]:
        return tuple(s.op for s in self.steps)

    @property
    def empty(self) -> bool:
        """Nothing to apply (kept or blocked objects may still differ: see `differs`)."""
        return not self.steps

    @property
    def differs(self) -> bool:
        """The live config differs from the desired state: operations, kept or blocked objects."""
        return bool(self.steps or self.kept_objects or self.blocked)

    def counts(self) -> dict[str, int]:
        c = {str(a): 0 for a in Action}
        for s in self.steps:
            c[s.action] += 1
        return c

    def objects(self, action: Action | None = None) -> list[ObjectRef]:
        """Objects touched by the plan (each once, in plan order), optionally by action."""
        seen: dict[ObjectRef, Action] = {}
        for s in self.steps:
            for obj, act in ((s.object, s.action), *((c, Action.CREATE) for c in s.creates)):
                prev = seen.get(obj)
                # an object created or deleted in this plan counts as that, not as updated
                if prev is None or prev is Action.UPDATE:
                    seen[obj] = act
        return [o for o, a in seen.items() if action is None or a == action]

    def changed_domains(self) -> list[str]:
        """Domains whose DNS records may change: created or updated (not deleted) domains."""
        return [o.name for o in self.objects() if o.kind is ObjectKind.DOMAIN and o.exists_in(self.result)]

    def summary(self) -> str:
        """The one line a plan ends with; "No changes" only when nothing differs."""
        if not self.differs:
            return "No changes. The live config matches the desired state."
        left = ", ".join(part for part in (
            f"{len(self.kept_objects)} kept (Prune off)" if self.kept_objects else "",
            f"{len(self.blocked)} blocked (removal not stated)" if self.blocked else "") if part)
        if self.empty:
            return f"Nothing to apply, but the live config differs from the desired state: {left}."
        n = len(self.steps)
        return (f"Plan: {len(self.objects(Action.CREATE))} to add, {len(self.objects(Action.UPDATE))} to change, "
                f"{len(self.objects(Action.DELETE))} to remove ({n} operation{'s' if n != 1 else ''})"
                + (f"; {left}." if left else "."))

    def checksum(self) -> str:
        """SHA-256 of the canonical JSON of the operations (what apply --plan replays)."""
        return checksum_of([s.op.to_json() for s in self.steps])

    def touched(self) -> int:
        """How many of the owned objects that exist the plan changes or removes."""
        return sum(o in self.managed_before for o in self.objects())

    def safety(self) -> Safety:
        """The numbers the safety threshold looks at (kept in the plan file)."""
        return Safety.of(len(self.managed_before), self.touched(), self.threshold)

    def safety_problem(self) -> SafetyProblem | None:
        return safety_problem(len(self.managed_before), self.touched(), self.threshold, self.blocked, len(self.steps))

    def check_safety(self, *, force: bool = False) -> None:
        """Refuse (octoDNS-style) plans that change or remove too large a share of owned objects."""
        require_safe(self.safety_problem(), force=force)


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything the planner looks at, as plain data (the CLI gathers it)."""

    desired: DesiredState
    static: Static
    live: Dynamic
    inventory: Inventory = field(default_factory=Inventory)
    now: datetime = field(default_factory=lambda: datetime(2000, 1, 1).astimezone())
    data_dir: Path = Path("data")
    account_dirs: frozenset[str] = frozenset()
    # Per desired account with a Password: what the reconciler knows of it (plan.passwords);
    # an account not listed counts as UNKNOWN (its password is set).
    passwords: Mapping[str, PasswordStatus] = field(default_factory=dict)
    # `--domain D` (as octoDNS's --zone): only operations on these domains and on the addresses
    # and aliases in them; None = everything.
    domains: frozenset[str] | None = None
    rotation: RotationInput = field(default_factory=RotationInput)  # DKIM rotation's memory and DNS check


def make_plan(inp: PlanInput) -> Plan:
    """Compute the plan; raises PlanError when the target cannot be reached (and why)."""
    return _Planner(inp).run()


# ---------------------------------------------------------------------------------------------


_C = TypeVar("_C", mc.Domain, mc.Account)


def _as_live(target: _C, live: _C | None) -> _C:
    """The live object itself where the target equals it: later comparisons of the two are then
    by identity (`_Planner.settled_domain`), and the plan's result shares the live objects."""
    return live if live is not None and live == target else target


_KEY_KINDS = {"rsa": keygen.RSA2048, "ed25519": keygen.ED25519}


def _lifetime(expiration: str) -> Any:
    try:
        return parse_duration(expiration) if expiration else parse_duration("0s")
    except GoSyntaxError:
        return parse_duration("0s")


class _Planner:
    def __init__(self, inp: PlanInput) -> None:
        self.inp = inp
        self.desired = inp.desired
        self.ctx = Context(inp.static, inp.now, inp.data_dir, inp.account_dirs)
        self.sim = inp.live
        self.steps: list[Step] = []
        self.born_keys: dict[str, KeyRequest] = {}  # key files that operations of this plan create
        self.new_selectors: dict[str, list[str]] = {}  # existing domain -> selectors DKIMAdd creates
        self.warnings: list[tuple[tuple[str, int, int], str]] = []  # (where, text), sorted by where
        d = self.desired
        memo: dict[int, Any] = {}  # equal sub-models the loader shares convert once (tomox.Memo)
        self.target_accounts: dict[str, mc.Account] = {
            n: _as_live(d.account_to_mox(n, memo), inp.live.Accounts.get(n)) for n in sorted(d.Accounts)}
        self.kept: list[Kept] = []
        canon = functools.partial(canonical_key, inp.live)
        for name, target in self.target_accounts.items():
            live = inp.live.Accounts.get(name)
            if live is not None and (d.Accounts[name].SelfService or d.Policy.SelfService) == "keep":
                self.target_accounts[name], kept = keep_owner_fields(name, target, live, canon)
                self.kept += kept
        self.scope = _scope(inp.domains, d, inp.live) if inp.domains is not None else None
        self.target_domains: dict[str, mc.Domain] = {
            n: _as_live(d.domain_to_mox(n, inp.static, inp.live.Domains.get(n), inp.now, memo),
                        inp.live.Domains.get(n))
            for n in sorted(d.Domains) if self.in_scope(n)
        }
        if self.scope is not None:
            self.target_accounts = self._scoped_accounts()
            self.kept = [k for k in self.kept if k.field.startswith("Destinations[")
                         and self._key_in_scope(k.field[len("Destinations["):].split("]", 1)[0])]
        self.rotations: list[RotationStatus] = []
        self.rotation_memory: dict[str, DomainMemory] = {}
        self.new_algorithms: dict[tuple[str, str], str] = {}  # (domain, selector) -> algorithm of a rotation's key
        for n, dd in sorted(d.Domains.items()):
            if self.in_scope(n) and dd.DKIM is not None and dd.DKIM.Rotation is not None:
                self.rotate(n, dd.DKIM.Rotation)

    def rotate(self, name: str, policy: Rotation) -> None:
        """The rotation's DKIM replaces the target's (docs/dkim-rotation.md)."""
        inp = self.inp
        step = rotate_domain(name, policy, inp.live.Domains.get(name), inp.rotation, inp.now)
        self.target_domains[name] = replace(self.target_domains[name], DKIM=step.dkim)
        self.rotations.append(step.status)
        self.rotation_memory[name] = step.memory
        self.new_algorithms.update(((name, sel), alg) for sel, alg in step.algorithms.items())

    def settled_domain(self, name: str) -> bool:
        """The simulated config holds the very object the target is (the live one, unchanged by
        the plan so far): no phase has anything to do for this domain."""
        return self.sim.Domains.get(name) is self.target_domains[name]

    def settled_account(self, name: str) -> bool:
        """As `settled_domain`, for an account whose addresses are distinct in their canonical
        form (where two are one address, the phases decide which stays)."""
        target = self.target_accounts[name]
        if self.sim.Accounts.get(name) is not target:
            return False
        keys = target.Destinations
        return len({_canon(self.sim, k) for k in keys}) == len(keys)

    def in_scope(self, domain: str) -> bool:
        return self.scope is None or domain in self.scope

    def _key_in_scope(self, key: str) -> bool:
        """A destination key (address or @catchall) in a domain of the scope."""
        try:
            dom = parse_domain(key[1:]) if key.startswith("@") else parse_address(key).domain
        except ParseError:
            return False
        return dom.name() in (self.scope or ())

    def _scoped_accounts(self) -> dict[str, mc.Account]:
        """With --domain: an existing account as it is, but for its addresses in the scope's
        domains (as desired); a new one only when it has an address there, with only those."""
        out: dict[str, mc.Account] = {}
        for name, target in self.target_accounts.items():
            ours = {k: v for k, v in target.Destinations.items() if self._key_in_scope(k)}
            live = self.inp.live.Accounts.get(name)
            if live is not None:
                theirs = {k: v for k, v in live.Destinations.items() if not self._key_in_scope(k)}
                out[name] = replace(live, Destinations={**theirs, **ours})
            elif ours:
                out[name] = replace(target, Destinations=ours)
        return out

    # -- bookkeeping ------------------------------------------------------------------------------

    def do(self, op: Operation, obj: ObjectRef, action: Action, *, creates: tuple[ObjectRef, ...] = (),
           text: str = "") -> None:
        try:
            eff = op.apply(self.sim, self.ctx)
        except REPORTED as e:
            message = f"cannot plan step {len(self.steps) + 1} ({op.describe()}): {e}"
            raise PlanError(locate(message, self.desired, self._path_of(op, obj))[1]) from None
        values = changed_values(op, obj, action, self.sim, eff.dynamic)
        self.sim = eff.dynamic
        self.born_keys.update((k.path, k) for k in eff.new_keys)
        self.steps.append(Step(op, obj, action, creates, text, values))

    def warn(self, path: tuple[str | int, ...], message: str) -> None:
        """A warning at the place the desired state says it (`file:line:col: field: message`)."""
        where = self.desired.where(*path)
        text = f"{where}: {dotted(path)}: {message}" if where else f"{dotted(path)}: {message}"
        self.warnings.append(((where.file, where.line, where.col) if where else ("", 0, 0), text))

    def _path_of(self, op: Operation, obj: ObjectRef) -> tuple[str | int, ...]:
        """Where the desired state asks for `op`: a removal's entry under Removed (or
        Policy.Prune), else the object's definition."""
        if isinstance(op, AccountRemove | DomainRemove):
            kind = "Accounts" if isinstance(op, AccountRemove) else "Domains"
            names = getattr(self.desired.Removed, kind)
            return ("Removed", kind, names.index(obj.name)) if obj.name in names else ("Policy", "Prune")
        if obj.kind is ObjectKind.CONFIG:
            return ("Routes",) if isinstance(op, ConfigSave) and "Routes" in op.fields else ("MonitorDNSBLs",)
        return ("Domains" if obj.kind is ObjectKind.DOMAIN else "Accounts", obj.name)

    # -- the phases -------------------------------------------------------------------------------

    def run(self) -> Plan:
        live = self.inp.live
        inv = self.inp.inventory
        desired = self.desired
        removed_domains = set(desired.Removed.Domains)
        removed_accounts = set(desired.Removed.Accounts)
        prune = desired.Policy.Prune

        unmanaged: list[ObjectRef] = []
        blocked: list[BlockedRemoval] = []
        kept: list[ObjectRef] = []
        drop_domains: list[str] = []
        drop_accounts: list[str] = []
        for name in sorted(live.Domains):
            if name in self.target_domains or not self.in_scope(name):
                continue
            oid = ObjectRef.domain(name)
            if name in removed_domains or (prune and inv.owns(oid)):
                drop_domains.append(name)
            elif inv.owns(oid):
                kept.append(oid)
            else:
                unmanaged.append(oid)
        for name in sorted(live.Accounts):
            if name in self.target_accounts or self.scope is not None:  # accounts are no domain's
                continue
            oid = ObjectRef.account(name)
            if name in removed_accounts:
                drop_accounts.append(name)
            elif inv.owns(oid) and prune:
                blocked.append(BlockedRemoval(oid))
            elif inv.owns(oid):
                kept.append(oid)
            else:
                unmanaged.append(oid)
        self.warn_removed_nothing()
        for text in desired.warnings:  # the desired state's own (secrets written in plain text)
            m = re.match(r"^(.*?):(\d+):(\d+): ", text)
            self.warnings.append(((m.group(1), int(m.group(2)), int(m.group(3))) if m else ("", 0, 0), text))

        self.create_objects()
        self.addresses_added_or_moved()
        self.dkim_added()
        self.fields_saved()
        self.aliases()
        self.addresses_removed()
        self.dkim_removed()
        for name in drop_accounts:
            self.drop_account_references(name, drop_domains)
            self.do(AccountRemove(name), ObjectRef.account(name), Action.DELETE)
        for name in drop_domains:
            self.do(DomainRemove(name), ObjectRef.domain(name), Action.DELETE)
        self.global_settings()
        self.residuals()
        self.check_converged()
        self.warn_signing_with_new_selectors()
        self.passwords()

        named = ({ObjectRef.domain(n) for n in self.target_domains}
                 | {ObjectRef.account(n) for n in self.target_accounts})
        dropped = ({ObjectRef.domain(n) for n in drop_domains}
                   | {ObjectRef.account(n) for n in drop_accounts})
        used = used_key_paths(self.sim)
        return Plan(
            steps=tuple(self.steps),
            unmanaged=tuple(unmanaged),
            blocked=tuple(blocked),
            managed_before=frozenset(o for o in inv.objects | named if o.exists_in(live)),
            inventory_after=frozenset(o for o in (inv.objects - dropped) | named if o.exists_in(self.sim)),
            result=self.sim,
            threshold=SafetyThreshold.of(desired.Policy),
            new_keys={p: k.kind for p, k in self.born_keys.items() if p in used},
            key_requests=tuple(k for p, k in self.born_keys.items() if p in used),
            kept=tuple(self.kept),
            kept_objects=tuple(kept),
            warnings=tuple(text for _, text in sorted(self.warnings)),
            domains=self.scope,
            rotations=tuple(self.rotations),
            rotation_memory=dict(self.rotation_memory),
        )

    def create_objects(self) -> None:
        """New domains (DomainAdd) and accounts (AccountAdd, or created by DomainAdd)."""
        pending_domains = [n for n in self.target_domains if n not in self.sim.Domains]
        pending_accounts = [n for n in self.target_accounts if n not in self.sim.Accounts]
        while pending_domains or pending_accounts:
            progress = False
            for name in list(pending_accounts):
                first = self._first_address(name, in_existing_domain=True)
                if first is not None:
                    self.do(AccountAdd(name, first), ObjectRef.account(name), Action.CREATE)
                    pending_accounts.remove(name)
                    progress = True
            for name in list(pending_domains):
                op = self._domain_add(name)
                if op is None:
                    continue
                creates = (ObjectRef.account(op.account),) if op.localpart else ()
                self.do(op, ObjectRef.domain(name), Action.CREATE, creates=creates)
                pending_domains.remove(name)
                if op.localpart:
                    pending_accounts.remove(op.account)
                progress = True
            if not progress:
                what = [ObjectRef.domain(n) for n in pending_domains] + [ObjectRef.account(n) for n in pending_accounts]
                raise PlanError(
                    "cannot create " + ", ".join(what) + ": mox's AccountAdd needs a first address "
                    "(not a catchall) in an existing domain, and DomainAdd needs an existing account "
                    "or one that gets an address in the new domain"
                )

    def _first_address(self, account: str, *, in_existing_domain: bool, domain: str | None = None) -> str | None:
        for key in sorted(self.target_accounts[account].Destinations):
            if key.startswith("@"):
                continue
            try:
                addr = parse_address(key)
            except ParseError:
                continue
            dname = addr.domain.name()
            if domain is not None and dname != domain:
                continue
            if in_existing_domain and dname not in self.sim.Domains:
                continue
            return key
        return None

    def _domain_add(self, name: str) -> DomainAdd | None:
        target = self.target_domains[name]
        reports = self.desired.Domains[name].ReportsAccount or self.inp.static.Postmaster.Account
        if reports in self.sim.Accounts:
            return DomainAdd(name, reports, disabled=target.Disabled)
        if reports in self.target_accounts:
            first = self._first_address(reports, in_existing_domain=False, domain=name)
            if first is not None:
                return DomainAdd(name, reports, localpart=first.rsplit("@", 1)[0], disabled=target.Disabled)
        return None

    def addresses_added_or_moved(self) -> None:
        owner = {_canon(self.sim, k): acc for acc, a in self.sim.Accounts.items() for k in a.Destinations}
        for name, target in self.target_accounts.items():
            for key in sorted(target.Destinations):
                canon = _canon(self.sim, key)
                current = owner.get(canon)
                if current == name:
                    continue
                if current is not None and current in self.sim.Accounts:
                    self._remove_address(current, canon)
                self.do(AddressAdd(key, name), ObjectRef.account(name), Action.UPDATE)
                owner[canon] = name

    def _remove_address(self, account: str, canon: str) -> None:
        """AddressRemove, or (for a key mox itself cannot remove: not canonical) AccountSave."""
        acc = self.sim.Accounts[account]
        if canon in acc.Destinations:
            self.do(AddressRemove(canon), ObjectRef.account(account), Action.UPDATE)
            return
        keys = [k for k in acc.Destinations if _canon(self.sim, k) == canon]
        dests = {k: v for k, v in acc.Destinations.items() if k not in keys}
        self.do(AccountSave(account, {"Destinations": dests}), ObjectRef.account(account), Action.UPDATE)

    def _algorithm(self, domain: str, sel: str) -> str:
        """The key a new selector gets: the rotation's, the selector's Algorithm, else rsa."""
        desired = self.desired.Domains[domain].DKIM
        if desired is not None and sel in desired.Selectors:
            return desired.Selectors[sel].Algorithm or "rsa"
        return self.new_algorithms.get((domain, sel), "rsa")

    def dkim_added(self) -> None:
        for name, target in self.target_domains.items():
            if self.settled_domain(name):
                continue
            for sel, want in sorted(target.DKIM.Selectors.items()):
                live = self.sim.Domains[name].DKIM.Selectors
                algorithm = self._algorithm(name, sel)
                request = self.born_keys.get(live[sel].PrivateKeyFile) if sel in live else None
                born = request.kind if request is not None else None
                if born is not None and not want.PrivateKeyFile and born != _KEY_KINDS[algorithm]:
                    # DomainAdd's default selector of this name would get the wrong kind of key.
                    self.do(DKIMRemove(name, sel), ObjectRef.domain(name), Action.UPDATE,
                            text=f"drop DomainAdd's default DKIM selector {sel} of {name} ({born}; "
                            f"{algorithm} wanted: its key is never generated)")
                    live = self.sim.Domains[name].DKIM.Selectors
                if sel in live or want.PrivateKeyFile:
                    continue  # existing, or an adopted key file (DKIMSave below)
                if name in self.inp.live.Domains:
                    self.new_selectors.setdefault(name, []).append(sel)
                self.do(
                    DKIMAdd(
                        name, sel, algorithm=algorithm, hash=want.Hash or "sha256",
                        header_relaxed=want.Canonicalization.HeaderRelaxed,
                        body_relaxed=want.Canonicalization.BodyRelaxed,
                        seal=not want.DontSealHeaders, headers=tuple(want.Headers),
                        lifetime=_lifetime(want.Expiration),
                    ),
                    ObjectRef.domain(name), Action.UPDATE,
                )

    def _target_dkim(self, name: str) -> mc.DKIM:
        """The target DKIM with key files filled in from the simulation where the target leaves them open."""
        target = self.target_domains[name].DKIM
        live = self.sim.Domains[name].DKIM.Selectors
        sels = {}
        for sel, want in target.Selectors.items():
            if not want.PrivateKeyFile and sel in live:
                want = replace(want, PrivateKeyFile=live[sel].PrivateKeyFile)
            sels[sel] = want
        return replace(target, Selectors=sels)

    def fields_saved(self) -> None:
        for name in self.target_domains:
            if self.settled_domain(name):
                continue
            cur = self.sim.Domains[name]
            raw = self.target_domains[name].DKIM
            filled = self._target_dkim(name)
            keep = {s: v for s, v in filled.Selectors.items() if s in cur.DKIM.Selectors or v.PrivateKeyFile}
            have = {s: v for s, v in cur.DKIM.Selectors.items() if s in keep}
            if have != keep or cur.DKIM.Sign != filled.Sign:
                # The operation names key files only where the desired state does (adoption):
                # generated keys get their names at apply time, so "" = keep the selector's key.
                self.do(DKIMSave(name, {s: raw.Selectors[s] for s in keep}, filled.Sign), ObjectRef.domain(name),
                        Action.UPDATE)
            changed = self._changed_fields(self.sim.Domains[name], self.target_domains[name],
                                           skip=("DKIM", "Aliases"))
            if changed:
                self.do(DomainSave(name, changed), ObjectRef.domain(name), Action.UPDATE)
        for name, account in self.target_accounts.items():
            if self.settled_account(name):
                continue
            changed = self._changed_fields(self.sim.Accounts[name], account, skip=("Destinations",))
            acc = self.sim.Accounts[name]
            wanted = {_canon(self.sim, k): v for k, v in account.Destinations.items()}
            dests = {k: wanted.get(_canon(self.sim, k), v) for k, v in acc.Destinations.items()}
            if dests != dict(acc.Destinations):
                changed["Destinations"] = dests
            if changed:
                self.do(AccountSave(name, changed), ObjectRef.account(name), Action.UPDATE)

    @staticmethod
    def _changed_fields(cur: Any, target: Any, skip: Iterable[str]) -> dict[str, Any]:
        skipped = set(skip)
        return {
            f.name: getattr(target, f.name)
            for f in dataclasses.fields(target)
            if f.name not in skipped and getattr(cur, f.name) != getattr(target, f.name)
        }

    def aliases(self) -> None:
        for name, target in self.target_domains.items():
            if self.settled_domain(name):
                continue
            oid = ObjectRef.domain(name)
            cur = self.sim.Domains[name].Aliases
            for key, want in sorted(target.Aliases.items()):
                address = f"{key}@{name}"
                have = cur.get(key)
                if have is None:
                    self.do(AliasAdd(address, tuple(want.Addresses), want.PostPublic, want.ListMembers,
                                     want.AllowMsgFrom), oid, Action.UPDATE)
                    continue
                flags = {
                    "post_public": want.PostPublic if want.PostPublic != have.PostPublic else None,
                    "list_members": want.ListMembers if want.ListMembers != have.ListMembers else None,
                    "allow_msg_from": want.AllowMsgFrom if want.AllowMsgFrom != have.AllowMsgFrom else None,
                }
                if any(v is not None for v in flags.values()):
                    self.do(AliasUpdate(address, **flags), oid, Action.UPDATE)
                add = tuple(m for m in want.Addresses if m not in have.Addresses)
                if add:
                    self.do(AliasAddressesAdd(address, add), oid, Action.UPDATE)
                drop = tuple(m for m in have.Addresses if m not in want.Addresses)
                if drop:
                    self.do(AliasAddressesRemove(address, drop), oid, Action.UPDATE)
            for key in sorted(set(cur) - set(target.Aliases)):
                self.do(AliasRemove(f"{key}@{name}"), oid, Action.UPDATE)

    def addresses_removed(self) -> None:
        for name, target in self.target_accounts.items():
            if self.sim.Accounts[name] is target:
                continue
            wanted = {_canon(self.sim, k) for k in target.Destinations}
            for key in sorted(self.sim.Accounts[name].Destinations):
                canon = _canon(self.sim, key)
                if canon not in wanted:
                    self._remove_address(name, canon)

    def dkim_removed(self) -> None:
        for name, target in self.target_domains.items():
            if self.settled_domain(name):
                continue
            for sel, conf in sorted(self.sim.Domains[name].DKIM.Selectors.items()):
                if sel not in target.DKIM.Selectors:
                    text = ""
                    if conf.PrivateKeyFile in self.born_keys:
                        text = f"drop DomainAdd's default DKIM selector {sel} of {name} (its key is never generated)"
                    self.do(DKIMRemove(name, sel), ObjectRef.domain(name), Action.UPDATE, text=text)

    def drop_account_references(self, account: str, dropping: list[str]) -> None:
        """Nothing to do but explain: references from kept objects make AccountRemove fail."""
        for dname, d in self.sim.Domains.items():
            if dname in dropping:
                continue
            for what, rep in (("DMARC", d.DMARC), ("TLSRPT", d.TLSRPT)):
                if rep is not None and rep.Account == account:
                    message = (f"cannot remove account {account}: domain {dname} sends its {what} reports to it; "
                               f"give the domain another ReportsAccount first")
                    raise PlanError(locate(message, self.desired,
                                           self._path_of(AccountRemove(account), ObjectRef.account(account)))[1])

    def global_settings(self) -> None:
        if self.scope is not None:  # mox's global settings are no domain's
            return
        fields: dict[str, Any] = {}
        if self.desired.Routes is not None:
            routes = self.desired.to_dynamic(self.inp.static, self.sim, self.inp.now).Routes
            if routes != self.sim.Routes:
                fields["Routes"] = routes
        if self.desired.MonitorDNSBLs is not None and tuple(self.desired.MonitorDNSBLs) != self.sim.MonitorDNSBLs:
            fields["MonitorDNSBLs"] = tuple(self.desired.MonitorDNSBLs)
        if fields:
            self.do(ConfigSave(fields), CONFIG, Action.UPDATE)

    def residuals(self) -> None:
        """Whatever the targeted operations left different (e.g. alias member order)."""
        for name in self.target_domains:
            if self.settled_domain(name):
                continue
            target = replace(self.target_domains[name], DKIM=self._target_dkim(name))
            changed = self._changed_fields(self.sim.Domains[name], target, skip=("DKIM",))
            if changed:
                self.do(DomainSave(name, changed), ObjectRef.domain(name), Action.UPDATE)

    def warn_removed_nothing(self) -> None:
        """`Removed` entries that name nothing in the live config: already gone, or a typo."""
        live = self.inp.live
        for kind, names, exists in (("Domains", self.desired.Removed.Domains, live.Domains),
                                    ("Accounts", self.desired.Removed.Accounts, live.Accounts)):
            for i, name in enumerate(names):
                if name in exists or (self.scope is not None and (kind == "Accounts" or name not in self.scope)):
                    continue
                hint = "already removed, or a typo?"
                near = _spelled_like(name, exists, domain=kind == "Domains")
                if near:
                    hint = f"did you mean {near}?"
                what = "a domain" if kind == "Domains" else "an account"
                self.warn(("Removed", kind, i), f"{name} is not {what} of the live config, so nothing is removed "
                                                f"({hint})")

    def warn_signing_with_new_selectors(self) -> None:
        """Signing with a selector this apply creates: its DNS record cannot be published before
        the key exists, so receivers fail the signatures until it is."""
        for name, added in self.new_selectors.items():
            desired = self.desired.Domains[name].DKIM
            sign = desired.Sign if desired is not None else []
            for i, sel in enumerate(sign):
                if sel in added:
                    self.warn(("Domains", name, "DKIM", "Sign", i),
                              f"signs with selector {sel}, which this apply creates: its DNS record cannot be "
                              "published before the key exists, and receivers cannot verify the signatures "
                              f"until it is. Publish first, then sign: apply with {sel} under Selectors but not "
                              f"in Sign, publish its record (`records --domain {name}`), then add it to Sign")

    def passwords(self) -> None:
        """Set a password when the plan creates its account, or when the reconciler has not set it
        from this secret before (never, or the secret changed). No Password: left as it is."""
        for name in self.target_accounts:
            ref = self.desired.Accounts[name].Password
            if ref is None:
                continue
            created = name not in self.inp.live.Accounts
            if self.scope is not None and not created:
                continue  # an existing account's password is no domain's
            status = self.inp.passwords.get(name, PasswordStatus.UNKNOWN)
            if created or status is not PasswordStatus.SAME:
                changed = status is PasswordStatus.CHANGED and not created
                self.do(SetPassword(name, ref, changed), ObjectRef.account(name), Action.UPDATE)

    def check_converged(self) -> None:
        for name in self.target_domains:
            if self.settled_domain(name):
                continue
            want = replace(self.target_domains[name], DKIM=self._target_dkim(name))
            if self.sim.Domains.get(name) != want:
                raise PlanError(f"internal error: the plan does not reach the desired state of domain {name}")
        for name, account in self.target_accounts.items():
            have = self.sim.Accounts.get(name)
            if have is account:
                continue
            if have is None or self._changed_fields(have, account, skip=("Destinations",)) or (
                {_canon(self.sim, k) for k in have.Destinations}
                != {_canon(self.sim, k) for k in account.Destinations}
            ):
                raise PlanError(f"internal error: the plan does not reach the desired state of account {name}")


def _scope(domains: frozenset[str], desired: DesiredState, live: Dynamic) -> frozenset[str]:
    """The --domain names as mox keys them; each must be a domain of the desired state or of
    the live config (a typo would otherwise plan nothing, silently)."""
    known = set(desired.Domains) | set(live.Domains)
    out = set()
    for text in sorted(domains):
        try:
            name = parse_domain(text).name()
        except ParseError as e:
            raise PlanError(f"--domain {text}: {e}") from None
        if name not in known:
            near = _spelled_like(name, known, domain=True)
            raise PlanError(f"--domain {text}: not a domain of the desired state or the live config"
                            + (f" (did you mean {near}?)" if near else ""))
        out.add(name)
    return frozenset(out)


def _spelled_like(name: str, existing: Iterable[str], *, domain: bool) -> str | None:
    """An existing name `name` probably means: the same domain spelled as mox keys it (lower
    case, Unicode), or a close spelling."""
    names = sorted(existing)
    if domain:
        try:
            canonical = parse_domain(name).name()
        except ParseError:
            canonical = name
        if canonical in names:
            return canonical
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    return close[0] if close else None


def rfc3339(t: datetime) -> str:
    """An aware time as RFC 3339 in UTC, to the second."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rotation_info(st: RotationStatus) -> RotationInfo:
    """A rotating domain's status as the plan document shows it."""
    pending = [PendingStep(step=p.step.value, selector=p.selector, waiting_for=p.waiting_for,
                           earliest=rfc3339(p.earliest) if p.earliest is not None else None)
               for p in st.pending]
    return RotationInfo(domain=st.domain, stage=st.stage.value, signing=st.signing, next=st.next,
                        retiring=list(st.retiring), actions=list(st.actions), pending=pending,
                        problems=list(st.problems), dns_checked=st.dns_checked)


def plan_document(plan: Plan, *, source: Source | None, live_path: str, live_digest: str,
                  desired_digest: str | None = None, base_ref: str | None = None,
                  created: datetime | None = None) -> PlanDocument:
    """The versioned plan document (docs/plan-format.md)."""
    c = plan.counts()
    return PlanDocument(
        version=PLAN_VERSION,
        created=created.isoformat() if created is not None else None,
        source=SourceInfo.of(source) if source is not None else None,
        desired_digest=desired_digest,
        live=LiveInfo(path=live_path, sha256=live_digest),
        summary=Summary(create=c["create"], update=c["update"], delete=c["delete"],
                        objects=len(plan.objects()), text=plan.summary()),
        changes=[s.change() for s in plan.steps],
        unmanaged=list(plan.unmanaged),
        blocked=list(plan.blocked),
        kept=list(plan.kept_objects),
        warnings=list(plan.warnings),
        needs_force=str(problem) if (problem := plan.safety_problem()) is not None else None,
        inventory_after=sorted(plan.inventory_after),
        safety=plan.safety(),
        changed_domains=plan.changed_domains(),
        kept_self_service=[SelfServiceKept(object=ObjectRef.account(k.account), field=k.field) for k in plan.kept],
        checksum=plan.checksum(),
        base_ref=base_ref,
        domains=sorted(plan.domains) if plan.domains is not None else None,
        dkim_rotation=[rotation_info(st) for st in plan.rotations],
    )
