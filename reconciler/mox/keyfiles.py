"""Private key files, read and judged exactly as mox does: DKIM keys and host keys.

DKIM (mox-/config.go prepareDynamicConfig): mox reads every selector's key on every config load
and write, and refuses the whole config if one is unreadable, not PEM, not PKCS#8, RSA below
1024 bits, or of another type. We must refuse the same files with the same messages before
writing a domains.conf that references them.

Host keys (mox-/config.go loadPrivateKeyFile and PrepareStaticConfig): a listener's
HostPrivateKeyFiles, PKCS#8, PKCS#1 or SEC1; RSA-2048 and ECDSA P-256 keys are used for DANE,
others are ignored (mox logs them).

Error texts never contain key material: only the path, Go error wording and key sizes/types.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.mox.config import Static
from reconciler.mox.golang import PEMBlock, go_quote, pem_decode, pem_decode_rest, read_file_error
from reconciler.mox.live import ConfigPaths

# cryptography is imported where a key is parsed: a plan whose key files' verdicts are known
# (`KeyCache`) does not load it.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    DKIMKey = RSAPrivateKey | Ed25519PrivateKey

# Object identifiers mox's x509.ParsePKCS8PrivateKey distinguishes, DER-encoded content bytes.
_OID_RSA = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
_OID_EC = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
_OID_ED25519 = bytes.fromhex("2b6570")  # 1.3.101.112
_OID_X25519 = bytes.fromhex("2b656e")  # 1.3.101.110


class KeyFileError(ValueError):
    """A key file mox would refuse; str() is mox's message (after the `selector %s: ` prefix)."""


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
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_der_private_key

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
    block = pem_decode(data)
    if block is None:
        raise KeyFileError("private key has no PEM block")
    return parse_pkcs8(block.der)


# What Go's open says of a name with a NUL byte (Python refuses it before the system call).
_EINVAL = OSError(errno.EINVAL, os.strerror(errno.EINVAL))


def load_dkim_private_key(path: Path) -> DKIMKey:
    """Read and parse a DKIM key file; KeyFileError carries mox's message."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"reading private key: {read_file_error(path, e)}") from None
    except ValueError:  # a NUL in the name: Go's open fails with EINVAL
        raise KeyFileError(f"reading private key: {read_file_error(path, _EINVAL)}") from None
    return parse_dkim_pem(data)


# ---------------------------------------------------------------------------------------------
# Host keys (DANE)

# loadPrivateKeyFile's parser per PEM type, by the DER format it parses (see `_classify`).
_HOST_KEY_FORMATS = {"PRIVATE KEY": "pkcs8", "RSA PRIVATE KEY": "pkcs1", "EC PRIVATE KEY": "sec1"}
_GO_PARSERS = {"pkcs8": "ParsePKCS8PrivateKey", "pkcs1": "ParsePKCS1PrivateKey", "sec1": "ParseECPrivateKey"}


def load_private_key_file(path: Path) -> PrivateKeyTypes:
    """mox's loadPrivateKeyFile (PKCS#8, PKCS#1 or SEC1 PEM); KeyFileError with mox's text."""
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"reading host private key: {read_file_error(path, e)}") from None
    except ValueError:  # a NUL in the name
        raise KeyFileError(f"reading host private key: {read_file_error(path, _EINVAL)}") from None
    block = pem_decode(data)
    if block is None:
        raise KeyFileError("parsing pem block for private key: %!v(<nil>)")
    want = _HOST_KEY_FORMATS.get(block.type)
    if want is None:
        raise KeyFileError(f"parsing private key: unknown pem type {go_quote(block.type)}")
    have, _ = _classify(block.der)
    if have != want and have in _GO_PARSERS:
        # Go's parser for this PEM type recognises the other formats and says which parser fits.
        raise KeyFileError(
            "parsing private key: x509: failed to parse private key "
            f"(use {_GO_PARSERS[have]} instead for this key format)"
        )
    try:
        return load_der_private_key(block.der, None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError):
        raise KeyFileError("parsing private key: x509: failed to parse private key") from None


@dataclass(frozen=True, slots=True)
class HostKeys:
    """A listener's host keys as mox keeps them for DANE: ECDSA P-256 and RSA-2048, in file order."""

    ecdsa_p256: tuple[ec.EllipticCurvePublicKey, ...] = ()
    rsa2048: tuple[rsa.RSAPublicKey, ...] = ()
    ignored: tuple[str, ...] = ()  # files mox ignores (other sizes/curves/types), for logging


def load_host_keys(paths: ConfigPaths, static: Static, listener: str = "public") -> HostKeys:
    """The listener's HostPrivateKeyFiles as PrepareStaticConfig loads them (other keys ignored).

    KeyFileError carries mox's message for a file it cannot load (prefixed like mox's).
    """
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    lis = static.Listeners.get(listener)
    if lis is None or lis.TLS is None:
        return HostKeys()
    ecs: list[ec.EllipticCurvePublicKey] = []
    rsas: list[rsa.RSAPublicKey] = []
    ignored: list[str] = []
    for name in lis.TLS.HostPrivateKeyFiles:
        path = paths.resolve(name)
        try:
            key = load_private_key_file(path)
        except KeyFileError as e:
            raise KeyFileError(
                f"listener {listener}: parsing host private key for DANE and ACME certificates: {e}"
            ) from None
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048:
            rsas.append(key.public_key())
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            ecs.append(key.public_key())
        else:
            ignored.append(str(path))
    return HostKeys(tuple(ecs), tuple(rsas), tuple(ignored))


# ---------------------------------------------------------------------------------------------
# Cache


ED25519 = "ed25519"
RSA = "rsa"


def key_kind(key: DKIMKey) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return ED25519 if isinstance(key, Ed25519PrivateKey) else RSA


# A file's identity: path as named, device, inode, mtime, size, ctime. A file written, replaced
# or touched gets a new one (ctime changes with every write and rename).
FileIdentity = tuple[str, int, int, int, int, int]


def file_identity(path: Path) -> FileIdentity:
    """OSError when the file cannot be stat'ed."""
    st = os.stat(path)
    return (str(path), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)


class KeyCache:
    """What validation needs of each DKIM key file (its kind, or mox's error), by file identity.

    Validation runs before every write and on every reconcile; re-parsing 20,000 RSA keys each
    time would dominate, and keeping 20,000 parsed keys would cost memory. A changed or replaced
    file has a new identity and is read again. `verdicts` can be saved and given to a new cache
    (`reconciler.pipeline` keeps them in the cache dir between runs).
    """

    def __init__(self, verdicts: dict[FileIdentity, str] | None = None) -> None:
        # identity -> "ed25519" | "rsa" | "!" + mox's error
        self.verdicts: dict[FileIdentity, str] = dict(verdicts or {})
        self._lock = threading.Lock()
        self.loads = 0  # number of actual file parses, for tests and benchmarks
        self.added = 0  # verdicts learnt since construction (worth saving when > 0)

    def kind(self, path: Path) -> str:
        """ED25519 or RSA, as load_dkim_private_key would find; KeyFileError with mox's message."""
        try:
            ident = file_identity(path)
        except OSError as e:
            raise KeyFileError(f"reading private key: {read_file_error(path, e)}") from None
        except ValueError:  # a NUL in the name: Go's open fails with EINVAL
            raise KeyFileError(f"reading private key: {read_file_error(path, _EINVAL)}") from None
        with self._lock:
            verdict = self.verdicts.get(ident)
        if verdict is None:
            self.loads += 1
            try:
                verdict = key_kind(load_dkim_private_key(path))
            except KeyFileError as e:
                verdict = "!" + str(e)
            with self._lock:
                self.verdicts[ident] = verdict
                self.added += 1
        if verdict.startswith("!"):
            raise KeyFileError(verdict[1:])
        return verdict


# ---------------------------------------------------------------------------------------------
# TLS certificate + key files (crypto/tls X509KeyPair, as mox's loadTLSKeyCerts uses it)


def _pem_blocks(data: bytes) -> list[PEMBlock]:
    blocks: list[PEMBlock] = []
    while True:
        block, data = pem_decode_rest(data)
        if block is None:
            return blocks
        blocks.append(block)


def _go_list(items: list[str]) -> str:
    """fmt's %v of a []string: `[a b]`."""
    return "[" + " ".join(items) + "]"


def _tls_private_key(der: bytes) -> PrivateKeyTypes:
    """crypto/tls parsePrivateKey: PKCS#1 RSA, then PKCS#8 (RSA, ECDSA, Ed25519), then SEC1 EC."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    kind, oid = _classify(der)
    if kind == "pkcs8" and oid not in (_OID_RSA, _OID_EC, _OID_ED25519):
        if oid == _OID_X25519:
            raise KeyFileError("tls: found unknown private key type in PKCS#8 wrapping")
        raise KeyFileError("tls: failed to parse private key")
    try:
        key = load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError("tls: failed to parse private key") from None
    if not isinstance(key, RSAPrivateKey | ec.EllipticCurvePrivateKey | Ed25519PrivateKey):
        raise KeyFileError("tls: failed to parse private key")
    return key


def x509_key_pair_error(cert_pem: bytes, key_pem: bytes) -> str | None:
    """crypto/tls X509KeyPair's verdict on a certificate file and a key file: Go's error text, or None.

    Texts are Go's, except that a certificate Go's x509 parser refuses is reported as
    `x509: malformed certificate` whatever Go's parser names (its texts depend on the defect), and
    a key no parser accepts as `tls: failed to parse private key` without the asn1 detail.
    """
    certs: list[bytes] = []
    skipped: list[str] = []
    for block in _pem_blocks(cert_pem):
        if block.type == "CERTIFICATE":
            certs.append(block.der)
        else:
            skipped.append(block.type)
    if not certs:
        if not skipped:
            return "tls: failed to find any PEM data in certificate input"
        if len(skipped) == 1 and skipped[0].endswith("PRIVATE KEY"):
            return ("tls: failed to find certificate PEM data in certificate input, but did find a private key; "
                    "PEM inputs may have been switched")
        return ('tls: failed to find "CERTIFICATE" PEM block in certificate input after skipping PEM blocks '
                f"of the following types: {_go_list(skipped)}")
    skipped = []
    key_block: PEMBlock | None = None
    for block in _pem_blocks(key_pem):
        if block.type == "PRIVATE KEY" or block.type.endswith(" PRIVATE KEY"):
            key_block = block
            break
        skipped.append(block.type)
    if key_block is None:
        if not skipped:
            return "tls: failed to find any PEM data in key input"
        if skipped == ["CERTIFICATE"]:
            return "tls: found a certificate rather than a key in the PEM for the private key"
        return ('tls: failed to find PEM block with type ending in "PRIVATE KEY" in key input after skipping '
                f"PEM blocks of the following types: {_go_list(skipped)}")
    from cryptography import x509  # only for TLS key pairs: a plan need not load it
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    try:
        cert = x509.load_der_x509_certificate(certs[0])
        pub = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "x509: malformed certificate"
    try:
        key = _tls_private_key(key_block.der)
    except KeyFileError as e:
        return str(e)
    if isinstance(pub, rsa.RSAPublicKey):
        if not isinstance(key, RSAPrivateKey):
            return "tls: private key type does not match public key type"
        if pub.public_numbers().n != key.public_key().public_numbers().n:
            return "tls: private key does not match public key"
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            return "tls: private key type does not match public key type"
        if pub.public_numbers() != key.public_key().public_numbers():
            return "tls: private key does not match public key"
    elif isinstance(pub, Ed25519PublicKey):
        if not isinstance(key, Ed25519PrivateKey):
            return "tls: private key type does not match public key type"
        if pub.public_bytes_raw() != key.public_key().public_bytes_raw():
            return "tls: private key does not match public key"
    else:
        return "tls: unknown public key algorithm"
    return None
