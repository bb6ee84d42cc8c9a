"""`domain_to_mox` takes the domain-independent parts of DomainAdd's template from one template
per (host, MTA-STS listener, time) and the client settings domain per domain: the same values as
each domain's own template (`domain_template`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.desired import tomox
from reconciler.desired.models import DesiredDomain
from reconciler.mox import config as mc
from reconciler.mox.admin import client_settings_domain

_MTASTS = mc.Static(Hostname="Mail.Example.ORG", Listeners={"public": mc.Listener(
    MTASTSHTTPS=mc.ListenerPort(Enabled=True))})
_PLAIN = mc.Static(Hostname="mail.example.org")


@pytest.mark.parametrize("static", [_MTASTS, _PLAIN], ids=["mtasts", "plain"])
@pytest.mark.parametrize("now", [None, datetime(2026, 12, 31, 23, 30, tzinfo=UTC), datetime(2027, 1, 1, 0, 30)])
@pytest.mark.parametrize("name", ["example.org", "café.example", "xn--caf-dma.example", "Bad Name", "a_b.example"])
def test_shared_template_parts_equal_the_domains_own(static: mc.Static, now: datetime | None, name: str) -> None:
    d = DesiredDomain(ReportsAccount="alice")
    own = tomox.domain_template(name, d.ReportsAccount, static.Hostname, tomox.mtasts_listener(static), now)
    assert (own.MTASTS is not None) == (static is _MTASTS) and (own.DKIM.Selectors != {}) == (now is not None)
    shared = tomox._shared_template(static.Hostname, tomox.mtasts_listener(static), now)
    assert (shared.DKIM, shared.MTASTS, shared.LocalpartCatchallSeparator) == (
        own.DKIM, own.MTASTS, own.LocalpartCatchallSeparator)
    assert client_settings_domain(tomox._dns_domain(name)) == own.ClientSettingsDomain
    conf = tomox.domain_to_mox(name, d, static, None, now)
    assert (conf.DKIM, conf.MTASTS, conf.ClientSettingsDomain) == (own.DKIM, own.MTASTS, own.ClientSettingsDomain)
