"""Password hashing (argon2id) and generation, shared by the dashboard, the CLI and the seed."""

from __future__ import annotations

import hmac
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.config import Settings

# Look-alike characters are left out because generated passwords are read off a terminal.
PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
MIN_GENERATED_LENGTH = 12

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, salt and parameters included."""
    if not password:
        raise ValueError("refusing to hash an empty password")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash`; False for a malformed hash too."""
    if not password_hash or not password:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def generate_password(length: int = 16) -> str:
    """A random password from an unambiguous alphabet, at least 12 characters long."""
    if length < MIN_GENERATED_LENGTH:
        raise ValueError(f"generated passwords need at least {MIN_GENERATED_LENGTH} characters")
    while True:
        candidate = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        # Mixed classes keep common password policies (and people pasting it) happy.
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
        ):
            return candidate


def bearer_token_ok(expected: str, authorization: str | None) -> bool:
    """Whether `Authorization: Bearer <expected>` was sent (in constant time); never when
    `expected` is empty."""
    if not expected or not authorization or not authorization.startswith("Bearer "):
        return False
    given = authorization[len("Bearer ") :].strip()
    return hmac.compare_digest(given.encode(), expected.encode())


def metrics_token_ok(settings: Settings, authorization: str | None) -> bool:
    """Whether `Authorization: Bearer <METRICS_TOKEN>` was sent; never with no token set."""
    return bearer_token_ok(settings.metrics_token, authorization)
