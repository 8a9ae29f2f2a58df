"""The device cookie on the wire (the rules are in :mod:`idp.signin.throttle`)."""

from __future__ import annotations

from flask import Response, request

from idp.services import services
from idp.signin.throttle import DEVICE_COOKIE, DEVICE_MAX_AGE


def current() -> str | None:
    return request.cookies.get(DEVICE_COOKIE)


def attach(response: Response, value: str | None) -> Response:
    """Set the cookie a sign-in earned: HttpOnly, SameSite=Lax, Secure over https."""
    if value:
        response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_MAX_AGE, path="/",
                            httponly=True, samesite="Lax",
                            secure=services().settings.issuer_is_https)
    return response
