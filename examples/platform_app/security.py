"""Passwords, the session cookie and CSRF tokens: the few lines that keep accounts apart.

- Passwords are hashed with Argon2 (``pwdlib``'s recommended settings); a sign-in
  with an unknown email still verifies a hash, so it takes as long as a wrong password.
- The session cookie holds a random token; the store keeps only its SHA-256
  (``AuthAdapter``). It is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (no
  other site's form sends it) and ``Secure`` when the request came over HTTPS.
- Every form carries a CSRF token derived from a secret cookie: the session token
  once signed in, before that a random pre-session cookie. Another site can
  neither read the cookie nor, so, compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError

SESSION_COOKIE = "platform_session"
PRESESSION_COOKIE = "platform_presession"
SESSION_DAYS = 30
#: The shortest and the longest password a sign-up accepts.
MIN_PASSWORD, MAX_PASSWORD = 8, 1024

_hasher = PasswordHash.recommended()
_DECOY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """What the user row keeps: an Argon2 hash with its salt and settings."""
    return _hasher.hash(password)


def password_matches(password: str, stored: str | None) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; ``None`` (no password) never
    matches, after as much work as a real check."""
    if stored is None or len(password) > MAX_PASSWORD:
        _hasher.verify(password, _DECOY)
        return False
    try:
        return _hasher.verify(password, stored)
    except PwdlibError:  # a hash this hasher cannot read (made elsewhere): a wrong password
        return False


def new_token() -> str:
    """A session or pre-session token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def session_expiry() -> datetime:
    """When a session made now ends."""
    return datetime.now(UTC) + timedelta(days=SESSION_DAYS)


def csrf_token(secret: str) -> str:
    """The token a form must carry when the browser holds the cookie ``secret``."""
    return hashlib.sha256(b"platform csrf\0" + secret.encode()).hexdigest()


def csrf_matches(secret: str | None, given: object) -> bool:
    """Whether a form's token belongs to the browser's secret cookie."""
    if not secret or not isinstance(given, str):
        return False
    return hmac.compare_digest(csrf_token(secret), given)
