"""Steps several browser journeys share."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

OWN_PASSWORD = "わたしだけの ひみつの ことば 42"


def choose_own_password(page: Any, issuer: str, shot: Callable[[str], None],
                        password: str = OWN_PASSWORD) -> None:
    """A pupil signed in with the slip's first password is asked to choose their own
    before anything else (the app's sign-in then carries on)."""
    page.wait_for_url(re.compile(re.escape(issuer) + r"/account/first-password"))
    assert page.locator("#first-password-title").count() == 1
    page.get_by_label("新しいパスワード（8文字以上）", exact=True).fill(password)
    page.get_by_label("新しいパスワードをもう一度", exact=True).fill(password)
    shot("first-password")
    page.click("#first-password-submit")
