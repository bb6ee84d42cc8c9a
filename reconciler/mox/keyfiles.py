"""DKIM private key files, loaded and judged exactly as mox's prepareDynamicConfig does.

mox reads every selector's key on every config load and write, and refuses the whole config if
one is unreadable, not PEM, not PKCS#8, RSA below 1024 bits, or of another type. We must refuse
the same files with the same messages before writing a domains.conf that references them.

Error texts never contain key material: only the path, Go error wording and key sizes/types.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_der_private_key

DKIMKey = RSAPrivateKey | Ed25519PrivateKey

# Object identifiers mox's x509.ParsePKCS8PrivateKey distinguishes, DER-encoded content bytes.
_OID_RSA = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
_OID_EC = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
_OID_ED25519 = bytes.fromhex("2b6570")  # 1.3.101.112
_OID_X25519 = bytes.fromhex("2b656e")  # 1.3.101.110


class KeyFileError(ValueError):
    """A key file mox would refuse; str() is mox's message (after the `selector %s: ` prefix)."""


# ---------------------------------------------------------------------------------------------
# Go's error texts for file reads


def _go_errno_text(e: OSError) -> str:
    """Go's syscall.Errno text: the C strerror, lower-cased first letter (e.g. `no such file ...`)."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


def go_read_error(path: Path, e: OSError) -> str:
    """os.ReadFile's error: `open <path>: <errno text>`, `read <path>: is a directory`."""
    op = "read" if e.errno == errno.EISDIR else "open"
    return f"{op} {path}: {_go_errno_text(e)}"


# ---------------------------------------------------------------------------------------------
# PEM (Go encoding/pem.Decode: the first well-formed block, anywhere in the file)


def _pem_first_block(data: bytes) -> bytes | None:
    """DER bytes of the first PEM block as Go's pem.Decode finds it, or None.

    Go skips text before `-----BEGIN `, needs a matching `-----END <type>-----` and valid base64;
    a malformed block is skipped and the search continues after its BEGIN line. Headers
    (`Key: value` lines) are allowed and ignored, like mox ignores them.
    """
    rest = data
    while True:
        i = rest.find(b"-----BEGIN ")
        if i < 0:
            return None
        if i > 0 and rest[i - 1 : i] not in (b"\n",):
            # Go requires BEGIN at the start of a line (or of the input).
            rest = rest[i + 11 :]
            continue
        after = rest[i + 11 :]
        eol = after.find(b"\n")
        line = after if eol < 0 else after[:eol]
        line = line.rstrip(b" \t\r")
        if not line.endswith(b"-----"):
            rest = after
            continue
        typ = line[:-5]
        body = b"" if eol < 0 else after[eol + 1 :]
        end_marker = b"-----END " + typ + b"-----"
        j = body.find(b"\n" + end_marker)
        if body.startswith(end_marker):
            j = -1
            content = b""
        elif j < 0:
            rest = after
            continue
        else:
            content = body[:j]
        lines = content.split(b"\n")
        # Skip headers: lines containing ':' before the first blank line.
        if any(b":" in ln for ln in lines[:1]):
            k = 0
            while k < len(lines) and lines[k].strip() and b":" in lines[k]:
                k += 1
            lines = lines[k:]
        b64 = b"".join(ln.strip(b" \t\r") for ln in lines)
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            rest = after
            continue


# ---------------------------------------------------------------------------------------------
# Minimal DER reading, to tell PKCS#8 from PKCS#1 / SEC1 the way Go's parser does.


def _der_tlv(b: bytes, o: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at `o`; ValueError if malformed."""
    if o + 2 > len(b):
        raise ValueError("truncated")
    tag = b[o]
    n = b[o + 1]
    o += 2
    if n & 0x80:
        cnt = n & 0x7F
        if cnt == 0 or cnt > 4 or o + cnt > len(b):
            raise ValueError("bad length")
        n = int.from_bytes(b[o : o + cnt], "big")
        o += cnt
    if o + n > len(b):
        raise ValueError("truncated")
    return tag, o, o + n


def _classify(der: bytes) -> tuple[str, bytes]:
    """('pkcs8', algorithm OID) or ('pkcs1' | 'sec1' | 'garbage', b'')."""
    try:
        tag, s, _e = _der_tlv(der, 0)
        if tag != 0x30:
            return "garbage", b""
        tag1, _s1, e1 = _der_tlv(der, s)
        if tag1 != 0x02:
            return "garbage", b""
        tag2, s2, _e2 = _der_tlv(der, e1)
        if tag2 == 0x30:
            tago, so, eo = _der_tlv(der, s2)
            if tago != 0x06:
                return "garbage", b""
            return "pkcs8", der[so:eo]
        if tag2 == 0x02:
            return "pkcs1", b""
        if tag2 == 0x04:
            return "sec1", b""
    except ValueError:
        pass
    return "garbage", b""


def _oid_string(oid: bytes) -> str:
    """Dotted form of a DER OID, as Go prints asn1.ObjectIdentifier."""
    if not oid:
        return ""
    first = oid[0]
    parts = [str(min(first // 40, 2)), str(first - 40 * min(first // 40, 2))]
    v = 0
    for c in oid[1:]:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            parts.append(str(v))
            v = 0
    return ".".join(parts)


def parse_pkcs8(der: bytes) -> DKIMKey:
    """x509.ParsePKCS8PrivateKey followed by mox's type switch; KeyFileError with mox's text."""
    kind, oid = _classify(der)
    if kind == "sec1":
        raise KeyFileError(
            "parsing private key: x509: failed to parse private key "
            "(use ParseECPrivateKey instead for this key format)"
        )
    if kind == "pkcs1":
        raise KeyFileError(
            "parsing private key: x509: failed to parse private key "
            "(use ParsePKCS1PrivateKey instead for this key format)"
        )
    if kind != "pkcs8":
        # Go returns its asn1 decoder's error here; we cannot reproduce its exact wording.
        raise KeyFileError("parsing private key: asn1: structure error: not a PKCS#8 private key")
    if oid == _OID_RSA:
        try:
            key = load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError):
            raise KeyFileError(
                "parsing private key: x509: failed to parse RSA private key embedded in PKCS#8"
            ) from None
        assert isinstance(key, RSAPrivateKey)
        bits = key.key_size
        if bits < 1024:
            raise KeyFileError(f"rsa keys should be >= 1024 bits, is {bits} bits")
        return key
    if oid == _OID_ED25519:
        try:
            key2 = load_der_private_key(der, None)
        except (ValueError, TypeError):
            raise KeyFileError("parsing private key: x509: invalid Ed25519 private key") from None
        assert isinstance(key2, Ed25519PrivateKey)
        return key2
    if oid == _OID_EC:
        try:
            load_der_private_key(der, None)
        except (ValueError, TypeError):
            raise KeyFileError(
                "parsing private key: x509: failed to parse EC private key embedded in PKCS#8"
            ) from None
        raise KeyFileError("private key type *ecdsa.PrivateKey not yet supported")
    if oid == _OID_X25519:
        raise KeyFileError("private key type *ecdh.PrivateKey not yet supported")
    raise KeyFileError(
        "parsing private key: x509: PKCS#8 wrapping contained private key with unknown algorithm: "
        + _oid_string(oid)
    )


def parse_dkim_pem(data: bytes) -> DKIMKey:
    """The key in PEM file contents, judged like mox (first PEM block, PKCS#8, RSA >= 1024 / Ed25519)."""
    der = _pem_first_block(data)
    if der is None:
        raise KeyFileError("private key has no PEM block")
    return parse_pkcs8(der)


def load_dkim_private_key(path: Path) -> DKIMKey:
    """Read and parse a DKIM key file; KeyFileError carries mox's message."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"reading private key: {go_read_error(path, e)}") from None
    return parse_dkim_pem(data)


# ---------------------------------------------------------------------------------------------
# Cache


@dataclass(frozen=True, slots=True)
class _Entry:
    key: DKIMKey | None
    error: str | None


class KeyCache:
    """Loaded DKIM keys by (resolved path, mtime_ns, size, inode), failures included.

    Validation runs before every write and on every reconcile; re-parsing 20,000 RSA keys each
    time would dominate. A changed or replaced file has a new stat identity and is read again.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, int, int], _Entry] = {}
        self._lock = threading.Lock()
        self.loads = 0  # number of actual file parses, for tests and benchmarks

    def load(self, path: Path) -> DKIMKey:
        """Like load_dkim_private_key, served from the cache when the file is unchanged."""
        try:
            st = os.stat(path)
        except OSError as e:
            raise KeyFileError(f"reading private key: {go_read_error(path, e)}") from None
        ident = (os.path.realpath(path), st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            entry = self._entries.get(ident)
        if entry is None:
            self.loads += 1
            try:
                entry = _Entry(load_dkim_private_key(path), None)
            except KeyFileError as e:
                entry = _Entry(None, str(e))
            with self._lock:
                self._entries[ident] = entry
        if entry.error is not None:
            raise KeyFileError(entry.error)
        assert entry.key is not None
        return entry.key

    def __len__(self) -> int:
        return len(self._entries)
