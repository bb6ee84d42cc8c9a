"""DKIM rotation on plain data: the policy's checks, the memory, and the stages walked through a
calendar (plan, fold the operations as apply would, keep the memory) with a DNS that shows
exactly what each test says. The same walk against a real BIND 9 and mox is test_rotation_e2e.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.batch import fold
from reconciler.desired.checks import check
from reconciler.desired.models import DesiredState
from reconciler.errors import LiveConfigError
from reconciler.mox.admin import Context
from reconciler.mox.config import Dynamic
from reconciler.mox.keygen import parse_key_name
from reconciler.plan.planner import Plan, PlanInput, make_plan
from reconciler.plan.rotation import RotationInput, RotationStatus, Stage, next_selector_name, settle
from reconciler.plan.rotation_memory import (
    Answer,
    DomainMemory,
    Retired,
    Seen,
    SelectorMemory,
    from_json,
    observe,
    read_memory,
    remember,
    to_json,
    write_memory,
)
from tests.test_plan import ALL, LIVE, STATIC, imported, state

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# When DomainAdd made example.org's keys 2026a/2026b in the golden config (the key file names).
MADE = parse_key_name(LIVE.Domains["example.org"].DKIM.Selectors["2026a"].PrivateKeyFile).created  # type: ignore[union-attr]
POLICY = {"Every": "720h", "PublishWait": "48h", "RetireAfter": "168h"}


def rotating(policy: dict[str, Any] | None = None, **domains: dict[str, Any]) -> dict[str, Any]:
    doc = imported()
    doc["Domains"]["example.org"]["DKIM"] = {"Rotation": policy or POLICY}
    doc["Domains"].update(domains)
    return doc


# -- the policy in the desired state -----------------------------------------------------------


@pytest.mark.parametrize(("dkim", "path", "message"), [
    ({"Rotation": POLICY, "Sign": ["2026a"]}, ("DKIM", "Sign"), "not together with Rotation"),
    ({"Rotation": POLICY, "Selectors": {}}, ("DKIM", "Selectors"), "not together with Rotation"),
    ({"Rotation": {"Every": "12h"}}, ("DKIM", "Rotation", "Every"), "at least 24h0m0s"),
    ({"Rotation": {"Every": "48h"}}, ("DKIM", "Rotation", "Every"), "longer than PublishWait (48h0m0s)"),
    ({"Rotation": {"Every": "720h", "RetireAfter": "-1h"}}, ("DKIM", "Rotation", "RetireAfter"), "negative"),
])
def test_policy_checks(dkim: dict[str, Any], path: tuple[str, ...], message: str) -> None:
    doc = imported()
    doc["Domains"]["example.org"]["DKIM"] = dkim
    problems = check(DesiredState.model_validate(doc))
    assert [(p, m) for p, m in problems if message in m] == [(("Domains", "example.org", *path), problems[0][1])]
    assert len(problems) == 1


def test_policy_defaults_and_a_domain_with_selectors_and_sign_does_not_rotate() -> None:
    s = state(rotating({"Every": "2160h"}))
    rot = s.Domains["example.org"].DKIM.Rotation  # type: ignore[union-attr]
    assert (str(rot.PublishWait), str(rot.RetireAfter), rot.Algorithm) == ("48h0m0s", "168h0m0s", "rsa")  # type: ignore[union-attr]
    p = make_plan(PlanInput(state(imported()), STATIC, LIVE, ALL, MADE + 400 * DAY))
    assert p.rotations == () and p.empty


# -- names -------------------------------------------------------------------------------------


def test_selector_names_follow_mox_and_are_never_reused() -> None:
    assert next_selector_name(2026, []) == "2026a"
    assert next_selector_name(2026, ["2026a", "2026c", "2025z", "s1", "2026"]) == "2026d"
    assert next_selector_name(2027, ["2026a", "2026c"]) == "2027a"
    assert next_selector_name(2026, ["2026z"]) is None


# -- memory ------------------------------------------------------------------------------------

T0 = MADE + 10 * DAY


def test_remember_takes_creation_from_key_names_and_tracks_sign() -> None:
    dkim = LIVE.Domains["example.org"].DKIM  # type: ignore[union-attr]
    m = remember(DomainMemory(), dkim, T0)
    assert m.selectors["2026a"] == SelectorMemory(created=MADE, signing_since=T0)
    assert m.selectors["2026b"] == SelectorMemory(created=MADE)
    # 2026a leaves Sign: retiring from then on; 2026b leaves the config: retired, record to delete.
    later = T0 + DAY
    m2 = remember(m, type(dkim)(Selectors={"2026a": dkim.Selectors["2026a"]}, Sign=()), later)
    assert m2.selectors["2026a"].retiring_since == later
    assert m2.retired == {"2026b": Retired(later)}


def test_observe_counts_only_unbroken_sightings() -> None:
    m = DomainMemory({"s": SelectorMemory(created=T0)})
    seen = {"s": Answer(Seen.PRESENT, value="k1")}
    gap = 12 * HOUR
    m = observe(m, seen, T0, gap)
    m = observe(m, seen, T0 + 10 * HOUR, gap)
    assert (m.selectors["s"].first_seen, m.selectors["s"].last_seen) == (T0, T0 + 10 * HOUR)
    failed = observe(m, {"s": Answer(Seen.FAILED, "timeout")}, T0 + 11 * HOUR, gap)
    assert failed == m  # a failed check tells nothing
    assert observe(m, seen, T0 + 23 * HOUR, gap).selectors["s"].first_seen == T0 + 23 * HOUR  # gap > 12h
    assert observe(m, seen, T0 + 23 * HOUR, None).selectors["s"].first_seen == T0  # looking ahead: no gap rule
    assert observe(m, {"s": Answer(Seen.PRESENT, value="k2")}, T0 + 11 * HOUR, gap).selectors["s"].first_seen \
        == T0 + 11 * HOUR  # another key
    assert observe(m, seen, T0 + 5 * HOUR, gap).selectors["s"].first_seen == T0 + 5 * HOUR  # clock went back
    gone = observe(m, {"s": Answer(Seen.MISSING)}, T0 + 11 * HOUR, gap).selectors["s"]
    assert (gone.first_seen, gone.last_seen, gone.missing_since) == (None, None, T0 + 11 * HOUR)
    r = DomainMemory(retired={"old": Retired(T0)})
    assert observe(r, {"old": Answer(Seen.MISSING)}, T0, gap).retired["old"].record_removed
    assert not observe(r, {"old": Answer(Seen.PRESENT)}, T0, gap).retired["old"].record_removed


def test_memory_file_round_trip_and_errors(tmp_path: Path) -> None:
    assert read_memory(tmp_path) == {}  # none yet (or lost: waits start over)
    mem = {"example.org": DomainMemory({"2026a": SelectorMemory(created=MADE, signing_since=T0, record="ab",
                                                                first_seen=T0, last_seen=T0 + HOUR)},
                                       {"2025z": Retired(T0)}, "signing")}
    write_memory(tmp_path, mem)
    assert read_memory(tmp_path) == mem
    assert json.loads((tmp_path / "mox-reconciler.dkim-rotation.json").read_text()) == to_json(mem)
    data = to_json(mem)
    data["domains"]["example.org"]["selectors"]["2026a"]["first_seen"] = "yesterday"
    (tmp_path / "mox-reconciler.dkim-rotation.json").write_text(json.dumps(data))
    with pytest.raises(LiveConfigError, match=r"dkim-rotation\.json: domains\.example\.org\.selectors\.2026a"
                       r"\.first_seen: 'yesterday' is not an RFC 3339 time; remove the file"):
        read_memory(tmp_path)
    (tmp_path / "mox-reconciler.dkim-rotation.json").write_text("{")
    with pytest.raises(LiveConfigError, match="cannot read the DKIM rotation memory"):
        read_memory(tmp_path)
    with pytest.raises(ValueError, match="version"):
        from_json({"version": 2})


# -- the calendar ------------------------------------------------------------------------------


@dataclass
class Calendar:
    """The live config, the rotation memory and a DNS, carried from run to run as apply would."""

    doc: dict[str, Any]
    live: Dynamic = LIVE
    memory: dict[str, DomainMemory] = field(default_factory=dict)
    dns: set[str] = field(default_factory=set)  # selectors of example.org whose record DNS serves
    failing: bool = False  # the DNS check fails (resolver down)
    used: set[str] = field(default_factory=set)  # selectors of key files ever made (dkim/, dkim/old/)
    domain: str = "example.org"
    seen_sign: list[tuple[datetime, tuple[str, ...]]] = field(default_factory=list)

    def answers(self) -> dict[str, Answer]:
        conf = self.live.Domains.get(self.domain)
        names: Iterable[str] = list(conf.DKIM.Selectors) if conf is not None else []
        names = [*names, *self.memory.get(self.domain, DomainMemory()).retired]
        if self.failing:
            return {n: Answer(Seen.FAILED, "timeout") for n in names}
        return {n: Answer(Seen.PRESENT if n in self.dns else Seen.MISSING, value=n) for n in names}

    def run(self, at: datetime) -> tuple[Plan, RotationStatus]:
        answers = self.answers()
        before = self.live.Domains[self.domain].DKIM.Sign if self.domain in self.live.Domains else ()  # type: ignore[union-attr]
        rot = RotationInput(self.memory, {self.domain: answers}, {self.domain: frozenset(self.used)})
        p = make_plan(PlanInput(state(self.doc), STATIC, self.live, ALL, at, rotation=rot))
        self.live = fold(p.operations, self.live, Context(STATIC, at)).dynamic
        assert self.live == p.result
        self.memory, _ = settle(p.rotation_memory, p.rotations, self.live, at)
        conf = self.live.Domains[self.domain]
        self.used |= set(conf.DKIM.Selectors)
        # Sign never comes to name a selector this run's check did not find in DNS.
        for sel in set(conf.DKIM.Sign) - set(before):
            assert answers.get(sel) == Answer(Seen.PRESENT, value=sel), (at, sel, answers)
        self.seen_sign.append((at, conf.DKIM.Sign))
        (status,) = [s for s in p.rotations if s.domain == self.domain]
        return p, status

    def stage_at(self, at: datetime) -> Stage:
        return self.run(at)[1].stage

    @property
    def dkim(self) -> Any:
        return self.live.Domains[self.domain].DKIM  # type: ignore[union-attr]


def ops(p: Plan) -> list[str]:
    return [type(o).__name__ for o in p.operations]


def test_a_full_rotation_of_a_domain_made_by_domainadd() -> None:
    cal = Calendar(rotating(), dns={"2026a", "2026b"})
    t = MADE + 2 * DAY
    p, st = cal.run(t)
    # DomainAdd's spare 2026b never signed: it retires RetireAfter after the rotation took over.
    assert (st.stage, st.signing, st.next, st.retiring) == (Stage.RETIRE, "2026a", None, ("2026b",))
    assert [(x.step, x.selector, x.earliest) for x in st.pending] == [
        ("retire", "2026b", t + 7 * DAY), ("prepare", "", MADE + 30 * DAY)]
    assert p.empty
    assert cal.stage_at(t + 7 * DAY - HOUR) is Stage.RETIRE and "2026b" in cal.dkim.Selectors
    p, st = cal.run(t + 7 * DAY)
    assert ops(p) == ["DKIMRemove"] and "2026b" not in cal.dkim.Selectors and st.retired == ("2026b",)
    cal.dns.discard("2026b")  # the publisher (or the operator) deletes its record
    assert cal.stage_at(t + 8 * DAY) is Stage.SIGNING
    assert cal.memory["example.org"].retired == {}  # record gone: nothing left to remember

    # prepare: once 2026a is Every old, the next selector, named by mox's scheme, not signing
    assert cal.stage_at(MADE + 30 * DAY - HOUR) is Stage.SIGNING
    t = MADE + 30 * DAY
    p, st = cal.run(t)
    assert ops(p) == ["DKIMAdd"] and st.stage is Stage.PREPARE and st.next == "2026c"
    assert cal.dkim.Sign == ("2026a",) and "2026c" in cal.dkim.Selectors

    # publish: not in DNS yet -> waits and says why; seen -> waits PublishWait from the first sighting
    p, st = cal.run(t + 3 * DAY)
    assert p.empty and st.stage is Stage.PUBLISH
    assert "2026c._domainkey.example.org TXT is not in DNS" in st.pending[0].waiting_for
    cal.dns.add("2026c")
    seen = t + 3 * DAY + 6 * HOUR
    for h in range(0, 48, 12):
        assert cal.stage_at(seen + h * HOUR) is Stage.PUBLISH
    p, st = cal.run(seen + 48 * HOUR)
    assert st.stage is Stage.SWITCH and cal.dkim.Sign == ("2026c",) and ops(p) == ["DKIMSave"]
    switched = seen + 48 * HOUR

    # retire: RetireAfter after the switch (Expiration 72h is shorter), then 2026a is removed
    st = cal.run(switched + 7 * DAY - HOUR)[1]
    assert st.stage is Stage.RETIRE and st.pending[0].earliest == switched + 7 * DAY
    p, st = cal.run(switched + 7 * DAY)
    assert ops(p) == ["DKIMRemove"] and sorted(cal.dkim.Selectors) == ["2026c"]
    assert cal.memory["example.org"].retired.keys() == {"2026a"}
    assert [s for _, s in cal.seen_sign].count(("2026c",)) >= 2


def test_a_failed_check_a_gap_or_a_vanished_record_never_advances() -> None:
    cal = Calendar(rotating(), dns={"2026a", "2026b"})
    t = MADE + 30 * DAY
    cal.run(t)
    cal.dns.add("2026c")
    cal.run(t + HOUR)
    cal.failing = True  # resolver down when the wait is over: no switch
    st = cal.run(t + 50 * HOUR)[1]
    assert st.stage is Stage.PUBLISH and "the DNS check of 2026c._domainkey.example.org failed: timeout" in \
        st.pending[0].waiting_for
    cal.failing = False
    # 50 h without a sighting (more than PublishWait/4): the wait starts over
    st = cal.run(t + 51 * HOUR)[1]
    assert st.stage is Stage.PUBLISH and st.pending[0].earliest == t + 99 * HOUR
    cal.dns.discard("2026c")  # gone for a moment: starts over again
    cal.run(t + 60 * HOUR)
    cal.dns.add("2026c")
    for h in (61, 72, 84, 96, 108):
        assert cal.stage_at(t + h * HOUR) is Stage.PUBLISH
    assert cal.stage_at(t + 109 * HOUR) is Stage.SWITCH


def test_a_signing_record_that_disappears_blocks_retirement_loudly() -> None:
    cal = Calendar(rotating(), dns={"2026a", "2026b", "2026c"})
    t = MADE + 30 * DAY
    cal.run(t)
    for h in range(1, 50, 12):
        cal.run(t + h * HOUR)
    assert cal.dkim.Sign == ("2026c",)
    cal.dns.discard("2026c")
    p, st = cal.run(t + 20 * DAY)
    assert st.stage is Stage.BLOCKED and p.empty and "2026a" in cal.dkim.Selectors
    assert st.problems == ("selector 2026c signs, but 2026c._domainkey.example.org TXT is not in DNS: verifiers "
                           "cannot check its signatures; retiring 2026a, 2026b is blocked until the record is back",)
    assert [x.earliest for x in st.pending if x.step == "retire"] == [None, None]
    cal.dns.add("2026c")
    p, st = cal.run(t + 21 * DAY)
    assert ops(p) == ["DKIMRemove", "DKIMRemove"] and sorted(cal.dkim.Selectors) == ["2026c"]


def test_retirement_waits_for_the_signature_expiration() -> None:
    live = copy.deepcopy(LIVE)
    dkim = live.Domains["example.org"].DKIM  # type: ignore[union-attr]
    object.__setattr__(dkim.Selectors["2026b"], "Expiration", "720h")
    cal = Calendar(rotating(), live=live, dns={"2026a", "2026b"})
    cal.run(MADE + DAY)
    st = cal.run(MADE + 8 * DAY)[1]  # RetireAfter passed, Expiration not
    (retire,) = [x for x in st.pending if x.step == "retire"]
    assert st.stage is Stage.RETIRE and retire.earliest == MADE + 31 * DAY
    assert "720h0m0s after it stopped signing" in retire.waiting_for
    assert "DKIMRemove" not in ops(cal.run(MADE + 31 * DAY - HOUR)[0])
    assert "DKIMRemove" in ops(cal.run(MADE + 31 * DAY)[0])


def test_a_new_domain_signs_only_once_its_first_record_was_seen() -> None:
    doc = rotating(None, **{"new.example": {"ReportsAccount": "alice", "DKIM": {"Rotation": {
        "Every": "2160h", "Algorithm": "ed25519"}}}})
    doc["Accounts"]["alice"]["Destinations"]["alice@new.example"] = {}
    cal = Calendar(doc, domain="new.example")
    t = MADE + DAY
    p, st = cal.run(t)
    assert "DomainAdd" in ops(p) and st.stage is Stage.PREPARE and st.next == "2026a"
    assert cal.dkim.Sign == () and list(cal.dkim.Selectors) == ["2026a"]
    assert cal.dkim.Selectors["2026a"].PrivateKeyFile.endswith(".ed25519.privatekey.pkcs8.pem")
    cal.dns.add("2026a")
    for h in range(1, 49, 12):
        assert cal.stage_at(t + h * HOUR) is Stage.PUBLISH and cal.dkim.Sign == ()
    assert cal.stage_at(t + 49 * HOUR) is Stage.SWITCH and cal.dkim.Sign == ("2026a",)
    assert cal.stage_at(t + 50 * HOUR) is Stage.SIGNING


def test_no_selector_name_left_is_a_problem() -> None:
    cal = Calendar(rotating(), dns={"2026a", "2026b"}, used={f"2026{c}" for c in "abcdefghijklmnopqrstuvwxyz"})
    at = datetime(2026, 12, 30, 12).astimezone()
    p, st = cal.run(at)
    assert p.empty and st.problems == ("no selector name left for 2026 (<year>a to <year>z are used); the rotation "
                                       "waits for the next year",)


def test_a_new_domain_selector_gets_the_algorithm_it_asks_for() -> None:
    """Not rotation only: DomainAdd's default selector of the same name would get an RSA key."""
    doc = imported()
    doc["Domains"]["new.example"] = {"ReportsAccount": "alice", "DKIM": {
        "Selectors": {"2026a": {"Algorithm": "ed25519"}}, "Sign": ["2026a"]}}
    doc["Accounts"]["alice"]["Destinations"]["alice@new.example"] = {}
    at = datetime(2026, 12, 1, 12).astimezone()
    p = make_plan(PlanInput(state(doc), STATIC, LIVE, ALL, at))
    (key,) = p.new_keys.items()
    assert key[1] == "ed25519" and key[0].startswith("dkim/2026a._domainkey.new.example.")
    after = fold(p.operations, LIVE, Context(STATIC, at)).dynamic
    assert make_plan(PlanInput(state(doc), STATIC, after, ALL, at)).empty
