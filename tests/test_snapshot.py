"""CI modes that work: `snapshot OUT_DIR` (a secret-free copy of the live config) and plans
against it or against a copy without DKIM private keys; `--base-ref` without a live config.

The live config is golden step 09 (four domains, accounts alice and bob) with a webhook secret in
domains.conf and a transport password in mox.conf; the desired state is its `import` with edits.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import git
import pytest
import yaml

from reconciler.cli.main import main
from reconciler.desired.importer import import_live, secret_files
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic, OutgoingWebhook
from reconciler.mox.live import locate, read_live

from .golden import build_step_config, golden_step

HOOK_SECRET = "Bearer hook-s3cret-value"
TRANSPORT_SECRET = "tr4nsport-s3cret-value"
TRANSPORT = f"""Transports:
\trelay:
\t\tSubmissions:
\t\t\tHost: smtp.example.net
\t\t\tAuth:
\t\t\t\tUsername: relay
\t\t\t\tPassword: {TRANSPORT_SECRET}
"""


@dataclasses.dataclass
class Env:
    tmp: Path
    mox_conf: Path
    desired: Path

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err


@pytest.fixture
def env(tmp_path: Path) -> Env:
    mox_conf = build_step_config(golden_step("09"), tmp_path / "server")
    mox_conf.write_text(mox_conf.read_text() + TRANSPORT)
    domains_conf = mox_conf.parent / "domains.conf"
    live = sconf.parse(domains_conf.read_text(), Dynamic)
    alice = dataclasses.replace(live.Accounts["alice"], OutgoingWebhook=OutgoingWebhook(
        URL="https://hooks.example/alice", Authorization=HOOK_SECRET))
    domains_conf.write_text(sconf.write(dataclasses.replace(live, Accounts={**live.Accounts, "alice": alice})))
    read = read_live(locate(str(mox_conf)))
    secrets = tmp_path / "secrets"  # on the server only: the CI job does not have them
    secrets.mkdir()
    desired = import_live(read.static, read.dynamic, str(secrets))
    for path in secret_files("alice", read.dynamic.Accounts["alice"], str(secrets)).values():
        Path(path).write_text(HOOK_SECRET + "\n")
    desired["Domains"]["example.org"]["Description"] = "changed in the pull request"
    (tmp_path / "desired").mkdir()
    (tmp_path / "desired" / "desired.yaml").write_text(yaml.safe_dump(desired, allow_unicode=True))
    return Env(tmp_path, mox_conf, tmp_path / "desired")


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_snapshot_is_secret_free_and_plannable(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    snap = env.tmp / "repo" / "live" / "config"
    rc, out, err = env.cli(capsys, "--config", str(env.mox_conf), "snapshot", str(snap))
    assert rc == 0, err
    assert out.startswith(f"Snapshot of 4 domains written to {snap} (")
    names = sorted(str(p.relative_to(snap)) for p in snap.rglob("*") if p.is_file())
    assert names[:3] == ["domains.conf", "mox-reconciler.inventory.json", "mox-reconciler.records/example.net.json"]
    assert "mox-reconciler.snapshot.json" in names and "mox.conf" in names
    assert not any(n.startswith(("dkim", "hostkeys", "tls")) for n in names)  # no key files
    data = all_bytes(snap)
    for secret in (HOOK_SECRET, TRANSPORT_SECRET, "PRIVATE KEY"):
        assert secret.encode() not in data, secret
    assert b"Authorization: <redacted>" in (snap / "domains.conf").read_bytes()
    assert b"Password: <redacted>" in (snap / "mox.conf").read_bytes()
    marker = json.loads((snap / "mox-reconciler.snapshot.json").read_text())
    assert marker["config_dir"] == str(env.mox_conf.parent) and marker["dkim_private_keys"] == "not copied"

    # Plans against the snapshot equal plans against the server: same operations, same DNS
    # records (the DKIM public keys come from the snapshot's reports); secret references unread.
    live_md = env.cli(capsys, "--config", str(env.mox_conf), "plan", "--format", "markdown", str(env.desired))
    snap_md = env.cli(capsys, "--config", str(snap / "mox.conf"), "plan", "--format", "markdown", str(env.desired))
    assert live_md[0] == snap_md[0] == 0, snap_md[2]

    def records(md: str) -> str:
        return md[md.index("<details><summary>example.org"):]

    assert records(snap_md[1]) == records(live_md[1]).replace(
        "; not published (needs DNSSEC): _25._tcp.mail.example.org. 300 IN TLSA 3 1 1 036aa863bdb4f41447d342583299fd"
        "401e44a7fdecb299e6385f3233514d67c6\n", "").replace(
        "; not published (needs DNSSEC): _25._tcp.mail.example.org. 300 IN TLSA 3 1 1 0aaf5e80ba227a2e44f5668eb2925b"
        "9d2ed458c75363a558f0a4df698cff15f9\n", "")
    assert "*DANE TLSA records left out: the mail host's keys cannot be read here" in snap_md[1]
    assert "2026a._domainkey.example.org. 300 IN TXT \"v=DKIM1;h=sha256;p=MIIB" in snap_md[1]
    live_js = json.loads(env.cli(capsys, "--config", str(env.mox_conf), "plan", "--format", "json",
                                 str(env.desired))[1])
    snap_js = json.loads(env.cli(capsys, "--config", str(snap / "mox.conf"), "plan", "--format", "json",
                                 str(env.desired))[1])
    assert snap_js["checksum"] == live_js["checksum"] and snap_js["changes"] == live_js["changes"]

    # apply refuses a snapshot, plan files made against it too; nothing is written
    before = all_bytes(snap)
    rc, _, err = env.cli(capsys, "--config", str(snap / "mox.conf"), "apply", "--yes", str(env.desired))
    assert rc == 1 and "is a snapshot of a live config" in err
    plan_file = env.tmp / "plan.json"
    env.cli(capsys, "--config", str(snap / "mox.conf"), "plan", "--out", str(plan_file), str(env.desired))
    rc, _, err = env.cli(capsys, "--config", str(snap / "mox.conf"), "apply", "--yes", "--plan", str(plan_file))
    assert rc == 1 and "is a snapshot of a live config" in err
    assert all_bytes(snap) == before

    # refreshing it in place works; a directory that is not a snapshot, or the live one, is refused
    assert env.cli(capsys, "--config", str(env.mox_conf), "snapshot", str(snap))[0] == 0
    other = env.tmp / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    rc, _, err = env.cli(capsys, "--config", str(env.mox_conf), "snapshot", str(other))
    assert rc == 1 and "is not empty and holds no earlier snapshot" in err and sorted(other.iterdir()) == [
        other / "notes.txt"]
    rc, _, err = env.cli(capsys, "--config", str(env.mox_conf), "snapshot", str(env.mox_conf.parent))
    assert rc == 1 and "is the live config dir" in err


def test_copy_without_private_keys(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """The old advice: copy mox.conf, domains.conf and the inventory, no keys. A plan with
    changes works (no "reading private key"); records it cannot compute say so."""
    copy = env.tmp / "copy"
    copy.mkdir()
    for name in ("mox.conf", "domains.conf"):
        shutil.copyfile(env.mox_conf.parent / name, copy / name)
    desired = yaml.safe_load((env.desired / "desired.yaml").read_text())
    desired["Domains"]["example.org"]["DKIM"]["Selectors"]["2026c"] = {"Algorithm": "ed25519"}
    (env.desired / "desired.yaml").write_text(yaml.safe_dump(desired, allow_unicode=True))
    rc, out, err = env.cli(capsys, "--config", str(copy / "mox.conf"), "plan", "--format", "markdown",
                           str(env.desired))
    assert rc == 0, err
    assert "add DKIM selector 2026c (ed25519) to example.org" in out
    assert ("; placeholder, DKIM public key not computed here (no private key, no earlier report): "
            "2026a._domainkey.example.org.") in out
    assert "; placeholder, DKIM key generated at apply: 2026c._domainkey.example.org." in out
    assert ("*example.org: the DKIM public key of selectors 2026a, 2026b is not computed (no private key in this "
            "config dir, no earlier report).*") in out
    # a key file the plan needs that nobody has is still an error, with mox's words
    desired["Domains"]["example.org"]["DKIM"]["Selectors"]["2026d"] = {"PrivateKeyFile": "dkim/absent.pem"}
    (env.desired / "desired.yaml").write_text(yaml.safe_dump(desired, allow_unicode=True))
    rc, _, err = env.cli(capsys, "--config", str(copy / "mox.conf"), "plan", str(env.desired))
    assert rc == 1 and "selector 2026d: reading private key" in err


def test_base_ref_leaves_dns_records_out(env: Env, capsys: pytest.CaptureFixture[str],
                                         isolated_git: None) -> None:
    """The default pull-request comment: no live config, so no made-up mail host and no DKIM
    keys "generated at apply" for keys that exist: the records are left out, in one line."""
    repo = git.Repo.init(env.desired)
    repo.index.add(["desired.yaml"])
    repo.index.commit("base")
    desired = yaml.safe_load((env.desired / "desired.yaml").read_text())
    desired["Domains"]["example.org"]["Description"] = "new"
    desired["Domains"]["new.example"] = {"ReportsAccount": "alice"}
    (env.desired / "desired.yaml").write_text(yaml.safe_dump(desired, allow_unicode=True))
    repo.index.add(["desired.yaml"])
    repo.index.commit("head")
    rc, out, err = env.cli(capsys, "plan", "--base-ref", "HEAD~1", "--format", "markdown", str(env.desired))
    assert rc == 0, err
    assert "mail.invalid" not in out and "generated at apply" not in out and "```dns" not in out
    assert ("#### DNS records to publish\n\n*DNS records are left out: a --base-ref plan has no live config (no mail "
            "host, no DKIM keys); plan against the live config or a `snapshot` of it to see them.*\n") in out
    assert "- **live** none: compared with the desired state at HEAD~1 (--base-ref)" in out
