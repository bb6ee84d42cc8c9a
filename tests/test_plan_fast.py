"""The planner's shortcuts for unchanged objects give the plan it gives without them.

A target equal to its live object is that object (`planner._as_live`), and the phases skip a
domain or account the simulated config still holds as it is (`settled_domain`,
`settled_account`); `keep_owner_fields` returns such an account as it is. Without `_as_live`
(patched to keep the converted target) no shortcut is taken: the plans must be equal.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from reconciler.desired.checks import check
from reconciler.desired.models import DesiredState
from reconciler.mox.config import Destination, Dynamic
from reconciler.plan import planner
from reconciler.plan.planner import Plan, PlanInput, make_plan

from .test_plan import ALL, LIVE, NOW, STATIC, edited, imported


def _both(s: DesiredState, live: Dynamic = LIVE) -> tuple[Plan, Plan]:
    fast = make_plan(PlanInput(s, STATIC, live, ALL, NOW))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(planner, "_as_live", lambda target, live: target)
        slow = make_plan(PlanInput(s, STATIC, live, ALL, NOW))
    return fast, slow


def _same(fast: Plan, slow: Plan) -> None:
    assert [st.op.to_json() for st in fast.steps] == [st.op.to_json() for st in slow.steps]
    assert fast == slow


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_edited_states_plan_the_same_with_and_without_shortcuts(doc: dict[str, Any]) -> None:
    s = DesiredState.model_validate(doc)
    assume(check(s) == [])
    _same(*_both(s))


def test_unchanged_state_takes_the_shortcuts() -> None:
    s = DesiredState.model_validate(imported())
    fast, slow = _both(s)
    _same(fast, slow)
    assert fast.empty
    # the result shares the live objects (and nothing was converted again into it)
    assert all(fast.result.Domains[n] is LIVE.Domains[n] for n in LIVE.Domains)
    assert all(fast.result.Accounts[n] is LIVE.Accounts[n] for n in LIVE.Accounts)


@pytest.mark.parametrize("policy", ["keep", "enforce"])
def test_an_account_with_one_address_spelled_twice_plans_the_same(policy: str) -> None:
    """Two keys of one account that are one address: the phases decide which stays, so the
    account is never taken as settled."""
    alice = LIVE.Accounts["alice"]
    key = next(k for k in alice.Destinations if "@" in k)
    twice = {**alice.Destinations, key.upper(): Destination(Mailbox="Other")}
    live = replace(LIVE, Accounts={**LIVE.Accounts, "alice": replace(alice, Destinations=twice)})
    doc = copy.deepcopy(imported())
    doc["Accounts"]["alice"]["Destinations"] = {k: ({"Mailbox": v.Mailbox} if v.Mailbox else {})
                                                for k, v in twice.items()}
    doc.setdefault("Policy", {})["SelfService"] = policy
    s = DesiredState.model_validate(doc)
    fast, slow = _both(s, live)
    _same(fast, slow)
    assert fast.result.Accounts["alice"] == slow.result.Accounts["alice"]


def test_canonical_forms_carried_across_configs_equal_fresh_ones() -> None:
    """The memo of canonical forms moves from config to config keeping what a change does not
    touch: after each change (domains added, removed, replaced; case sensitivity, separators and
    reporting addresses naming other domains changed) every key's form is the fresh one."""
    import random

    from reconciler.mox.admin import canonical_address
    from reconciler.mox.config import DMARC, TLSRPT
    from reconciler.mox.names import ParseError, parse_address, parse_domain

    rng = random.Random(5)
    names = ["example.org", "café.example", "example.net", "new.example", "other.example"]
    keys = [k for a in LIVE.Accounts.values() for k in a.Destinations]
    keys += [f"{lp}@{d}" for lp in ("Bob", "x+tag", "dmarcreports+x", "TLSReports", '"a b"', "Rep+orts", "rep+orts") for d in names]
    keys += ["@EXAMPLE.org", "not an address", "nobody@unknown.example"]
    domains = dict(LIVE.Domains)
    base = LIVE.Domains["example.org"]
    for _ in range(150):
        domains = dict(domains)  # a new mapping, as every operation makes (configs are never changed)
        name = rng.choice(names)
        how = rng.randrange(4)
        if how == 0 and len(domains) > 1:
            domains.pop(name, None)
        else:
            other = rng.choice(names)
            domains[name] = replace(
                domains.get(name, base),
                LocalpartCaseSensitive=rng.random() < 0.5,
                LocalpartCatchallSeparator=rng.choice(["", "+", "-"]),
                DMARC=DMARC(Localpart=rng.choice(["dmarcreports", "DMARC", "Rep+orts"]), Domain=rng.choice(["", other]),
                            Account="alice", Mailbox="DMARC") if rng.random() < 0.8 else None,
                TLSRPT=TLSRPT(Localpart="tlsreports", Domain=rng.choice(["", other]), Account="alice",
                              Mailbox="TLSRPT"))
        dyn = replace(LIVE, Domains=domains)
        for key in rng.sample(keys, len(keys)):
            try:
                want = ("@" + parse_domain(key[1:]).name() if key.startswith("@")
                        else canonical_address(dyn, parse_address(key)))
            except ParseError:
                want = key
            assert planner._canon(dyn, key) == want, (key, how, name)
