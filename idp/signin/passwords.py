"""Password hashing and policy (NIST SP 800-63B / OWASP): Argon2id, 8–128 characters, no
composition rules, a list of common passwords refused when a password is set."""

from __future__ import annotations

import secrets
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP: Argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the login id is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_LENGTH = 8
MAX_LENGTH = 128


class PasswordPolicyError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("idp.data").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(s.lower() for s in map(str.strip, text.splitlines()) if s and s[0] != "#")


def check_policy(password: str, *, login_id: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError("too_short", f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError("too_long", f"at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in common_passwords() or (login_id and lowered == login_id.lower()):
        raise PasswordPolicyError("too_common", "this password is too easy to guess")


def hash_password(password: str, *, login_id: str = "") -> str:
    check_policy(password, login_id=login_id)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-work check: an unknown account still costs one Argon2 verification."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def generate_first_password() -> str:
    """A first password a child can type: 3 groups of 4 lowercase letters/digits, unambiguous."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
