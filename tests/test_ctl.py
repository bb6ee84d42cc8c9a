"""The control-socket client (reconciler.mox.ctl) against a real `mox serve`, and its errors against
sockets that misbehave on purpose (missing, refused, someone else's, silent, not mox)."""

from __future__ import annotations

import imaplib
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.mox.ctl import AccountEntry, AliasInfo, Ctl
from reconciler.mox.errors import (
    CtlCommandFailed,
    CtlError,
    CtlNotRunning,
    CtlPermissionDenied,
    CtlProtocolError,
    CtlTimeout,
    CtlUnavailable,
)
from reconciler.mox.live import read_live

from .asuser import MOX_UID, STRANGER_UID, run_as
from .moxserver import ServedMox


def imap_login(port: int, user: str, password: str) -> bool:
    """An IMAP LOGIN over TLS on 127.0.0.1 (mox's self-signed certificate is not verified)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=30) as imap:
        try:
            imap.login(user, password)
        except imaplib.IMAP4.error:
            return False
        return True


# --- against a served mox


def test_version_line_and_accountlist_match_domains_conf(served_mox: ServedMox) -> None:
    ctl = served_mox.ctl()
    assert ctl.version() == "ctlv0"
    accounts = ctl.account_list()
    live = read_live(served_mox.instance.config_paths)
    assert [a.name for a in accounts] == sorted(live.dynamic.Accounts)
    assert AccountEntry("admin", login_disabled=False) in accounts


def test_for_config_finds_the_socket_through_mox_conf(served_mox: ServedMox) -> None:
    ctl = Ctl.for_config(served_mox.instance.mox_conf)
    assert ctl.path == str(served_mox.ctl_path)
    assert ctl.version() == "ctlv0"


def test_domainadd_accountadd_addressadd_visible_through_the_socket(served_mox: ServedMox) -> None:
    ctl = served_mox.ctl()
    ctl.domain_add("ctl-a.example", "ctlcarol", "carol")
    ctl.account_add("ctldave", "dave@ctl-a.example")
    ctl.address_add("dave.two@ctl-a.example", "ctldave")

    names = [a.name for a in ctl.account_list()]
    assert {"ctlcarol", "ctldave"} <= set(names)
    assert ctl.account_addresses("ctlcarol") == ["carol@ctl-a.example"]
    assert ctl.account_addresses("ctldave") == ["dave.two@ctl-a.example", "dave@ctl-a.example"]
    assert ctl.address_account("dave.two@ctl-a.example") == "ctldave"
    assert ctl.alias_list("ctl-a.example") == []
    # mox wrote it, and mox accepts what it wrote.
    live = read_live(served_mox.instance.config_paths)
    assert "ctl-a.example" in live.dynamic.Domains
    assert "dave.two@ctl-a.example" in live.dynamic.Accounts["ctldave"].Destinations
    assert served_mox.instance.config_test().ok

    with pytest.raises(CtlCommandFailed) as e:
        ctl.domain_add("ctl-a.example", "ctlcarol")
    assert "domain already present" in e.value.reply
    assert str(e.value).startswith("mox refused `domainadd false ctl-a.example ctlcarol `: adding domain:")
    with pytest.raises(CtlCommandFailed, match="no such account"):
        ctl.account_addresses("ctl-nobody")


def test_alias_commands_round_trip(served_mox: ServedMox) -> None:
    ctl = served_mox.ctl()
    a1, a2, team = "alias.one@mail.example.org", "alias.two@mail.example.org", "ctlteam@mail.example.org"
    ctl.address_add(a1, "admin")
    ctl.address_add(a2, "admin")
    ctl.alias_add(team, [a1], post_public=True)
    assert ctl.alias_list("mail.example.org") == [team]
    assert ctl.alias_print(team) == AliasInfo(True, False, False, (a1,))

    ctl.alias_update(team, list_members=True)  # the others stay as they are
    assert ctl.alias_print(team) == AliasInfo(True, True, False, (a1,))
    ctl.alias_update(team, post_public=False, allow_msg_from=True)
    assert ctl.alias_print(team) == AliasInfo(False, True, True, (a1,))

    ctl.alias_add_members(team, [a2])
    assert ctl.alias_print(team).members == (a1, a2)
    ctl.alias_remove_members(team, [a1])
    assert ctl.alias_print(team).members == (a2,)

    ctl.alias_remove(team)
    assert ctl.alias_list("mail.example.org") == []
    ctl.address_remove(a1)
    with pytest.raises(CtlCommandFailed, match="looking up address"):
        ctl.address_account(a1)
    assert ctl.address_account(a2) == "admin"


def test_domain_disable_remove_and_account_remove(served_mox: ServedMox) -> None:
    ctl = served_mox.ctl()
    paths = served_mox.instance.config_paths
    ctl.domain_add("ctl-c.example", "admin")  # an existing account: no localpart
    ctl.domain_set_disabled("ctl-c.example", True)
    assert read_live(paths).dynamic.Domains["ctl-c.example"].Disabled
    ctl.domain_set_disabled("ctl-c.example", False)
    assert not read_live(paths).dynamic.Domains["ctl-c.example"].Disabled
    ctl.domain_remove("ctl-c.example")
    with pytest.raises(CtlCommandFailed, match="no such domain"):
        ctl.alias_list("ctl-c.example")

    ctl.account_add("ctlerin", "erin@mail.example.org")
    assert "ctlerin" in [a.name for a in ctl.account_list()]
    ctl.account_remove("ctlerin")
    assert "ctlerin" not in [a.name for a in ctl.account_list()]


def test_setaccountpassword_then_imap_login(served_mox: ServedMox) -> None:
    ctl = served_mox.ctl()
    ctl.account_add("ctlimap", "imap.user@mail.example.org")
    password = "test-only correct horse 7"
    assert not imap_login(served_mox.imaps_port, "imap.user@mail.example.org", password)  # no password yet

    ctl.set_account_password("ctlimap", password)
    assert imap_login(served_mox.imaps_port, "imap.user@mail.example.org", password)
    assert not imap_login(served_mox.imaps_port, "imap.user@mail.example.org", password + "x")


def test_setaccountpassword_errors_never_show_the_password(served_mox: ServedMox) -> None:
    ctl = served_mox.ctl()
    short = "s3cr7!"  # mox wants at least 8 bytes
    with pytest.raises(CtlCommandFailed) as e:
        ctl.set_account_password("admin", short)
    assert "at least 8 characters" in str(e.value)
    assert short not in str(e.value) and short not in e.value.command
    assert str(e.value).startswith("mox refused `setaccountpassword admin`: ")

    with pytest.raises(CtlCommandFailed, match="setaccountpassword ctl-nobody") as e:
        ctl.set_account_password("ctl-nobody", "long enough secret 1")
    assert "long enough secret 1" not in str(e.value)

    with pytest.raises(CtlError) as e2:
        ctl.set_account_password("admin", "line one\nline two")
    assert "parameter 2 contains a newline" in str(e2.value)
    assert "line one" not in str(e2.value) and "line two" not in str(e2.value)


def test_mox_user_may_use_the_socket(served_mox: ServedMox) -> None:
    path = str(served_mox.ctl_path)
    accounts = run_as(MOX_UID, lambda: Ctl(path, timeout=10).account_list())
    assert AccountEntry("admin", False) in accounts


def test_another_user_is_denied_with_the_path_and_what_to_do(served_mox: ServedMox) -> None:
    path = str(served_mox.ctl_path)
    with pytest.raises(CtlPermissionDenied) as e:
        run_as(STRANGER_UID, lambda: Ctl(path, timeout=10).version())
    msg = str(e.value)
    assert path in msg and f"runs as uid {STRANGER_UID}" in msg
    assert "run as root or as mox's user" in msg
    assert e.value.path == path


# --- errors, against sockets that misbehave on purpose


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory path (unix socket paths are limited to 107 bytes) that uid 1000 can reach."""
    d = Path(tempfile.mkdtemp(prefix="ctl-"))
    d.chmod(0o755)
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def test_missing_socket_means_mox_not_running(sock_dir: Path) -> None:
    path = sock_dir / "data" / "ctl"
    with pytest.raises(CtlNotRunning) as e:
        Ctl(path).version()
    assert str(e.value) == (f"mox's control socket {path} does not exist: mox is not running (start it with "
                            f"`mox serve`), or mox.conf's DataDir is not this mox's data directory")


def test_refused_socket_means_mox_not_running(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # left behind, nobody listening: what a killed mox leaves
    with pytest.raises(CtlNotRunning, match="refuses connections: mox is not running") as e:
        Ctl(path).account_list()
    assert str(path) in str(e.value)


def test_a_file_that_is_not_a_socket(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    path.write_text("")
    with pytest.raises(CtlNotRunning, match="is not a socket"):
        Ctl(path).version()


def test_root_owned_0600_socket_denies_mox_user(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen(1)
        path.chmod(0o600)
        with pytest.raises(CtlPermissionDenied) as e:
            run_as(MOX_UID, lambda: Ctl(path, timeout=5).version())
    assert f"the socket is owned by uid 0 with mode 0600; this process runs as uid {MOX_UID}" in str(e.value)


def test_path_too_long_for_a_unix_socket() -> None:
    path = "/tmp/" + "d" * 120 + "/ctl"
    with pytest.raises(CtlNotRunning, match="longer than a unix socket path can be"):
        Ctl(path).version()


def test_newline_in_a_parameter_is_refused_before_sending(sock_dir: Path) -> None:
    # No socket exists: the check comes first, so this is not a "not running" error.
    with pytest.raises(CtlError, match="parameter 1 contains a newline") as e:
        Ctl(sock_dir / "ctl").account_addresses("bad\nname")
    assert not isinstance(e.value, CtlUnavailable)


def test_server_that_never_answers_times_out(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen(1)  # never accepted: connect succeeds, nothing is ever sent
        with pytest.raises(CtlTimeout) as e:
            Ctl(path, timeout=0.2).version()
    assert str(e.value) == (f"mox's control socket {path} did not answer within 0.2 s (waiting for mox's "
                            f"version line): mox may be hung or overloaded; see its log, or allow more time")


class ScriptedServer:
    """One connection to a unix socket, following a script of ("send", bytes) and ("expect", bytes);
    then it waits for the client to close, or hangs up at once."""

    def __init__(self, path: Path, script: list[tuple[str, bytes]], *, hang_up: bool = False) -> None:
        self.hang_up = hang_up
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.script = script
        self.done = 0
        self.error = ""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            for what, data in self.script:
                if what == "send":
                    conn.sendall(data)
                else:
                    got = b""
                    while len(got) < len(data):
                        chunk = conn.recv(len(data) - len(got))
                        if not chunk:
                            break
                        got += chunk
                    if got != data:
                        self.error = f"expected {data!r}, got {got!r}"
                        return
                self.done += 1
            if not self.hang_up:
                conn.recv(1)  # until the client closes

    def finish(self) -> None:
        self.thread.join(10)
        self.sock.close()


def test_stream_chunks_are_acknowledged_and_an_error_in_a_stream_is_reported(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    server = ScriptedServer(path, [
        ("send", b"ctlv0\n"), ("expect", b"aliaslist\nexample.org\n"),
        ("send", b"ok\n"), ("send", b"20\nteam@example.org\nxyz"), ("expect", b"ok\n"),
        ("send", b"parsing alias localpart: bad\n"),
    ])
    with pytest.raises(CtlCommandFailed) as e:
        Ctl(path, timeout=10).alias_list("example.org")
    server.finish()
    assert server.error == "" and server.done == len(server.script)
    assert e.value.reply == "parsing alias localpart: bad"


def test_silence_after_the_command_times_out_naming_the_command(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    server = ScriptedServer(path, [("send", b"ctlv0\n"), ("expect", b"accountlist\n")])
    with pytest.raises(CtlTimeout, match=r"within 0\.3 s \(waiting for the answer to accountlist\)"):
        Ctl(path, timeout=0.3).account_list()
    server.finish()
    assert server.error == ""


def test_not_mox_version_line(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    server = ScriptedServer(path, [("send", b"ctlv1\n")])
    with pytest.raises(CtlProtocolError, match=r"expected 'ctlv0', got 'ctlv1'"):
        Ctl(path, timeout=10).version()
    server.finish()


def test_connection_closed_in_the_middle_of_data(sock_dir: Path) -> None:
    path = sock_dir / "ctl"
    server = ScriptedServer(path, [("send", b"ctlv0\n"), ("expect", b"accountlist\n"), ("send", b"ok\n10\nadm")],
                            hang_up=True)
    with pytest.raises(CtlProtocolError, match="the connection closed in the middle of data"):
        Ctl(path, timeout=10).account_list()
    server.finish()
    assert server.error == ""
