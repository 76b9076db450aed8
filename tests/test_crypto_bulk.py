"""Keyring.encrypt_many (bulk encryption for the demo) and the stored formats it must keep."""

from __future__ import annotations

import base64
import random

import pytest

from plusjeklas_tui import crypto
from plusjeklas_tui.crypto import NONCE_BYTES, FieldKey, Keyring
from plusjeklas_tui.errors import KeyProblem

FIXED_KEY = FieldKey(key_id="0a1b2c3d", secret=bytes(range(32)))
VALUES = ["beheer@obs-de-klimop.nl", "Jan de Vries", "Anaïs Çelik-Ørsted", "", '["+31612345678"]']


class NonceStream:
    """A stand-in for ``os.urandom``: a fixed byte stream, handed out in order, calls counted."""

    def __init__(self, seed: int = 0) -> None:
        self.stream = random.Random(seed).randbytes(1 << 16)
        self.position = 0
        self.calls: list[int] = []

    def __call__(self, size: int) -> bytes:
        self.calls.append(size)
        chunk = self.stream[self.position : self.position + size]
        self.position += size
        return chunk


def nonce_of(token: str) -> bytes:
    return base64.urlsafe_b64decode(token.split(".", 2)[2])[:NONCE_BYTES]


def test_tokens_decrypt_to_the_values_in_order() -> None:
    keyring = Keyring([FieldKey.generate()])
    tokens = keyring.encrypt_many(VALUES, "administrator.name")
    assert len(tokens) == len(VALUES)
    assert [keyring.decrypt(t, "administrator.name") for t in tokens] == VALUES


def test_tokens_are_exactly_what_encrypt_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the same random bytes, one bulk call and a call per value write the same tokens."""
    keyring = Keyring([FIXED_KEY])
    one_by_one = NonceStream()
    monkeypatch.setattr(crypto.os, "urandom", one_by_one)
    singles = [keyring.encrypt(v, "organisation.email") for v in VALUES]
    bulk_stream = NonceStream()
    monkeypatch.setattr(crypto.os, "urandom", bulk_stream)
    bulk = keyring.encrypt_many(VALUES, "organisation.email")
    assert bulk == singles
    assert bulk_stream.calls == [NONCE_BYTES * len(VALUES)]  # one urandom call for the batch
    assert one_by_one.calls == [NONCE_BYTES] * len(VALUES)


def test_token_format_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token written before encrypt_many existed (same key, same nonce) is still written."""
    keyring = Keyring([FIXED_KEY])
    monkeypatch.setattr(crypto.os, "urandom", lambda size: bytes(range(1, size + 1)))
    stored = "v1.0a1b2c3d.AQIDBAUGBwgJCgsM7WEOjmrGr_iw-OBGLSbw9kXcD6bma9_SeKdx0mlDkMH4lWcEiepF"
    assert keyring.encrypt("beheer@obs-de-klimop.nl", "administrator.email") == stored
    assert keyring.encrypt_many(["beheer@obs-de-klimop.nl"], "administrator.email") == [stored]
    assert keyring.decrypt(stored, "administrator.email") == "beheer@obs-de-klimop.nl"


def test_blind_index_is_unchanged() -> None:
    """Stored blind indexes stay valid: the value the index function has always given."""
    keyring = Keyring([FIXED_KEY])
    assert keyring.blind_index("beheer@obs-de-klimop.nl") == "79f23f9e77691fbf5f084f60ac42d4f7"


def test_nonces_are_unique_across_a_batch() -> None:
    keyring = Keyring([FieldKey.generate()])
    tokens = keyring.encrypt_many(["dezelfde waarde"] * 2_000, "consent_event.evidence")
    nonces = [nonce_of(t) for t in tokens]
    assert all(len(n) == NONCE_BYTES for n in nonces)
    assert len(set(nonces)) == len(nonces)
    assert len(set(tokens)) == len(tokens)  # equal values never give equal tokens
    assert nonce_of(keyring.encrypt_many(["x"], "c")[0]) not in set(nonces)  # nor across batches


def test_tokens_are_bound_to_their_context() -> None:
    keyring = Keyring([FieldKey.generate()])
    tokens = keyring.encrypt_many(["NL91ABNA0417164300", "NL20INGB0001234567"], "organisation.iban")
    for token in tokens:
        with pytest.raises(KeyProblem, match=r"organisation\.notes: the value does not decrypt"):
            keyring.decrypt(token, "organisation.notes")
        assert "NL91ABNA0417164300" not in token and "NL20INGB" not in token


def test_empty_batch_gives_no_tokens() -> None:
    keyring = Keyring([FieldKey.generate()])
    assert keyring.encrypt_many([], "administrator.email") == []
    assert keyring.encrypt_many((), "administrator.email") == []


def test_bulk_encrypts_under_the_primary_key_only() -> None:
    """Halfway through a rotation new tokens carry the new key; the old key cannot read them."""
    old, new = FieldKey.generate(), FieldKey.generate()
    rotating = Keyring([new, old])
    tokens = rotating.encrypt_many(VALUES, "administrator.email")
    assert {Keyring.key_id_of(t) for t in tokens} == {new.key_id}
    assert [Keyring([new]).decrypt(t, "administrator.email") for t in tokens] == VALUES
    with pytest.raises(KeyProblem, match="not in the loaded key set"):
        Keyring([old]).decrypt(tokens[0], "administrator.email")
