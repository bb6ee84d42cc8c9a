"""One conversion pass with a memo (`tomox.Memo`: the planner's targets) gives what converting
each object alone gives, on states whose equal sub-models are shared as the loader shares them
(`models.sharing_equal_models`), with some sub-models differing between objects."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings

from reconciler.desired import tomox
from reconciler.desired.models import DesiredState, sharing_equal_models

from .test_plan import LIVE, NOW, STATIC, edited, imported


def _shared(doc: dict[str, Any]) -> DesiredState:
    with sharing_equal_models():
        return DesiredState.model_validate(doc)


def _same_with_and_without_memo(s: DesiredState) -> tomox.Memo:
    memo: tomox.Memo = {}
    for name in sorted(s.Accounts):
        assert s.account_to_mox(name, memo) == s.account_to_mox(name), name
    for name in sorted(s.Domains):
        live = LIVE.Domains.get(name)
        assert s.domain_to_mox(name, STATIC, live, NOW, memo) == s.domain_to_mox(name, STATIC, live, NOW), name
    return memo


def _many() -> dict[str, Any]:
    """The imported state with copies of its accounts: the same sub-models in most, other
    values of them in some (a memo keyed by anything but the model would mix them up)."""
    doc = copy.deepcopy(imported())
    base = next(iter(doc["Accounts"].values()))
    for i in range(8):
        acc = copy.deepcopy(base)
        acc["Destinations"] = {f"u{i}@{k.split('@', 1)[1]}" if "@" in k else k: v
                               for k, v in base.get("Destinations", {}).items()}
        if i % 2:
            acc["JunkFilter"] = {"Threshold": 0.5 + i / 100, "Params": {"Onegrams": True, "TopWords": i}}
            acc["AutomaticJunkFlags"] = {"Enabled": True, "JunkMailboxRegexp": f"^junk{i}"}
            acc["SubjectPass"] = {"Period": f"{i}h"}
        acc["Destinations"] = {k: ({"Mailbox": f"Box{i % 3}"} if i % 3 else {}) for k in acc["Destinations"]}
        doc["Accounts"][f"copy{i}"] = acc
    return doc


def test_shared_and_differing_sub_models_convert_as_alone() -> None:
    s = _shared(_many())
    memo = _same_with_and_without_memo(s)
    # the sharing is real: fewer distinct sub-models than objects holding them
    junk = {id(a.JunkFilter) for a in s.Accounts.values() if a.JunkFilter is not None}
    assert 1 < len(junk) < len(s.Accounts)
    assert memo


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_edited_states_convert_the_same_with_a_memo(doc: dict[str, Any]) -> None:
    _same_with_and_without_memo(_shared(doc))
