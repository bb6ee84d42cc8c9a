"""The watcher's events, end to end (the real CLI in a subprocess, a bare repository as the
remote): a signed push at --receiver-addr and SIGHUP each start a fetch + reconcile at once (the
interval is 10 minutes, so nothing else could), bad signatures start nothing; --notify posts
signed events for applied, failed, drift corrected and blocked to a loopback server, none with a
secret in it; status and JSON logs name the instance.

Markers only: every wait ends when the status file, the log or the capture server shows the
expected state; the deadlines only bound a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from .httpcapture import Request, capture_server
from .test_watch import NEW_DOMAIN, Env, applied, free_port, remove_address_by_hand, watching
from .test_watch import env as env  # the fixture

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_git")]

HOOK_SECRET = b"hook-secret-for-the-test-0123"
NOTIFY_SECRET = b"notify-secret-for-the-test-4567"
WEBHOOK_AUTH = "Bearer webhook-auth-secret-89ab"


def secret_file(env: Env, name: str, value: bytes) -> str:
    path = env.tmp / name
    path.write_bytes(value + b"\n")
    return str(path)


def post_hook(port: int, headers: dict[str, str], body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/hook", body=body, headers={"Content-Type": "application/json", **headers})
        return conn.getresponse().status
    finally:
        conn.close()


def triggers(env: Env) -> list[str]:
    return [h["trigger"] for h in env.status().get("history", [])]


def test_signed_push_and_sighup_reconcile_at_once(env: Env) -> None:
    port = free_port()
    first = str(env.work.head.commit.hexsha)
    with watching(env, "--interval", "10m", "--receiver-addr", f"127.0.0.1:{port}",
                  "--receiver-secret-file", secret_file(env, "hook", HOOK_SECRET)) as w:
        w.wait_for("the first reconcile", applied(env, first))
        w.wait_for("the receiver", lambda: any(r.get("msg", "").startswith("receiver: accepting") for r in w.logs()))
        sha = env.commit({"domain-example.org.yaml": NEW_DOMAIN}, "add example.org")
        body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
        good = "sha256=" + hmac.new(HOOK_SECRET, body, hashlib.sha256).hexdigest()
        bad = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
        # Refused: unsigned, and signed with another secret. Neither starts a run.
        assert post_hook(port, {"X-GitHub-Event": "push"}, body) == 401
        assert post_hook(port, {"X-GitHub-Event": "push", "X-Hub-Signature-256": bad}, body) == 401
        assert post_hook(port, {"X-GitHub-Event": "push", "X-Hub-Signature-256": good}, body) == 202
        st = w.wait_for("the pushed commit applied by the webhook run", lambda: applied(env, sha)() and env.status())
        assert triggers(env) == ["webhook", "start"]  # the refused requests started nothing
        assert "example.org" in env.live().Domains
        refused = [r for r in w.logs() if r.get("receiver") == "refused"]
        assert len(refused) == 2 and all(r["instance"] == w_instance(env) for r in refused)

        # SIGHUP: the same, from a signal.
        sha2 = env.commit({"domain-example.org.yaml": NEW_DOMAIN + "    Description: shop\n"}, "describe")
        w.proc.send_signal(signal.SIGHUP)
        w.wait_for("the commit applied by the SIGHUP run", applied(env, sha2))
        assert triggers(env)[:3] == ["sighup", "webhook", "start"]
        # The webhook run fetched first: its fetch log line names the pushed commit.
        fetches = [r for r in w.logs() if r.get("stage") == "fetch"]
        assert [(r["trigger"], r["commit"]) for r in fetches] == [("start", first), ("webhook", sha), ("sighup", sha2)]
        assert st["instance"] == w_instance(env)
        assert w.stop() == 0


def w_instance(env: Env) -> str:
    """The default instance name without --instance or --subdir: the host name."""
    import socket

    return socket.gethostname()


def verified(req: Request) -> dict[str, Any]:
    want = "sha256=" + hmac.new(NOTIFY_SECRET, req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Mox-Reconciler-Signature"], want), "bad signature"
    event: dict[str, Any] = json.loads(req.body)
    return event


def events(reqs: list[Request]) -> list[str]:
    return [json.loads(r.body)["type"] for r in reqs]


def test_notifications_for_applied_failed_drift_and_blocked(env: Env) -> None:
    with capture_server() as cap:
        hook_file = secret_file(env, "hook", HOOK_SECRET)
        with watching(env, "--instance", "mail-a", "--notify", cap.url, "--notify-secret-file",
                      secret_file(env, "notify", NOTIFY_SECRET), "--receiver-addr", f"127.0.0.1:{free_port()}",
                      "--receiver-secret-file", hook_file) as w:
            cap.wait_for("the applied event", lambda r: events(r) == ["applied"])
            env.commit({"domain-example.org.yaml": "Domains: [\n"}, "broken")
            cap.wait_for("the failed event", lambda r: events(r) == ["applied", "failed"])
            accounts = env.work.working_tree_dir and (Path(env.work.working_tree_dir) / "accounts.yaml").read_text()
            assert accounts
            # A new account with a webhook whose Authorization is a secret.
            temp = ("  temp:\n    Destinations:\n      temp@example.com: {}\n    OutgoingWebhook:\n"
                    f"      URL: https://hooks.example.org/mox\n      Authorization: {WEBHOOK_AUTH}\n")
            fixed = env.commit({"domain-example.org.yaml": NEW_DOMAIN, "accounts.yaml": accounts + temp}, "fixed")
            cap.wait_for("the fixed commit applied", lambda r: events(r)[-1:] == ["applied"] and len(r) == 3)
            w.wait_for("the status", applied(env, fixed))
            remove_address_by_hand(env, "admin", "info@example.com")
            cap.wait_for("the drift corrected", lambda r: events(r)[-1:] == ["drift_corrected"])
            env.commit({"accounts.yaml": accounts, "policy.yaml": "Policy:\n  Prune: true\n"}, "drop temp, prune")
            cap.wait_for("the blocked event", lambda r: events(r)[-1:] == ["blocked"])
            assert w.stop() == 0
        got = [verified(r) for r in cap.requests]
    assert [e["type"] for e in got] == ["applied", "failed", "applied", "drift_corrected", "blocked"]
    assert all(e["instance"] == "mail-a" for e in got)
    applied_ev, failed, fixed_ev, drift, blocked = got
    assert "add address info@example.com to account admin" in applied_ev["operations"]
    assert failed["reason"] == "DesiredInvalid" and "YAML syntax error" in failed["message"]
    assert failed["commit"]["subject"] == "broken"
    assert fixed_ev["commit"]["sha"] == fixed
    assert "add account temp with address temp@example.com" in fixed_ev["operations"]
    assert drift["operations"] == ["add address info@example.com to account admin"]
    assert blocked["reason"] == "PlanUnsafe" and "temp" in blocked["message"]
    for req in cap.requests:  # no secret in any event
        for secret in (WEBHOOK_AUTH, "webhook-auth-secret", NOTIFY_SECRET.decode(), HOOK_SECRET.decode()):
            assert secret not in req.body.decode()
    logs = [r for r in w.logs() if "msg" in r]
    assert logs and all(r.get("instance") == "mail-a" for r in logs)
    assert env.status()["instance"] == "mail-a"
