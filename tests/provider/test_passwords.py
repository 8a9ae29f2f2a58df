"""The password policy's common-password blocklist (NIST SP 800-63B §3.1.1.2)."""

from __future__ import annotations

import secrets
from importlib import resources

import pytest

from idp.signin.passwords import MIN_LENGTH, PasswordPolicyError, check_policy, common_passwords

# From SecLists, plus a Japan/school-context entry and one from the earlier hand-written list.
KNOWN_COMMON = ["password1", "iloveyou", "baseball", "qwertyuiop", "12345678", "sakura123",
                "gakkou123", "doraemon"]


def _variants(word: str) -> list[str]:
    return [word, word.upper(), word.capitalize(), word.swapcase(),
            "".join(c.upper() if i % 2 else c for i, c in enumerate(word))]


@pytest.mark.parametrize("word", KNOWN_COMMON)
def test_common_passwords_are_refused_in_any_case(word):
    for variant in _variants(word):
        with pytest.raises(PasswordPolicyError) as refused:
            check_policy(variant)
        assert refused.value.code == "too_common", variant


def test_a_random_passphrase_is_accepted():
    check_policy("correct horse battery " + secrets.token_hex(4))
    check_policy(secrets.token_urlsafe(12), login_id="pupil01")


def test_password_equal_to_the_login_id_is_refused():
    with pytest.raises(PasswordPolicyError) as refused:
        check_policy("Tanaka.Hanako7", login_id="tanaka.hanako7")
    assert refused.value.code == "too_common"


def test_the_list_is_large_and_clean():
    entries = common_passwords()
    assert len(entries) >= 2000
    assert all(len(e) >= MIN_LENGTH for e in entries)
    assert all(e == e.strip() and e == e.lower() for e in entries)
    assert not any(e.startswith("#") for e in entries)
    raw = resources.files("idp.data").joinpath("common-passwords.txt").read_text("utf-8")
    lines = [line for line in raw.splitlines() if line and not line.startswith("#")]
    assert all(line == line.strip() and len(line) >= MIN_LENGTH for line in lines)
    assert len(lines) == len(set(lines)) == len(entries)
    assert raw.startswith("# Common passwords refused at set time")
