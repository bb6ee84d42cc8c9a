"""Malformed desired states: every problem as `file:line:col: field: message`, exit 1, no traceback.

Each case runs the real CLI (`reconciler.cli.main.main(["validate", ...])`) on real files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.desired import yamlload

FIXTURES = Path(__file__).parent / "fixtures" / "desired"

BASE = """\
Domains:
  example.org:
    ReportsAccount: alice
Accounts:
  alice:
    Destinations:
      alice@example.org: {}
"""

# (name, {file: text}, expected problem line prefix "file:line:col: field: message")
CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "yaml-syntax-unclosed-flow",
        {"a.yaml": "Domains:\n  example.org: [\n"},
        "a.yaml:3:1: YAML syntax error: expected the node content, but found '<stream end>'",
    ),
    (
        "yaml-syntax-bad-indent",
        {"a.yaml": "Domains:\n  example.org:\n ReportsAccount: x\n"},
        "a.yaml:3:2: YAML syntax error: expected <block end>, but found '<block mapping start>'",
    ),
    (
        "yaml-tab-indent",
        {"a.yaml": "Domains:\n\texample.org: {}\n"},
        "a.yaml:2:1: tabs are not allowed for indentation in YAML; use spaces (domains.conf indents with tabs: "
        "replace each tab with two spaces when pasting from it)",
    ),
    ("top-level-list", {"a.yaml": "- Domains\n"}, "a.yaml:1:1: top level must be a mapping"),
    ("top-level-scalar", {"a.yaml": "hello\n"}, "a.yaml:1:1: top level must be a mapping"),
    (
        "two-documents",
        {"a.yaml": "Domains: {}\n---\nAccounts: {}\n"},
        "a.yaml:2:1: YAML syntax error: but found another document",
    ),
    (
        "yaml-alias",
        {"a.yaml": "Accounts:\n  a: &x {}\n  b: *x\n"},
        "a.yaml:3:6: YAML syntax error: YAML aliases (*name) are not supported",
    ),
    (
        "duplicate-key-same-file",
        {"a.yaml": BASE + "  alice:\n    Domain: example.org\n"},
        "a.yaml:8:3: Accounts.alice: duplicate key (first at line 5)",
    ),
    ("unknown-top-level-key", {"a.yaml": BASE + "Domain: {}\n"}, "a.yaml:8:1: Domain: unknown key"),
    (
        "unknown-domain-key",
        {"a.yaml": BASE.replace("ReportsAccount", "ReportAccount")},
        "a.yaml:3:5: Domains.example.org.ReportAccount: unknown key",
    ),
    (
        "typo-nested-dmarc",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    DMARC:\n      Mailbx: Reports\n",
            )
        },
        "a.yaml:5:7: Domains.example.org.DMARC.Mailbx: unknown key",
    ),
    (
        "wrong-type-bool",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n", "    ReportsAccount: alice\n    Disabled: maybe\n"
            )
        },
        "a.yaml:4:15: Domains.example.org.Disabled: Input should be a valid boolean",
    ),
    (
        "wrong-type-int",
        {"a.yaml": BASE + "    QuotaMessageSize: lots\n"},
        "a.yaml:8:23: Accounts.alice.QuotaMessageSize: Input should be a valid integer",
    ),
    (
        "wrong-type-list",
        {"a.yaml": BASE + "    FromIDLoginAddresses: alice@example.org\n"},
        "a.yaml:8:27: Accounts.alice.FromIDLoginAddresses: Input should be a valid list",
    ),
    (
        "wrong-type-domains",
        {"a.yaml": "Domains: [example.org]\n"},
        "a.yaml:1:10: Domains: Input should be a valid dictionary",
    ),
    (
        "bad-duration",
        {"a.yaml": BASE + "    SubjectPass:\n      Period: 12 hours\n"},
        'a.yaml:9:15: Accounts.alice.SubjectPass.Period: time: unknown unit " hours" in duration "12 hours"',
    ),
    (
        "bad-enum-mode",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n", "    ReportsAccount: alice\n    MTASTS:\n      Mode: strict\n"
            )
        },
        "a.yaml:5:13: Domains.example.org.MTASTS.Mode: Input should be 'none', 'testing' or 'enforce'",
    ),
    (
        "policy-range",
        {"a.yaml": BASE + "Policy:\n  MaxChangeShare: 2\n"},
        "a.yaml:9:19: Policy.MaxChangeShare: Input should be less than or equal to 1",
    ),
    (
        "missing-required",
        {"a.yaml": BASE + "    Routes:\n      - FromDomain: [example.org]\n"},
        "a.yaml:9:9: Accounts.alice.Routes.0.Transport: required key missing",
    ),
    (
        "alias-without-members",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    Aliases:\n      team:\n        Addresses: []\n",
            )
        },
        "a.yaml:6:20: Domains.example.org.Aliases.team.Addresses: List should have at least 1 item",
    ),
    (
        "duplicate-domain-across-files",
        {"a.yaml": BASE, "b.yaml": "Domains:\n  example.org: {ReportsAccount: alice}\n"},
        "b.yaml:2:3: Domains.example.org: defined twice: here and at ",
    ),
    (
        "duplicate-account-across-files",
        {"a.yaml": BASE, "b.yaml": "Accounts:\n  alice: {}\n"},
        "b.yaml:2:3: Accounts.alice: defined twice: here and at ",
    ),
    (
        "duplicate-policy-across-files",
        {"a.yaml": BASE + "Policy: {Prune: true}\n", "b.yaml": "Policy: {}\n"},
        "b.yaml:1:1: Policy: defined twice: here and at ",
    ),
    (
        "bad-domain-underscore",
        {
            "a.yaml": BASE.replace(
                "  example.org:\n",
                "  example.org:\n    Aliases: {}\n  ex_ample.org:\n    DMARC: null\n    TLSRPT: null\n",
            )
        },
        "a.yaml:4:3: Domains.ex_ample.org: invalid domain name: idna: to ascii: idna: disallowed rune U+005F",
    ),
    (
        "domain-not-unicode-form",
        {"a.yaml": BASE.replace("  example.org:\n", "  Example.org:\n")},
        "a.yaml:2:3: Domains.Example.org: must be lower case: example.org",
    ),
    (
        "idn-ascii-form-rejected",
        {"a.yaml": "Domains:\n  xn--caf-dma.example: {DMARC: null, TLSRPT: null}\n"},
        "a.yaml:2:3: Domains.xn--caf-dma.example: must be written in Unicode form: café.example (not xn--caf-dma.example)",
    ),
    (
        "bad-address",
        {"a.yaml": BASE.replace("alice@example.org: {}", "alice..x@example.org: {}")},
        "a.yaml:7:7: Accounts.alice.Destinations.alice..x@example.org: invalid email address",
    ),
    (
        "bare-localpart",
        {"a.yaml": BASE.replace("alice@example.org: {}", "alice: {}")},
        "a.yaml:7:7: Accounts.alice.Destinations.alice: invalid email address",
    ),
    (
        "address-unknown-domain",
        {"a.yaml": BASE + "      bob@example.com: {}\n"},
        "a.yaml:8:7: Accounts.alice.Destinations.bob@example.com: domain example.com is not defined under Domains",
    ),
    (
        "address-duplicate-canonical",
        {"a.yaml": BASE + "      Alice+tag@Example.org: {}\n"},
        "a.yaml:8:7: Accounts.alice.Destinations.Alice+tag@Example.org: localpart of address",
    ),
    (
        "address-duplicate-case",
        {"a.yaml": BASE + "      ALICE@example.org: {}\n"},
        "a.yaml:8:7: Accounts.alice.Destinations.ALICE@example.org: duplicate canonicalized destination address "
        "alice@example.org (first at ",
    ),
    (
        "catchall-twice",
        {"a.yaml": BASE + "      '@example.org': {}\n  bob:\n    Destinations:\n      '@example.org': {}\n"},
        "a.yaml:11:7: Accounts.bob.Destinations.@example.org: duplicate canonicalized catchall destination",
    ),
    (
        "separator-in-localpart",
        {"a.yaml": BASE + "      a+b@example.org: {}\n"},
        "a.yaml:8:7: Accounts.alice.Destinations.a+b@example.org: localpart of address a+b@example.org includes "
        "domain catchall separator +",
    ),
    (
        "alias-member-missing",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    Aliases:\n      team:\n"
                "        Addresses: [alice@example.org, bob@example.org]\n",
            )
        },
        "a.yaml:6:40: Domains.example.org.Aliases.team.Addresses.1: alias member bob@example.org is not an address",
    ),
    (
        "alias-is-address",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    Aliases:\n      Alice:\n"
                "        Addresses: [alice@example.org]\n",
            )
        },
        "a.yaml:5:7: Domains.example.org.Aliases.Alice: alias alice@example.org already present as regular address",
    ),
    (
        "reports-account-missing",
        {"a.yaml": BASE.replace("ReportsAccount: alice", "ReportsAccount: bob")},
        "a.yaml:3:21: Domains.example.org.ReportsAccount: account 'bob' is not defined under Accounts",
    ),
    (
        "reports-account-needed",
        {"a.yaml": BASE.replace("    ReportsAccount: alice\n", "    Disabled: true\n")},
        "a.yaml:2:3: Domains.example.org.ReportsAccount: needed for the default DMARC and TLSRPT reporting address",
    ),
    (
        "dmarc-account-missing",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n", "    ReportsAccount: alice\n    DMARC: {Account: carol}\n"
            )
        },
        "a.yaml:4:22: Domains.example.org.DMARC.Account: account 'carol' is not defined under Accounts",
    ),
    (
        "separator-duplicate",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    LocalpartCatchallSeparators: [+, '-', +]\n",
            )
        },
        'a.yaml:4:43: Domains.example.org.LocalpartCatchallSeparators.2: duplicate localpart catchall separator "+"',
    ),
    (
        "rejects-mailbox-inbox",
        {"a.yaml": BASE + "    RejectsMailbox: INBOX\n"},
        "a.yaml:8:21: Accounts.alice.RejectsMailbox: cannot set RejectsMailbox to inbox, messages will be removed",
    ),
    (
        "dkim-sign-unknown",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    DKIM:\n      Selectors:\n"
                "        s1: {Algorithm: ed25519}\n      Sign: [s1, s2]\n",
            )
        },
        "a.yaml:7:18: Domains.example.org.DKIM.Sign.1: unknown selector s2 for signing",
    ),
    (
        "dkim-ed25519-sha1",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    DKIM:\n      Selectors:\n"
                "        s1: {Algorithm: ed25519, Hash: sha1}\n",
            )
        },
        "a.yaml:6:40: Domains.example.org.DKIM.Selectors.s1.Hash: hash algorithm \"sha1\" is not supported with ed25519",
    ),
    (
        "dkim-headers-without-from",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    DKIM:\n      Selectors:\n"
                "        s1: {Headers: [To, Subject]}\n",
            )
        },
        "a.yaml:6:23: Domains.example.org.DKIM.Selectors.s1.Headers: From-field must always be DKIM-signed",
    ),
    (
        "selector-path-escape",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    DKIM:\n      Selectors:\n        ../../etc: {}\n",
            )
        },
        "a.yaml:6:9: Domains.example.org.DKIM.Selectors.../../etc: invalid selector name",
    ),
    (
        "keyfile-path-escape",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    DKIM:\n      Selectors:\n"
                "        s1: {PrivateKeyFile: ../../etc/shadow}\n",
            )
        },
        "a.yaml:6:30: Domains.example.org.DKIM.Selectors.s1.PrivateKeyFile: must not contain ..",
    ),
    (
        "keyfile-absolute",
        {
            "a.yaml": BASE.replace(
                "    ReportsAccount: alice\n",
                "    ReportsAccount: alice\n    DKIM:\n      Selectors:\n"
                "        s1: {PrivateKeyFile: /etc/shadow}\n",
            )
        },
        "a.yaml:6:30: Domains.example.org.DKIM.Selectors.s1.PrivateKeyFile: must be relative to the config dir",
    ),
    (
        "account-path-escape",
        {"a.yaml": BASE + "  ../../root: {}\n"},
        "a.yaml:8:3: Accounts.../../root: account name must not contain /",
    ),
    (
        "account-dotdot",
        {"a.yaml": BASE + "  '..': {}\n"},
        "a.yaml:8:3: Accounts...: account name must not be empty, . or ..",
    ),
    (
        "removed-and-defined",
        {"a.yaml": BASE + "Removed:\n  Accounts: [bob, alice]\n"},
        "a.yaml:9:19: Removed.Accounts.1: alice is both defined and listed as removed",
    ),
    (
        "mailbox-not-nfc",
        {"a.yaml": BASE.replace("alice@example.org: {}", 'alice@example.org: {Mailbox: "Cafe\u0301"}')},
        'a.yaml:7:36: Accounts.alice.Destinations.alice@example.org.Mailbox: Mailbox: mailbox "Cafe\u0301" is not in NFC',
    ),
    (
        "rotation-bad-duration",
        {"a.yaml": BASE.replace("ReportsAccount: alice\n", "ReportsAccount: alice\n    DKIM:\n      Rotation: {Every: 30d}\n")},
        "a.yaml:5:25: Domains.example.org.DKIM.Rotation.Every: time: unknown unit \"d\" in duration \"30d\"",
    ),
    (
        "rotation-with-sign",
        {"a.yaml": BASE.replace("ReportsAccount: alice\n",
                                "ReportsAccount: alice\n    DKIM:\n      Rotation: {Every: 720h}\n      Sign: [s]\n")},
        "a.yaml:6:13: Domains.example.org.DKIM.Sign: not together with Rotation: the rotation decides which selector "
        "signs",
    ),
    (
        "rotation-unknown-key",
        {"a.yaml": BASE.replace("ReportsAccount: alice\n",
                                "ReportsAccount: alice\n    DKIM:\n      Rotation: {Every: 720h, Algo: rsa}\n")},
        "a.yaml:5:31: Domains.example.org.DKIM.Rotation.Algo: unknown key",
    ),
]


@pytest.mark.parametrize(("name", "files", "expected"), CASES, ids=[c[0] for c in CASES])
def test_malformed(
    name: str, files: dict[str, str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fname, text in files.items():
        (tmp_path / fname).write_text(text, encoding="utf-8")
    rc = main(["validate", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[-1].startswith("error: desired state invalid: ")
    prefix = str(tmp_path) + "/"
    assert any(line.startswith(prefix + expected) for line in lines), err


def test_at_least_30_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("bad-binary.yaml", "bad-binary.yaml:4:1: binary file (NUL byte), expected UTF-8 YAML text"),
        ("bad-latin1.yaml", "bad-latin1.yaml:2:6: not valid UTF-8 text"),
        ("bad-empty.yaml", "bad-empty.yaml:1:1: empty file"),
    ],
)
def test_unreadable_files(
    fixture: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / fixture, tmp_path / fixture)
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/{expected}" in err.splitlines()[0], err
    assert "Traceback" not in err


def test_huge_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as fh:
        fh.write("Accounts:\n")
        n = 0
        while fh.tell() <= yamlload.MAX_FILE_BYTES:
            fh.write(f"  a{n}: {{}}\n")
            n += 1
    assert main(["validate", str(big)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{big}:1:1: file too large (")


def test_all_problems_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Problems in several files and objects are reported together, sorted by file and line."""
    (tmp_path / "a.yaml").write_text(BASE + "      ALICE@example.org: {}\n      x+y@example.org: {}\n")
    (tmp_path / "b.yaml").write_text("Domains:\n  Example.net: {ReportsAccount: nobody}\n")
    assert main(["validate", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0].removeprefix(str(tmp_path) + "/") for line in lines[:-1]] == [
        "a.yaml:8:7",
        "a.yaml:9:7",
        "b.yaml:2:3",
        "b.yaml:2:33",
    ]
    assert lines[-1] == "error: desired state invalid: 4 problems"


def test_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path}/nope: no such file or directory")
    assert main(["validate", str(tmp_path)]) == 1
    assert f"{tmp_path}: no *.yaml files in this directory" in capsys.readouterr().err
