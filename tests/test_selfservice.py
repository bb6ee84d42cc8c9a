"""Self-service settings (reconciler.plan.selfservice): what an account's user changes in mox's
account web interface is set at creation and kept afterwards (`Policy.SelfService: keep`), or
set from git (`enforce`), per account overridable; the plan lists what it keeps.

The live config is golden step 09 (accounts admin, alice, bob); the desired states are `import`
of it with edits, planned by the pure planner. The real-mox test (a FullName saved through mox's
own account API, surviving the next apply) is in tests/test_confirm_mox.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.mox.selfservice import ACCOUNT_FIELDS, DESTINATION_FIELDS
from reconciler.plan.planner import Plan, plan_document
from reconciler.plan.render import render_markdown, render_text

from .test_plan import LIVE, imported, plan, refold_is_empty

# A desired value for each self-service field of an account that differs from bob's live one.
CHANGED: dict[str, Any] = {
    "OutgoingWebhook": {"URL": "https://hooks.example/out"},
    "IncomingWebhook": {"URL": "https://hooks.example/in"},
    "FromIDLoginAddresses": ["bob@example.org"],
    "KeepRetiredMessagePeriod": "24h0m0s",
    "KeepRetiredWebhookPeriod": "1h0m0s",
    "FullName": "Bob Smith",
    "RejectsMailbox": "Junk-rejects",
    "KeepRejects": True,
    "Introbox": "Introbox",
    "AutomaticJunkFlags": {"Enabled": False},
    "JunkFilter": None,
    "IMAPCapabilitiesDisabled": ["CONDSTORE"],
}


def kept(p: Plan) -> list[tuple[str, str]]:
    return [(k.account, k.field) for k in p.kept]


def test_every_self_service_field_has_a_case_here() -> None:
    assert set(CHANGED) == set(ACCOUNT_FIELDS)
    assert DESTINATION_FIELDS == ("Mailbox", "Rulesets", "FullName")


@pytest.mark.parametrize("field", ACCOUNT_FIELDS)
def test_a_self_service_field_of_an_existing_account_is_kept_by_default(field: str) -> None:
    doc = imported()
    doc["Accounts"]["bob"][field] = CHANGED[field]
    p = plan(doc)
    assert p.empty and kept(p) == [("bob", field)]
    assert p.result.Accounts["bob"] == LIVE.Accounts["bob"]


@pytest.mark.parametrize("field", ACCOUNT_FIELDS)
def test_enforce_sets_it_from_git(field: str) -> None:
    doc = imported()
    doc["Policy"] = {"SelfService": "enforce"}
    doc["Accounts"]["bob"][field] = CHANGED[field]
    p = plan(doc)
    assert [(s.op.to_json()["op"], s.object) for s in p.steps] == [("AccountSave", "account/bob")]
    assert list(p.steps[0].op.to_json()["fields"]) == [field]
    assert kept(p) == []
    refold_is_empty(doc, p)


def test_the_account_overrides_the_policy_both_ways() -> None:
    doc = imported()
    doc["Policy"] = {"SelfService": "enforce"}
    doc["Accounts"]["bob"]["FullName"] = "Bob Smith"
    doc["Accounts"]["bob"]["SelfService"] = "keep"
    doc["Accounts"]["alice"]["FullName"] = "Alice"
    p = plan(doc)
    assert [s.object for s in p.steps] == ["account/alice"] and kept(p) == [("bob", "FullName")]

    doc["Policy"] = {"SelfService": "keep"}
    doc["Accounts"]["bob"]["SelfService"] = "enforce"
    doc["Accounts"]["alice"].pop("SelfService", None)
    p = plan(doc)
    assert [s.object for s in p.steps] == ["account/bob"] and kept(p) == [("alice", "FullName")]


def test_other_fields_stay_managed_beside_kept_ones() -> None:
    doc = imported()
    bob = doc["Accounts"]["bob"]
    bob["FullName"] = "Bob Smith"
    bob["Description"] = "Bob's mailbox"
    bob["Destinations"]["bob@example.org"] = {"Mailbox": "Bob", "SMTPError": "550 gone"}
    p = plan(doc)
    (step,) = p.steps
    fields = step.op.to_json()["fields"]
    assert set(fields) == {"Description", "Destinations"}
    # SMTPError is git's, Mailbox is the user's: only SMTPError changes.
    dest = fields["Destinations"]["bob@example.org"]
    assert (dest["SMTPError"], dest["Mailbox"]) == ("550 gone", "")
    assert kept(p) == [("bob", "FullName"), ("bob", "Destinations[bob@example.org].Mailbox")]
    refold_is_empty(doc, p)


def test_destination_fields_of_an_existing_address_are_kept_a_new_address_gets_git_values() -> None:
    doc = imported()
    dests = doc["Accounts"]["alice"]["Destinations"]
    dests["alice@example.org"] = {"Mailbox": "Alice", "FullName": "Alice A.",
                                  "Rulesets": [{"MsgFromRegexp": "^x", "Mailbox": "X"}]}
    dests["alice.new@example.org"] = {"Mailbox": "New", "FullName": "Alice N."}
    p = plan(doc)
    assert kept(p) == [("alice", f"Destinations[alice@example.org].{f}") for f in ("Mailbox", "Rulesets", "FullName")]
    result = p.result.Accounts["alice"].Destinations
    assert result["alice@example.org"] == LIVE.Accounts["alice"].Destinations["alice@example.org"]
    assert (result["alice.new@example.org"].Mailbox, result["alice.new@example.org"].FullName) == ("New", "Alice N.")
    refold_is_empty(doc, p)


def test_a_new_account_gets_its_self_service_fields_from_git() -> None:
    doc = imported()
    doc["Accounts"]["carol"] = {"FullName": "Carol", "KeepRejects": True,
                                "Destinations": {"carol@example.org": {"Mailbox": "Carol"}}}
    p = plan(doc)
    carol = p.result.Accounts["carol"]
    assert (carol.FullName, carol.KeepRejects, carol.Destinations["carol@example.org"].Mailbox) == (
        "Carol", True, "Carol")
    assert kept(p) == []
    refold_is_empty(doc, p)


def test_the_plan_document_and_renderers_list_what_is_kept() -> None:
    doc = imported()
    doc["Accounts"]["bob"]["FullName"] = "Bob Smith"
    doc["Accounts"]["bob"]["Destinations"]["bob@example.org"] = {"Mailbox": "Bob"}
    doc["Accounts"]["alice"]["JunkFilter"] = None
    p = plan(doc)
    pd = plan_document(p, source=None, live_path="/x/domains.conf", live_digest="0" * 64)
    assert [(k.object, k.field) for k in pd.kept_self_service] == [
        ("account/alice", "JunkFilter"), ("account/bob", "FullName"),
        ("account/bob", "Destinations[bob@example.org].Mailbox")]
    assert pd.to_json()["kept_self_service"][0] == {"object": "account/alice", "field": "JunkFilter"}
    text = render_text(pd)
    assert "= account/alice: JunkFilter changed in mox by the account's user (kept)\n" in text
    assert ("= account/bob: FullName, Destinations[bob@example.org].Mailbox changed in mox by the "
            "account's user (kept)\n") in text
    assert "No changes." in text  # kept settings are not changes
    md = render_markdown(pd)
    assert "#### Self-service settings (kept)" in md
    assert "- <code>account/bob</code>: FullName, Destinations[bob@example.org].Mailbox changed in mox by the account's user (kept)" in md


def test_import_writes_self_service_fields_so_a_new_server_gets_them() -> None:
    import dataclasses

    from reconciler.desired.importer import import_live
    from reconciler.mox import config as mc

    from .test_plan import STATIC, state

    bob = dataclasses.replace(LIVE.Accounts["bob"], FullName="Bob Smith", KeepRejects=True,
                              Destinations={**LIVE.Accounts["bob"].Destinations,
                                            "bob@example.org": mc.Destination(Mailbox="Bob")})
    live = dataclasses.replace(LIVE, Accounts={**LIVE.Accounts, "bob": bob})
    doc = import_live(STATIC, live)
    assert doc["Accounts"]["bob"]["FullName"] == "Bob Smith" and doc["Accounts"]["bob"]["KeepRejects"] is True
    assert doc["Accounts"]["bob"]["Destinations"]["bob@example.org"] == {"Mailbox": "Bob"}
    # On a new server, bob is created from the import exactly as he is here.
    assert state(doc).account_to_mox("bob") == bob
