"""OAuth tokens encrypted at rest: AES-256-GCM, a key id in every ciphertext, the row bound in.

A provider's access, refresh and ID tokens must stay usable (the application
calls the provider with them), so they cannot be hashed as session tokens are.
Given a secret key, they are stored as::

    hutch-aead1:<key id>:<base64url of nonce + ciphertext + tag>

- AES-256-GCM (``cryptography``'s ``AESGCM``) with a random 96-bit nonce per value.
- The key is derived from the application's secret with HKDF-SHA256, so any
  secret of 32 bytes or more serves; so is its id (8 hex digits), which names
  the key in each ciphertext. Keys rotate: given ``[new, old]``, values sealed
  under ``old`` still open and new ones are sealed under ``new``.
- The associated data is the value's place: its collection, its field, its
  row's id and the row's identity (user id, provider, provider account id). A
  ciphertext copied into another field, row or user's account does not open.

Without a key, tokens are stored as given. A stored value that is no
ciphertext is read as it is (it was written before a key was given); a
ciphertext with no key to open it is a :class:`hutch.ConfigError` saying which
key is missing, and one that does not open is :class:`hutch.CorruptData`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import orjson

import hutch

log = logging.getLogger("hutch.auth")

#: What a sealed value starts with; the format's version is in it.
PREFIX = "hutch-aead1:"
#: The least secret accepted, in bytes: as much as the key it is turned into.
SECRET_MIN = 32

#: One secret, or several with the one that seals new values first.
SecretKeys = str | bytes | Sequence[str | bytes]

M = TypeVar("M", bound=hutch.Model)

_NONCE = 12


_SEALED = re.compile(rf"{re.escape(PREFIX)}([0-9a-f]{{8}}):([A-Za-z0-9_-]+)").fullmatch


def is_sealed(value: object) -> bool:
    """Whether a stored value is a ciphertext of this module (rather than a plain token)."""
    return isinstance(value, str) and _SEALED(value) is not None


def utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8, or ValidationError (quoting nothing: it may be a secret)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        pass  # raised below, outside the handler: the exception must not carry the text
    raise hutch.ValidationError(
        f"{what} must be valid UTF-8 text; this one holds a lone surrogate",
        {what: "not valid UTF-8"},
    )


class TokenCipher:
    """Seals and opens token text under the keys derived from the given secrets."""

    def __init__(self, secret_keys: SecretKeys) -> None:
        if isinstance(secret_keys, str | bytes):
            secrets: list[object] = [secret_keys]
        elif isinstance(secret_keys, Sequence):
            secrets = list(secret_keys)
        else:
            raise hutch.ConfigError(
                "secret_key must be text, bytes, or a list of them (the current key first), "
                f"not a value of type {type(secret_keys).__name__}"
            )
        if not secrets:
            raise hutch.ConfigError("secret_key is an empty list; give at least one secret")
        aead, self._invalid_tag = _crypto()
        self._keys: dict[str, Any] = {}
        for secret in secrets:
            material = _material(secret)
            key_id = _derive(material, b"hutch token encryption key id", 4).hex()
            key = aead(_derive(material, b"hutch token encryption key", 32))
            if key_id in self._keys:
                raise hutch.ConfigError(
                    f"two secrets given in secret_key have the key id {key_id}; give each once"
                )
            self._keys[key_id] = key
        #: The id of the key that seals new values (the first secret's).
        self.key_id = next(iter(self._keys))

    def __repr__(self) -> str:  # key ids only: they name keys without revealing them
        return f"<TokenCipher sealing under {self.key_id}, opening {', '.join(self._keys)}>"

    def seal(self, plaintext: str, place: Sequence[str]) -> str:
        """``plaintext`` encrypted under the current key, bound to ``place``."""
        nonce = os.urandom(_NONCE)
        data = utf8(plaintext, place[1])
        sealed = self._keys[self.key_id].encrypt(nonce, data, _bound(place))
        payload = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{self.key_id}:{payload}"

    def open(self, stored: str, place: Sequence[str]) -> str:
        """The plaintext of a sealed value found at ``place``."""
        found = _SEALED(stored)
        assert found is not None, "open only what is_sealed says is sealed"
        key_id, payload = found.groups()
        key = self._keys.get(key_id)
        where = _where(place)
        if key is None:
            raise hutch.ConfigError(
                f"{where} was encrypted under key id {key_id!r}, which is not among the keys "
                f"given ({', '.join(self._keys)}): pass that secret too, after the current one "
                "(secret_key=[new, old])"
            )
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            return str(key.decrypt(raw[:_NONCE], raw[_NONCE:], _bound(place)).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError, self._invalid_tag):
            pass  # raised below, outside the handler: nothing of the value rides along
        raise hutch.CorruptData(
            f"{where} holds a ciphertext that does not open: it was altered, or copied "
            "from another row or field; unlink the account and link it again"
        )


@attrs.frozen
class SealedFields:
    """The token fields of one model, sealed on the way in and opened on the way out.

    ``identity`` names the fields whose values bind a ciphertext to its row.
    With no ``cipher``, values pass as they are, but a sealed one found in the
    store is refused: it needs the key it was sealed with.
    """

    cipher: TokenCipher | None
    collection: str
    fields: tuple[str, ...]
    identity: tuple[str, ...]

    def sealed(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The token fields among ``values`` as the store keeps them (sealed, given a key)."""
        out = {field: values[field] for field in self.fields if field in values}
        if self.cipher is not None:
            for field, value in out.items():
                if isinstance(value, str):
                    out[field] = self.cipher.seal(value, self._place(field, values))
        return out

    def opened(self, instance: M, fields: Iterable[str] | None = None) -> M:
        """``instance`` (a model read from the store) with its token ``fields`` (all) as given."""
        values = {field: getattr(instance, field) for field in (*self.fields, *self.identity)}
        changes: dict[str, Any] = {}
        for field in self.fields if fields is None else fields:
            value = values[field]
            if not is_sealed(value):
                continue
            place = self._place(field, values)
            if self.cipher is None:
                raise hutch.ConfigError(
                    f"{_where(place)} is encrypted: give the secret_key it was written with"
                )
            changes[field] = self.cipher.open(value, place)
        return attrs.evolve(instance, **changes) if changes else instance

    def opened_or_none(self, instance: M) -> M:
        """``instance`` with each token as given, or ``None`` where it does not open."""
        changes: dict[str, Any] = {}
        for field in self.fields:
            try:
                changes[field] = getattr(self.opened(instance, (field,)), field)
            except (hutch.ConfigError, hutch.CorruptData):
                changes[field] = None
        return attrs.evolve(instance, **changes)

    def reseal(self, repo: hutch.Repository[M]) -> int:
        """Store every row's tokens sealed under the current key; how many rows changed.

        Tokens sealed under an older key, and plain ones, are sealed again;
        ``updated_at`` is kept, since nothing a person would see changed. A row
        whose tokens do not open (their key is not given, or they were altered)
        is left as it is and named in a warning on the ``hutch.auth`` logger.
        """
        if self.cipher is None:
            raise hutch.ConfigError("sealing tokens again needs a secret_key")
        current = f"{PREFIX}{self.cipher.key_id}:"
        changed = 0
        with repo.db.store.transaction():
            for row in repo.all():
                tokens = [getattr(row, field) for field in self.fields]
                if all(value is None or value.startswith(current) for value in tokens):
                    continue
                try:
                    plain = self.opened(row)
                except (hutch.ConfigError, hutch.CorruptData) as error:
                    log.warning(
                        "left the tokens of %s %r as they are: %s", repo.collection, row.id, error
                    )
                    continue
                values = {f: getattr(plain, f) for f in (*self.fields, *self.identity)}
                repo.update(row.id, updated_at=row.updated_at, **self.sealed(values))
                changed += 1
        return changed

    def _place(self, field: str, values: Mapping[str, Any]) -> list[str]:
        return [self.collection, field, *(str(values.get(name)) for name in self.identity)]


def _bound(place: Sequence[str]) -> bytes:
    return orjson.dumps(list(place))


def _where(place: Sequence[str]) -> str:
    collection, field, *identity = place
    return f"{collection}.{field} of ({', '.join(identity)})"


def _material(secret: object) -> bytes:
    material: object = secret
    if isinstance(secret, str):
        try:
            material = secret.encode()
        except UnicodeEncodeError:
            material = None  # refused below, outside the handler, which would carry the secret
    if not isinstance(material, bytes) or len(material) < SECRET_MIN:
        raise hutch.ConfigError(
            f"a secret_key must be text (valid UTF-8) or bytes of at least {SECRET_MIN} bytes; "
            "make one with python -c 'import secrets; print(secrets.token_urlsafe(32))' and keep "
            "it out of the data folder"
        )
    return material


def _derive(material: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def _crypto() -> tuple[Any, type[Exception]]:
    """AES-GCM and its error from cryptography, imported only when a key is given."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise hutch.ConfigError(
            "encrypting tokens needs the cryptography package: pip install 'hutch[auth]'"
        ) from None
    return AESGCM, InvalidTag
