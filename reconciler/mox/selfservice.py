"""The fields of an account that its own user changes in mox's account web interface.

mox v0.0.17's webaccount/account.go lets a logged-in account save, at any time, these parts of
its own `Account` in domains.conf (each through admin.AccountSave): AccountSaveFullName,
DestinationSave (a destination's Mailbox, Rulesets and FullName: the web page edits those and
sends the rest back unchanged), OutgoingWebhookSave, IncomingWebhookSave,
FromIDLoginAddressesSave, KeepRetiredPeriodsSave, AutomaticJunkFlagsSave, JunkFilterSave,
RejectsSave, IntroboxSave and IMAPSave. Its password and TLS client public keys are in the
account's database, not in domains.conf.
"""

from __future__ import annotations

# `Account` fields (config/config.go), in the struct's order.
ACCOUNT_FIELDS = (
    "OutgoingWebhook",  # OutgoingWebhookSave
    "IncomingWebhook",  # IncomingWebhookSave
    "FromIDLoginAddresses",  # FromIDLoginAddressesSave
    "KeepRetiredMessagePeriod",  # KeepRetiredPeriodsSave
    "KeepRetiredWebhookPeriod",  # KeepRetiredPeriodsSave
    "FullName",  # AccountSaveFullName
    "RejectsMailbox",  # RejectsSave
    "KeepRejects",  # RejectsSave
    "Introbox",  # IntroboxSave
    "AutomaticJunkFlags",  # AutomaticJunkFlagsSave
    "JunkFilter",  # JunkFilterSave
    "IMAPCapabilitiesDisabled",  # IMAPSave
)

# `Destination` fields (config/config.go) of an existing address: DestinationSave.
DESTINATION_FIELDS = ("Mailbox", "Rulesets", "FullName")
