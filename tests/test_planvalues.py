"""Old -> new values in plans: the differences of one operation, field by field, key by key and
element by element; secrets redacted by one rule; one-line text for the renderers. The live
config is golden step 09 (accounts alice and bob, alias team@example.org)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.mox import config as mc
from reconciler.mox import sconf
from reconciler.mox.admin import AccountSave, AddressRemove, Context
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.golang import parse_duration
from reconciler.mox.secret import REDACTED, Secret
from reconciler.plan.document import Action, ValueChange, ValueKind
from reconciler.plan.objects import ObjectRef
from reconciler.plan.values import (
    change_text,
    changed_values,
    path_text,
    shown,
    value_changes,
    value_text,
)

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
STATIC: Static = sconf.parse((GOLDEN / "instance" / "config" / "mox.conf").read_text(), Static, "mox.conf")
LIVE: Dynamic = sconf.parse((GOLDEN / "steps" / "09-alias-add-team" / "domains.conf").read_text(),
                            Dynamic, "domains.conf")
CTX = Context(STATIC, datetime(2026, 12, 1, tzinfo=UTC))


def lines(changes: list[ValueChange]) -> list[str]:
    return [change_text(c) for c in changes]


def test_fields_keys_and_elements() -> None:
    bob = LIVE.Accounts["bob"]
    dests = {k: v for k, v in bob.Destinations.items() if k != "bob.smith@example.org"}
    dests["bob@example.org"] = mc.Destination(Mailbox="Inbox/bob")
    dests["robert@example.org"] = mc.Destination()
    new = dataclasses.replace(bob, FullName="Bob Smith", Destinations=dests, IMAPCapabilitiesDisabled=("IDLE",),
                              SubjectPass=mc.SubjectPass(Period=parse_duration("24h")))
    got = value_changes(bob, new)
    assert lines(got) == [
        'FullName: "" → "Bob Smith"',
        '- Destinations[bob.smith@example.org]: {}',
        'Destinations[bob@example.org].Mailbox: "" → "Inbox/bob"',
        '+ Destinations[robert@example.org]: {}',
        'SubjectPass.Period: "12h0m0s" → "24h0m0s"',  # durations as Go writes them
        '+ IMAPCapabilitiesDisabled: "IDLE"',
    ]
    assert (got[1].path, got[1].kind, got[1].new) == (["Destinations", "bob.smith@example.org"], ValueKind.REMOVE, None)
    assert got[3].new == {"Mailbox": "", "Rulesets": [], "SMTPError": "", "MessageAuthRequiredSMTPError": "",
                          "FullName": ""}  # the JSON has the whole value
    assert value_changes(bob, bob) == []


def test_lists_blocks_and_order() -> None:
    org = LIVE.Domains["example.org"]
    sign = org.DKIM.Sign
    reordered = dataclasses.replace(org, DKIM=dataclasses.replace(org.DKIM, Sign=(*sign, "extra")), DMARC=None)
    assert lines(value_changes(org, reordered))[:1] == ['+ DKIM.Sign: "extra"']
    assert lines(value_changes(org, reordered))[1].startswith('DMARC: {"Localpart": "dmarcreports"')
    assert lines(value_changes(org, reordered))[1].endswith("→ null")
    members = org.Aliases["team"].Addresses
    swapped = dataclasses.replace(org, Aliases={"team": dataclasses.replace(org.Aliases["team"],
                                                                            Addresses=tuple(reversed(members)))})
    assert lines(value_changes(org, swapped)) == [
        'Aliases[team].Addresses: ["alice@example.org", "bob@example.org"] → ["bob@example.org", "alice@example.org"]']


def test_secrets_are_redacted_in_every_shape() -> None:
    acc = LIVE.Accounts["alice"]
    hook = mc.OutgoingWebhook(URL="https://hooks.example/x", Authorization="Bearer s3cret")
    with_hook = dataclasses.replace(acc, OutgoingWebhook=hook)
    other = dataclasses.replace(acc, OutgoingWebhook=dataclasses.replace(hook, Authorization="Bearer n3w"))
    for changes in (value_changes(acc, with_hook), value_changes(with_hook, other), value_changes(with_hook, acc)):
        assert changes and "s3cret" not in repr(changes) and "n3w" not in repr(changes)
        assert "s3cret" not in "".join(lines(changes)) and "n3w" not in "".join(lines(changes))
    assert lines(value_changes(with_hook, other)) == ['OutgoingWebhook.Authorization: "<redacted>" → "<redacted>"']
    assert shown(["Authorization"], "") == ""  # unset is not a secret
    assert shown(["Transports", "x", "Password"], "pw") == REDACTED

    # a value read from a secret reference shows where it came from, never its text
    ref = Secret("Bearer fr0m-file", "file /run/secrets/hook")
    from_file = dataclasses.replace(acc, OutgoingWebhook=dataclasses.replace(hook, Authorization=ref))
    assert lines(value_changes(with_hook, from_file)) == [
        'OutgoingWebhook.Authorization: "<redacted>" → "<secret from file /run/secrets/hook>"']
    assert shown([], {"URL": "u", "Authorization": ref}) == {"URL": "u",
                                                             "Authorization": "<secret from file /run/secrets/hook>"}


def test_text_is_one_shortened_line() -> None:
    assert value_text("two\nlines\x1b[31m") == '"two\\nlines\\u001b[31m"'
    long = "x" * 300
    text = value_text(long)
    assert len(text) < 110 and text.endswith("…(+222 chars)") and text.startswith('"xxx')
    assert value_text({"Mailbox": "", "FullName": "A"}) == '{"FullName": "A"}'
    assert path_text(["DKIM", "Selectors", "2026a", "Hash"]) == "DKIM.Selectors[2026a].Hash"
    assert path_text(["Aliases", "team", "Addresses"]) == "Aliases[team].Addresses"


def test_side_effects_on_other_objects() -> None:
    """mox's AddressRemove also takes the address out of aliases: the plan shows that too."""
    op = AddressRemove("bob@example.org")
    after = op.apply(LIVE, CTX).dynamic
    got = changed_values(op, ObjectRef.account("bob"), Action.UPDATE, LIVE, after)
    assert lines(list(got)) == ['- Destinations[bob@example.org]: {}',
                                '- domain/example.org Aliases[team].Addresses: "bob@example.org"']
    assert got[1].object == "domain/example.org" and got[0].object is None
    # a created or removed object: no values of its own
    save = AccountSave("bob", {"FullName": "B"})
    assert changed_values(save, ObjectRef.account("bob"), Action.DELETE, LIVE, save.apply(LIVE, CTX).dynamic) == ()


def test_global_settings() -> None:
    from reconciler.mox.admin import ConfigSave

    op = ConfigSave({"MonitorDNSBLs": ("dnsbl.example",)})
    after = op.apply(LIVE, CTX).dynamic
    got: Any = changed_values(op, ObjectRef.parse("config"), Action.UPDATE, LIVE, after)
    assert lines(list(got)) == ['+ MonitorDNSBLs: "dnsbl.example"']
