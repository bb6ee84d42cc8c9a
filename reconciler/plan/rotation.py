"""DKIM key rotation as a declared policy (`DKIM.Rotation`): each rotating domain's stage, and
the DKIM its config should have now. Pure: no clock, no DNS, no files (docs/dkim-rotation.md).

A rotating domain's selectors fall into three roles, read from the live config and the memory
(`rotation_memory`): the *signing* selector (first of Sign), the *next* one (the newest selector
made after it that never signed) and the *retiring* ones (all others). One step per run:

* prepare: no next selector and the signing key is `Every` old: add the next selector, named as
  mox names selectors (`<year><letter>`, the letter after the highest used that year), not signing;
* publish: the next selector's record must be in DNS; the stage waits until a check has seen it
  without a break for `PublishWait`;
* switch: then Sign names the next selector (checked in this very run: a failed or negative check
  never advances);
* retire: a retiring selector is removed `RetireAfter` after it stopped signing, and never before
  its signatures' Expiration, and only while the signing selector's record is in DNS: a signing
  record that went missing blocks retirement and is reported as a problem.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from reconciler.desired.models import Rotation
from reconciler.mox import config as mc
from reconciler.mox.golang import Duration, GoSyntaxError, format_duration, parse_duration
from reconciler.plan.rotation_memory import (
    Answer,
    DomainMemory,
    Seen,
    SelectorMemory,
    forget_removed,
    observe,
    remember,
    retiring_from,
)

# A gap between sightings longer than this share of PublishWait starts the wait over.
GAP_SHARE = 4


class Stage(StrEnum):
    """Where a rotating domain is (docs/dkim-rotation.md)."""

    SIGNING = "signing"  # nothing in progress: the signing key is younger than Every
    PREPARE = "prepare"  # this run adds the next selector (not signing)
    PUBLISH = "publish"  # the next selector waits for its record to be seen in DNS for PublishWait
    SWITCH = "switch"  # this run makes the next selector the signing one
    RETIRE = "retire"  # a previous selector waits out RetireAfter (or is removed in this run)
    BLOCKED = "blocked"  # the signing selector's record is not in DNS: retirement is blocked


class Step(StrEnum):
    """The steps a rotation takes."""

    PREPARE = "prepare"
    SWITCH = "switch"
    RETIRE = "retire"


def _td(ns: int) -> timedelta:
    return timedelta(microseconds=ns // 1000)


def go(td: timedelta) -> str:
    """A time span as a Go duration, as the policy is written (720h0m0s)."""
    return format_duration(Duration(td // timedelta(microseconds=1) * 1000))


@dataclass(frozen=True, slots=True)
class Policy:
    every: timedelta
    algorithm: str
    publish_wait: timedelta
    retire_after: timedelta

    @classmethod
    def of(cls, r: Rotation) -> Policy:
        return cls(_td(r.Every), r.Algorithm, _td(r.PublishWait), _td(r.RetireAfter))

    @property
    def max_gap(self) -> timedelta:
        """The longest gap between two sightings that still counts as seen all along."""
        return self.publish_wait / GAP_SHARE


@dataclass(frozen=True, slots=True)
class Pending:
    """A step the rotation waits to take: when at the earliest, and what for."""

    step: Step
    selector: str
    earliest: datetime | None  # None: cannot be told yet (e.g. no free selector name)
    waiting_for: str


@dataclass(frozen=True, slots=True)
class RotationStatus:
    """One rotating domain after this run's plan: its stage, what the plan does, what it waits for."""

    domain: str
    stage: Stage
    signing: str | None
    next: str | None
    retiring: tuple[str, ...]
    actions: tuple[str, ...] = ()  # what this plan does, one sentence each
    pending: tuple[Pending, ...] = ()  # steps still to come, earliest first
    problems: tuple[str, ...] = ()  # to be reported loudly
    dns_checked: bool = True  # False: no DNS check this run (plan --base-ref)
    retired: tuple[str, ...] = ()  # selectors removed earlier whose records still are to be deleted

    def records_wanted(self) -> tuple[str, ...]:
        """Selectors whose DKIM records must be in DNS: every selector the config keeps."""
        names = [self.signing, self.next, *self.retiring]
        return tuple(n for n in names if n is not None)


@dataclass(frozen=True, slots=True)
class RotationStep:
    """What `step` decides for one domain."""

    dkim: mc.DKIM  # the domain's DKIM after this run (new selectors without a key file yet)
    status: RotationStatus
    memory: DomainMemory  # with retiring selectors marked
    algorithms: Mapping[str, str] = field(default_factory=dict)  # new selectors -> rsa|ed25519


# The settings of a selector the rotation adds: mox's DKIMAdd defaults (admin.DKIMAdd, web admin).
NEW_SELECTOR = mc.Selector(Hash="sha256", Canonicalization=mc.Canonicalization(True, True), Expiration="72h0m0s")


def next_selector_name(year: int, used: Iterable[str]) -> str | None:
    """`<year><letter>`: the letter after the highest one used with that year (names are never
    reused: a resolver may still cache an old key under an old name); None after `z`."""
    prefix = str(year)
    letters = [u[-1] for u in used if len(u) == len(prefix) + 1 and u.startswith(prefix)
               and u[-1] in string.ascii_lowercase]
    if not letters:
        return prefix + "a"
    top = max(letters)
    return None if top == "z" else prefix + chr(ord(top) + 1)


def _expiration(sel: mc.Selector) -> timedelta:
    try:
        return _td(parse_duration(sel.Expiration)) if sel.Expiration else timedelta(0)
    except GoSyntaxError:
        return timedelta(0)


def _at(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S %z")


def _record(domain: str, selector: str) -> str:
    return f"{selector}._domainkey.{domain}"


class _Decider:
    def __init__(self, domain: str, policy: Policy, live: mc.Domain | None, mem: DomainMemory,
                 answers: Mapping[str, Answer] | None, now: datetime, used: Iterable[str]) -> None:
        self.domain = domain
        self.policy = policy
        self.dkim = live.DKIM if live is not None else mc.DKIM()
        self.mem = mem
        self.answers = answers
        self.now = now
        self.used = set(used) | set(self.dkim.Selectors) | set(mem.selectors) | set(mem.retired)
        self.actions: list[str] = []
        self.pending: list[Pending] = []
        self.problems: list[str] = []

    def memory(self, name: str) -> SelectorMemory:
        return self.mem.selectors.get(name, SelectorMemory(created=self.now))

    def created(self, name: str) -> datetime:
        return self.memory(name).created or self.now

    def answer(self, name: str) -> Answer | None:
        return self.answers.get(name) if self.answers is not None else None

    def roles(self) -> tuple[str | None, str | None, list[str]]:
        sels = self.dkim.Selectors
        signing = next((s for s in self.dkim.Sign if s in sels), None)
        fresh = [s for s in sels if s != signing and self.memory(s).signing_since is None
                 and (signing is None or self.created(s) > self.created(signing))]
        nxt = max(fresh, key=lambda s: (self.created(s), s)) if fresh else None
        return signing, nxt, sorted(s for s in sels if s not in (signing, nxt))

    def why_not_seen(self, name: str) -> str | None:
        """Why the record of `name` does not count as seen in this run, or None."""
        rec = _record(self.domain, name)
        a = self.answer(name)
        if self.answers is None:
            return "DNS was not checked in this run"
        if a is None or a.seen is Seen.FAILED:
            return f"the DNS check of {rec} failed" + (f": {a.detail}" if a is not None and a.detail else "")
        if a.seen is Seen.MISSING:
            return f"{rec} TXT is not in DNS"
        if a.seen is Seen.DIFFERENT:
            return f"{rec} TXT in DNS holds another key" + (f" ({a.detail})" if a.detail else "")
        return None

    def switch(self, nxt: str) -> bool:
        """Whether the next selector signs from this run on; else what it waits for."""
        why = self.why_not_seen(nxt)
        first = self.memory(nxt).first_seen
        wait = self.policy.publish_wait
        if why is None and first is not None and self.now - first >= wait:
            self.actions.append(f"switch: sign with {nxt} (its record has been in DNS since {_at(first)})")
            return True
        if why is None and first is not None:
            waiting = f"{_record(self.domain, nxt)} TXT to stay in DNS (seen since {_at(first)}) for {go(wait)}"
            self.pending.append(Pending(Step.SWITCH, nxt, first + wait, waiting))
        else:
            self.pending.append(Pending(Step.SWITCH, nxt, self.now + wait,
                                        f"{why}; once there, it must be seen for {go(wait)}"))
        return False

    def prepare(self, signing: str | None) -> str | None:
        """The next selector's name when one is to be added in this run, else None."""
        if signing is not None:
            due = self.created(signing) + self.policy.every
            if self.now < due:
                self.pending.append(Pending(Step.PREPARE, "", due,
                                            f"signing key {signing} to be {go(self.policy.every)} old"))
                return None
        name = next_selector_name(self.now.astimezone().year, self.used)
        if name is None:
            self.problems.append(f"no selector name left for {self.now.astimezone().year} "
                                 "(<year>a to <year>z are used); the rotation waits for the next year")
            self.pending.append(Pending(Step.PREPARE, "", None, "a free selector name"))
            return None
        why = f"signing key {signing} is {go(self.policy.every)} old" if signing else "no selector signs yet"
        self.actions.append(f"prepare: add selector {name} ({self.policy.algorithm}), not signing ({why})")
        return name

    def retire(self, name: str, signing: str | None) -> bool:
        """Whether `name` is removed in this run (`signing`: the selector signing after this run)."""
        m = self.memory(name)
        since = m.retiring_since or self.now
        after = max(self.policy.retire_after, _expiration(self.dkim.Selectors[name]))
        due = since + after
        if signing is None:
            self.pending.append(Pending(Step.RETIRE, name, None, "a selector that signs"))
            return False
        if self.now < due:
            self.pending.append(Pending(Step.RETIRE, name, due, f"signatures by {name} to age out ({go(after)} "
                                        f"after it stopped signing at {_at(since)})"))
            return False
        why = self.why_not_seen(signing)
        if why is not None:
            self.pending.append(Pending(Step.RETIRE, name, None, f"the record of signing selector {signing}: {why}"))
            return False
        self.actions.append(f"retire: remove selector {name} (not signing since {_at(since)}; key moves to "
                            "dkim/old/, its DNS record is to be deleted)")
        return True

    def missing_signer(self, signing: str, retiring: Sequence[str]) -> bool:
        """A signing selector whose record DNS does not have: a problem, and no retirement."""
        a = self.answer(signing)
        if a is None or a.seen not in (Seen.MISSING, Seen.DIFFERENT):
            return False
        what = f"selector {signing} signs, but {self.why_not_seen(signing)}: verifiers cannot check its signatures"
        if retiring:
            what += f"; retiring {', '.join(retiring)} is blocked until the record is back"
        self.problems.append(what)
        return True

    def decide(self) -> RotationStep:
        signing, nxt, retiring = self.roles()
        self.mem = retiring_from(self.mem, retiring, self.now)
        sels = dict(self.dkim.Selectors)
        algorithms: dict[str, str] = {}
        switched = False
        new: str | None = None
        if nxt is not None:
            switched = self.switch(nxt)
        else:
            new = self.prepare(signing)
            if new is not None:
                sels[new] = NEW_SELECTOR
                algorithms[new] = self.policy.algorithm
                wait = self.policy.publish_wait
                self.pending.append(Pending(Step.SWITCH, new, self.now + wait, f"{_record(self.domain, new)} "
                                            f"TXT to be published and seen in DNS for {go(wait)}"))
        current = nxt if switched else signing  # the selector that signs after this run
        if switched and signing is not None:
            self.mem = retiring_from(self.mem, [signing], self.now)
        if switched and nxt is not None:
            self.pending.append(Pending(Step.PREPARE, "", self.created(nxt) + self.policy.every,
                                        f"signing key {nxt} to be {go(self.policy.every)} old"))
        blocked = current is not None and self.missing_signer(current, retiring)
        removed = [] if blocked else [r for r in retiring if self.retire(r, current)]
        if blocked:
            for r in retiring:
                self.pending.append(Pending(Step.RETIRE, r, None, f"the record of signing selector {current}"))
        for r in removed:
            del sels[r]
        if blocked:
            stage = Stage.BLOCKED
        elif switched:
            stage = Stage.SWITCH
        elif new is not None:
            stage = Stage.PREPARE
        elif nxt is not None:
            stage = Stage.PUBLISH
        elif retiring:
            stage = Stage.RETIRE
        else:
            stage = Stage.SIGNING
        kept = [r for r in retiring if r not in removed] + ([signing] if switched and signing else [])
        pending = sorted(self.pending, key=lambda p: (p.earliest is None, p.earliest or self.now, p.step))
        waiting_deletion = (k for k, v in self.mem.retired.items() if not v.record_removed)
        status = RotationStatus(
            domain=self.domain, stage=stage, signing=current, next=None if switched else (nxt or new),
            retiring=tuple(sorted(kept)), actions=tuple(self.actions), pending=tuple(pending),
            problems=tuple(self.problems), dns_checked=self.answers is not None,
            retired=tuple(sorted({*removed, *waiting_deletion})),
        )
        dkim = dataclasses.replace(self.dkim, Selectors=sels, Sign=(current,) if current is not None else ())
        return RotationStep(dkim, status, self.mem, algorithms)


def step(domain: str, policy: Policy, live: mc.Domain | None, mem: DomainMemory,
         answers: Mapping[str, Answer] | None, now: datetime, used: Iterable[str] = ()) -> RotationStep:
    """This run's step of one rotating domain: the DKIM its config should have, and its status.

    `live` is the domain as it is (None: created by this plan), `mem` its memory with the live
    selectors and this run's DNS check folded in (`remember`, `observe`), `answers` that check per
    selector (None: DNS not checked, nothing waiting for DNS advances), `used` the selector names
    of the domain's key files (dkim/ and dkim/old/), so no name is used twice.
    """
    return _Decider(domain, policy, live, mem, answers, now, used).decide()


@dataclass(frozen=True, slots=True)
class RotationInput:
    """What the planner needs besides the configs to rotate keys (gathered by the pipeline)."""

    memory: Mapping[str, DomainMemory] = field(default_factory=dict)  # as read from the file
    answers: Mapping[str, Mapping[str, Answer]] | None = None  # this run's DNS check per domain; None: none
    used_names: Mapping[str, frozenset[str]] = field(default_factory=dict)  # selectors of key files, per domain
    recording: bool = True  # sightings will be kept (apply, watch): a gap in them restarts the wait


def rotate_domain(domain: str, rotation: Rotation, live: mc.Domain | None, inp: RotationInput,
                  now: datetime) -> RotationStep:
    """`step` for one domain, with its memory brought up to date with the live config and this
    run's DNS check first (`remember`, `observe`)."""
    policy = Policy.of(rotation)
    mem = inp.memory.get(domain, DomainMemory())
    if live is not None:
        mem = remember(mem, live.DKIM, now)
    answers = inp.answers.get(domain) if inp.answers is not None else None
    if answers is not None:
        mem = observe(mem, answers, now, policy.max_gap if inp.recording else None)
    return step(domain, policy, live, mem, answers, now, inp.used_names.get(domain, frozenset()))


@dataclass(frozen=True, slots=True)
class StageChange:
    """A rotating domain moved to another stage: logged by the watcher, and what notifications hook."""

    domain: str
    before: str | None  # None: the first run that saw the domain rotate
    after: Stage
    status: RotationStatus

    def message(self) -> str:
        text = f"DKIM rotation of {self.domain}: {self.before or 'started'} -> {self.after}"
        details = [*self.status.actions, *self.status.problems]
        return text + (": " + "; ".join(details) if details else "")


def settle(memory: Mapping[str, DomainMemory], statuses: Sequence[RotationStatus] | None, live: mc.Dynamic,
           now: datetime) -> tuple[dict[str, DomainMemory], list[StageChange]]:
    """The memory to keep after a run: the selectors as applied folded in (a switch, a new or a
    removed selector gets its time), each domain's stage recorded; and the stage changes.

    `statuses` None (a saved plan replayed, no rotation computed): every remembered domain is
    brought up to date and its stage kept. Domains no longer rotating are forgotten.
    """
    if statuses is None:
        kept = {d: remember(m, live.Domains[d].DKIM, now) if d in live.Domains else m for d, m in memory.items()}
        return {d: forget_removed(m) for d, m in kept.items()}, []
    out: dict[str, DomainMemory] = {}
    changes: list[StageChange] = []
    for st in statuses:
        m = memory.get(st.domain, DomainMemory())
        conf = live.Domains.get(st.domain)
        if conf is not None:
            m = remember(m, conf.DKIM, now)
        if m.stage != st.stage:
            changes.append(StageChange(st.domain, m.stage, st.stage, st))
        out[st.domain] = forget_removed(dataclasses.replace(m, stage=str(st.stage)))
    return out, changes
