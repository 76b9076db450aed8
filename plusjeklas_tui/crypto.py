"""Encryption of personal fields at rest, and keyed blind indexes for exact lookup.

Every personal value (people's names, every e-mail address, personal phone numbers, the IBAN,
free-text notes and evidence) is stored as an AES-256-GCM token::

    v1.<key id>.<base64url(nonce || ciphertext || tag)>

The associated data binds each token to its column (``"administrator.email"``), so a token
copied into another column does not decrypt. The key id in the token lets several keys be
loaded at once, which is what makes ``keys rotate`` resumable: until every row carries the new
key id, the key file keeps the old key as well.

Exact lookup by e-mail uses an HMAC-SHA256 blind index under a second key derived from the same
secret (HKDF with distinct ``info``), so the index never equals anything computable without the key.
A third derived key seals the audit log (:mod:`plusjeklas_tui.services.audit_chain`).
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from plusjeklas_tui.errors import KeyProblem

TOKEN_VERSION = "v1"
SECRET_BYTES = 32
NONCE_BYTES = 12
KEY_ID_LENGTH = 8
INDEX_HEX_LENGTH = 32  # 128 bits of HMAC: collision-free for any realistic table


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _token(key_id: str, nonce: bytes, sealed: bytes) -> str:
    """The token layout, written in this one place; :meth:`Keyring.decrypt` reads it back."""
    return f"{TOKEN_VERSION}.{key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


@dataclass(frozen=True)
class FieldKey:
    """One secret, with the encryption and index keys derived from it."""

    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> FieldKey:
        return cls(key_id=secrets.token_hex(KEY_ID_LENGTH // 2), secret=secrets.token_bytes(32))

    def __post_init__(self) -> None:
        if len(self.secret) != SECRET_BYTES:
            raise KeyProblem(f"key {self.key_id}: must be {SECRET_BYTES} bytes")
        object.__setattr__(
            self, "_aead", AESGCM(_derive(self.secret, b"plusjeklas field encryption"))
        )
        object.__setattr__(self, "_index_key", _derive(self.secret, b"plusjeklas blind index"))
        object.__setattr__(self, "_audit_key", _derive(self.secret, b"plusjeklas audit chain"))

    @property
    def aead(self) -> AESGCM:
        return self._aead  # type: ignore[attr-defined]

    def index(self, value: str) -> str:
        digest = hmac.digest(self._index_key, value.encode(), "sha256")  # type: ignore[attr-defined]
        return digest.hex()[:INDEX_HEX_LENGTH]

    @property
    def audit_mac_key(self) -> bytes:
        """The HMAC key that seals audit events (its own HKDF label: never the other keys)."""
        return self._audit_key  # type: ignore[attr-defined]

    def to_line(self) -> str:
        return f"{self.key_id}:{base64.urlsafe_b64encode(self.secret).decode()}"

    @classmethod
    def from_line(cls, line: str, where: str) -> FieldKey:
        key_id, sep, encoded = line.strip().partition(":")
        if not sep or len(key_id) != KEY_ID_LENGTH:
            raise KeyProblem(f"{where}: a key line must read '<8-character id>:<base64 secret>'")
        try:
            secret = base64.urlsafe_b64decode(encoded)
        except ValueError as exc:
            raise KeyProblem(f"{where}: key {key_id} is not valid base64") from exc
        return cls(key_id=key_id, secret=secret)


class Keyring:
    """The loaded keys: the first encrypts, all of them decrypt and answer lookups."""

    def __init__(self, keys: Iterable[FieldKey]) -> None:
        self.keys: list[FieldKey] = list(keys)
        if not self.keys:
            raise KeyProblem("no encryption key loaded")
        self._by_id = {k.key_id: k for k in self.keys}

    @property
    def primary(self) -> FieldKey:
        return self.keys[0]

    def encrypt(self, plaintext: str, context: str) -> str:
        key = self.primary
        nonce = os.urandom(NONCE_BYTES)
        return _token(
            key.key_id, nonce, key.aead.encrypt(nonce, plaintext.encode(), context.encode())
        )

    def encrypt_many(self, values: Sequence[str], context: str) -> list[str]:
        """:meth:`encrypt` of each value, in order: the same tokens, each with its own nonce.

        For bulk writes (the demo's million values): one ``urandom`` call serves the whole
        batch, cut into a fresh random nonce per value, and the per-call lookups happen once,
        which together take about a third off the cost per value.
        """
        key = self.primary
        key_id, seal, aad = key.key_id, key.aead.encrypt, context.encode()
        nonces = os.urandom(NONCE_BYTES * len(values))
        tokens = []
        for start, value in zip(range(0, len(nonces), NONCE_BYTES), values, strict=True):
            nonce = nonces[start : start + NONCE_BYTES]
            tokens.append(_token(key_id, nonce, seal(nonce, value.encode(), aad)))
        return tokens

    def decrypt(self, token: str, context: str) -> str:
        version, _, rest = token.partition(".")
        key_id, _, body = rest.partition(".")
        if version != TOKEN_VERSION or not body:
            raise KeyProblem(f"field {context}: stored value is not an encrypted token")
        key = self._by_id.get(key_id)
        if key is None:
            raise KeyProblem(
                f"field {context}: encrypted with key {key_id}, which is not in the loaded key set "
                f"({', '.join(self._by_id)}); is the right key file configured?"
            )
        raw = base64.urlsafe_b64decode(body)
        try:
            plain = key.aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except InvalidTag as exc:
            raise KeyProblem(
                f"field {context}: the value does not decrypt under key {key_id} "
                "(wrong key file, or the stored value was changed)"
            ) from exc
        return plain.decode()

    @staticmethod
    def key_id_of(token: str) -> str:
        return token.split(".", 2)[1]

    def blind_index(self, value: str) -> str:
        """Index of *value* under the primary key (what a new or rotated row stores)."""
        return self.primary.index(value)

    def blind_index_candidates(self, value: str) -> list[str]:
        """Index of *value* under every loaded key, so lookups work halfway through a rotation."""
        return [k.index(value) for k in self.keys]


# --- key storage -----------------------------------------------------------------------------


def parse_keys(text: str, where: str) -> Keyring:
    lines = [ln.strip() for ln in text.splitlines()]
    keys = [FieldKey.from_line(ln, where) for ln in lines if ln and not ln.startswith("#")]
    if not keys:
        raise KeyProblem(f"{where}: holds no key; run `plusjeklas keys init`")
    return Keyring(keys)


def format_keys(keyring: Keyring) -> str:
    header = (
        "# Plusjeklas field-encryption keys. The first line encrypts; all lines decrypt.\n"
        "# Keep this file outside the database backups and readable only by the app's group.\n"
    )
    return header + "".join(k.to_line() + "\n" for k in keyring.keys)


def load_key_file(path: Path) -> Keyring:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise KeyProblem(
            f"key file {path} does not exist; run `plusjeklas keys init` to create it"
        ) from exc
    if info.st_mode & stat.S_IROTH:
        raise KeyProblem(
            f"key file {path} is readable by every user on this machine; "
            f"run `chmod o-rwx {path}` (0600, or 0640 for the app's group)"
        )
    try:
        text = path.read_text()
    except PermissionError as exc:
        raise KeyProblem(f"key file {path} cannot be read by this account") from exc
    return parse_keys(text, str(path))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, name: str, keyring: Keyring, mode: int, gid: int | None) -> Path:
    """A fully written, fsynced temporary key file next to its final place."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        if gid is not None and gid != os.getegid():
            try:
                os.fchown(fd, -1, gid)
            except PermissionError as exc:
                raise KeyProblem(
                    f"cannot give the new key file the group of {directory / name} "
                    f"(gid {gid}); run the command as a member of that group"
                ) from exc
        os.write(fd, format_keys(keyring).encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return Path(tmp)


def create_key_file(path: Path, keyring: Keyring) -> None:
    """Create *path* (mode 0600) atomically and exclusively: never half-written, never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _write_temp(path.parent, path.name, keyring, 0o600, None)
    try:
        os.link(tmp, path)  # fails if the name exists, even when it appeared a moment ago
    except FileExistsError as exc:
        raise KeyProblem(key_file_exists_message(path)) from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def replace_key_file(path: Path, keyring: Keyring) -> None:
    """Replace *path* atomically, keeping its group and mode (0640 for the app's group stays)."""
    path = path.resolve()  # a symlinked key file: replace the file it points to, keep the link
    info = path.stat()
    mode = info.st_mode & 0o660
    tmp = _write_temp(path.parent, path.name, keyring, mode, info.st_gid)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def key_file_exists_message(path: Path) -> str:
    return (
        f"key file {path} already exists; refusing to overwrite it (data encrypted under that "
        "key would become unreadable). To change keys, run `plusjeklas keys rotate`"
    )


def write_key_file(path: Path, keyring: Keyring, *, exclusive: bool = False) -> None:
    """Create the key file (mode 0600), or replace it keeping its mode and group.

    With ``exclusive`` an existing file is never replaced: a second key would make the data
    encrypted under the first unreadable.
    """
    if exclusive or not path.exists():
        create_key_file(path, keyring)
    else:
        replace_key_file(path, keyring)
