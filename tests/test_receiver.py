"""The push receiver on loopback: GitHub, GitLab and generic HMAC signatures accepted, everything
unsigned or wrongly signed refused with 401 and no run requested, bursts folded into one run."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ReconcilerError
from reconciler.loop.receiver import MAX_BODY, Receiver, read_secret, verify
from reconciler.loop.run import Received, Trigger
from reconciler.loop.watch import Wakeup

SECRET = b"hook-secret-0123456789"
BODY = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()


def sig(body: bytes = BODY, secret: bytes = SECRET, algo: str = "sha256") -> str:
    return f"{algo}=" + hmac.new(secret, body, getattr(hashlib, algo)).hexdigest()


class Hooks:
    def __init__(self) -> None:
        self.waker = Wakeup()
        self.outcomes: list[Received] = []
        self.receiver = Receiver("127.0.0.1:0", SECRET, "mail-a", lambda: self.waker.request_run(Trigger.WEBHOOK),
                                 count=self.outcomes.append)

    def post(self, headers: dict[str, str], body: bytes = BODY, path: str = "/hook",
             method: str = "POST") -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.receiver.port, timeout=30)
        try:
            conn.request(method, path, body=body if method == "POST" else None, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()


@pytest.fixture(scope="module")
def _server() -> Iterator[Hooks]:
    h = Hooks()
    try:
        yield h
    finally:
        h.receiver.close()


@pytest.fixture
def hooks(_server: Hooks) -> Hooks:
    """The module's receiver, with nothing received yet."""
    _server.outcomes.clear()
    _server.waker.take_requested()
    return _server


GOOD = [
    ("github", {"X-Hub-Signature-256": sig(), "X-GitHub-Event": "push"}),
    ("gitea", {"X-Hub-Signature-256": sig(), "X-Gitea-Event": "push"}),
    ("gitlab", {"X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event": "Push Hook"}),
    ("gitlab-tag", {"X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event": "Tag Push Hook"}),
    ("generic-sha256", {"X-Signature": sig()}),
    ("generic-sha512", {"X-Signature": sig(algo="sha512")}),
]


@pytest.mark.parametrize(("name", "headers"), GOOD, ids=[g[0] for g in GOOD])
def test_signed_pushes_request_a_run(hooks: Hooks, name: str, headers: dict[str, str]) -> None:
    code, body = hooks.post(headers)
    assert code == 202 and body["status"] == "accepted" and body["instance"] == "mail-a"
    assert hooks.waker.take_requested() is Trigger.WEBHOOK
    assert hooks.outcomes == [Received.ACCEPTED]


BAD = [
    ("unsigned", {}),
    ("github-wrong-secret", {"X-Hub-Signature-256": sig(secret=b"other"), "X-GitHub-Event": "push"}),
    ("github-other-body", {"X-Hub-Signature-256": sig(BODY + b" "), "X-GitHub-Event": "push"}),
    ("github-sha1", {"X-Hub-Signature-256": "sha1=" + hmac.new(SECRET, BODY, hashlib.sha1).hexdigest()}),
    ("github-empty", {"X-Hub-Signature-256": ""}),
    ("gitlab-wrong-token", {"X-Gitlab-Token": "nope", "X-Gitlab-Event": "Push Hook"}),
    ("gitlab-token-prefix", {"X-Gitlab-Token": SECRET.decode()[:-1], "X-Gitlab-Event": "Push Hook"}),
    ("generic-wrong", {"X-Signature": sig(secret=b"x")}),
    ("generic-unknown-algo", {"X-Signature": "md5=" + hashlib.md5(BODY).hexdigest()}),
    # A valid GitHub signature sent as a GitLab token does not pass.
    ("mixed", {"X-Gitlab-Token": sig(), "X-Gitlab-Event": "Push Hook"}),
]


@pytest.mark.parametrize(("name", "headers"), BAD, ids=[b[0] for b in BAD])
def test_bad_signatures_get_401_and_change_nothing(hooks: Hooks, name: str, headers: dict[str, str]) -> None:
    code, body = hooks.post(headers)
    assert code == 401 and body["status"] == "refused"
    assert hooks.waker.take_requested() is None
    assert hooks.outcomes == [Received.REFUSED]


def test_other_events_are_answered_not_run(hooks: Hooks) -> None:
    assert hooks.post({"X-Hub-Signature-256": sig(), "X-GitHub-Event": "ping"})[0] == 200
    assert hooks.post({"X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event": "Merge Request Hook"})[0] == 200
    assert hooks.waker.take_requested() is None
    assert hooks.outcomes == [Received.IGNORED, Received.IGNORED]


def test_burst_is_folded_into_one_run(hooks: Hooks) -> None:
    for _ in range(5):
        assert hooks.post({"X-Hub-Signature-256": sig(), "X-GitHub-Event": "push"})[0] == 202
    assert hooks.waker.take_requested() is Trigger.WEBHOOK
    assert hooks.waker.take_requested() is None  # five pushes, one run
    assert hooks.outcomes == [Received.ACCEPTED] * 5


def test_paths_methods_and_sizes(hooks: Hooks) -> None:
    good = {"X-Hub-Signature-256": sig(), "X-GitHub-Event": "push"}
    assert hooks.post(good, path="/hook/mail-a")[0] == 202
    assert hooks.post(good, path="/hook/mail-b")[0] == 404  # another instance's path
    assert hooks.post(good, path="/")[0] == 404
    assert hooks.post({}, method="GET")[0] == 405
    assert hooks.outcomes == [Received.ACCEPTED]
    # Too large: refused from the header alone, before the body is read.
    conn = http.client.HTTPConnection("127.0.0.1", hooks.receiver.port, timeout=30)
    try:
        conn.putrequest("POST", "/hook")
        conn.putheader("Content-Length", str(MAX_BODY + 1))
        conn.putheader("X-Signature", sig())
        conn.endheaders()
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", hooks.receiver.port, timeout=30)
    try:
        conn.putrequest("POST", "/hook", skip_accept_encoding=True)
        conn.endheaders()  # no Content-Length
        assert conn.getresponse().status == 411
    finally:
        conn.close()
    assert hooks.waker.take_requested() is Trigger.WEBHOOK and hooks.waker.take_requested() is None


def test_verify_is_pure() -> None:
    v = verify({"X-Hub-Signature-256": sig().upper().replace("SHA256=", "sha256=")}, BODY, SECRET)
    assert v.outcome is Received.ACCEPTED  # hex digits in either case


def test_secret_files(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_bytes(SECRET + b"\n")
    assert read_secret(f, "--receiver-secret-file") == SECRET
    f.write_text("\n")
    with pytest.raises(ReconcilerError, match=r"--receiver-secret-file .*: the file is empty"):
        read_secret(f, "--receiver-secret-file")
    with pytest.raises(ReconcilerError, match="cannot read"):
        read_secret(tmp_path / "nope", "--receiver-secret-file")
