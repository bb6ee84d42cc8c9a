"""Self-service settings stay the account owner's: the planner's target for an existing account
takes mox's live values of the fields its user edits in mox's account web interface
(`reconciler.mox.selfservice`), unless the policy is `enforce`.

So a value set when the account (or the address) was created, from the desired state or mox's
defaults, is never reverted afterwards; where git and mox differ, the plan lists the field as
kept instead of changing it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.mox import config as mc
from reconciler.mox.selfservice import ACCOUNT_FIELDS, DESTINATION_FIELDS


@dataclass(frozen=True, slots=True)
class Kept:
    """A field whose live value differs from the desired one and is kept (the owner's)."""

    account: str
    field: str  # `FullName`, or `Destinations[<address>].Mailbox`


def keep_owner_fields(name: str, target: mc.Account, live: mc.Account,
                      canon: Callable[[str], str]) -> tuple[mc.Account, list[Kept]]:
    """`target` with the live account's self-service values, and the fields that differed.

    Destinations are matched by `canon` (the address-index form), so `Alice@x` in git and
    `alice@x` in mox are one address; an address the plan adds gets the desired values.
    The target that is the live account itself (`planner._as_live`) comes back as it is.
    """
    live_dests = {canon(k): v for k, v in live.Destinations.items()}
    if target is live and len(live_dests) == len(live.Destinations):
        return live, []  # each address its own: nothing differs (the planner's unchanged accounts)
    kept: list[Kept] = []
    fields = {}
    for f in ACCOUNT_FIELDS:
        have, want = getattr(live, f), getattr(target, f)
        if have != want:
            fields[f] = have
            kept.append(Kept(name, f))
    dests = {}
    for key, want in target.Destinations.items():
        have = live_dests.get(canon(key))
        if have is not None:
            differs = [f for f in DESTINATION_FIELDS if getattr(have, f) != getattr(want, f)]
            if differs:
                want = dataclasses.replace(want, **{f: getattr(have, f) for f in differs})
                kept += [Kept(name, f"Destinations[{key}].{f}") for f in differs]
        dests[key] = want
    return dataclasses.replace(target, **fields, Destinations=dests), kept
