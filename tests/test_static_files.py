"""mox.conf checks that read the system and files: the `User` lookup and the TLS key/certificate pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.mox.golang import GoSyntaxError, parse_uint, user_lookup
from reconciler.mox.keyfiles import x509_key_pair_error

from .golden import GOLDEN

TLS = GOLDEN / "instance" / "config" / "tls"
CERT = (TLS / "mail.example.org.crt.pem").read_bytes()
KEY = (TLS / "mail.example.org.key.pem").read_bytes()
RSA = (GOLDEN / "instance" / "config" / "hostkeys" / "mail.example.org.rsa2048.privatekey.pkcs8.pem").read_bytes()


def test_user_lookup_reads_passwd_like_pure_go(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "# comment:x:1:1:c:/:/bin/sh\n"
        "  mox:x:1001:1002:Mox,,,:/home/mox:/bin/sh\n"  # leading blanks are trimmed
        "short:x:5:5\n"  # fewer than six fields
        "bad:x:abc:1::/:/bin/sh\n"  # uid not a number: skipped
        "+plus:x:7:7::/:/bin/sh\n"
        "neg:x:-1:+2::/:/bin/sh\n"  # Atoi accepts signs; mox's ParseUint then refuses
    )
    assert user_lookup("mox", passwd) is not None
    assert user_lookup("mox", passwd).uid == "1001"  # type: ignore[union-attr]
    assert user_lookup("short", passwd) is None
    assert user_lookup("bad", passwd) is None
    assert user_lookup("+plus", passwd) is None
    neg = user_lookup("neg", passwd)
    assert neg is not None and (neg.uid, neg.gid) == ("-1", "+2")
    assert user_lookup("mox", tmp_path / "missing") is None


@pytest.mark.parametrize(("s", "why"), [("1_000", "invalid syntax"), ("+1", "invalid syntax"), ("-1", "invalid syntax"),
                                        ("", "invalid syntax"), ("4294967296", "value out of range")])
def test_parse_uint_32(s: str, why: str) -> None:
    with pytest.raises(GoSyntaxError, match=why):
        parse_uint(s, 32)
    assert parse_uint("4294967295", 32) == 4294967295


@pytest.mark.parametrize(("cert", "key", "want"), [
    (CERT, KEY, None),
    (CERT + KEY, KEY + CERT, None),  # other blocks are skipped
    (b"", KEY, "tls: failed to find any PEM data in certificate input"),
    (KEY, KEY, "tls: failed to find certificate PEM data in certificate input, but did find a private key; "
               "PEM inputs may have been switched"),
    (RSA.replace(b"PRIVATE KEY", b"FOO"), KEY,
     'tls: failed to find "CERTIFICATE" PEM block in certificate input after skipping PEM blocks of the '
     "following types: [FOO]"),
    (CERT, b"x", "tls: failed to find any PEM data in key input"),
    (CERT, CERT, "tls: found a certificate rather than a key in the PEM for the private key"),
    (CERT, RSA, "tls: private key type does not match public key type"),
    (CERT, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "tls: failed to parse private key"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", KEY, "x509: malformed certificate"),
])
def test_x509_key_pair(cert: bytes, key: bytes, want: str | None) -> None:
    assert x509_key_pair_error(cert, key) == want
