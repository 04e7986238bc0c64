"""Secrets kept in the database encrypted: Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`), with a key
derived (HKDF-SHA256) from the platform's encryption key, `KOPROGO_ENCRYPTION_KEY`.

A database dump or backup then holds no usable credential; losing the key means entering those secrets again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from koprogo_iot.domain.errors import KoproGoError


class SealError(KoproGoError):
    """A stored secret cannot be decrypted: it was sealed with another encryption key."""


class Sealer:
    def __init__(self, key: str) -> None:
        if len(key) < 32:
            raise ValueError("the encryption key must be at least 32 characters")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"koprogo-iot stored secrets").derive(
            key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SealError("a stored secret cannot be decrypted: KOPROGO_ENCRYPTION_KEY changed") from None
