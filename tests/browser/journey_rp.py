"""A tiny relying party for the admin journey: the app a platform admin registers through the
admin pages. Unlike the demo app it keeps the tokens it received where the test can reach
them, so the test can check that the access token stops working once the student withdraws.

Code flow with PKCE S256, ``state`` and ``nonce``, the RFC 9207 ``iss`` check, the ID token
verified with the demo app's checker, then UserInfo; the page shows the pairwise ``sub``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from html import escape

import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, redirect, request, session

from idp.demo.rp import verify_id_token

HTTP_TIMEOUT = 10


@dataclass
class Received:
    """What the app got for one sign-in."""

    sub: str
    access_token: str
    claims: dict
    userinfo: dict


@dataclass
class JourneyRP:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid profile school"
    received: list[Received] = field(default_factory=list)

    def metadata(self) -> dict:
        response = requests.get(f"{self.issuer}/.well-known/openid-configuration",
                                timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def oauth(self) -> OAuth2Session:
        return OAuth2Session(self.client_id, self.client_secret, scope=self.scope,
                             redirect_uri=self.redirect_uri, code_challenge_method="S256",
                             token_endpoint_auth_method="client_secret_basic")

    def wsgi(self, port: int) -> Flask:
        app = Flask(f"journey-rp-{port}")
        # The provider also lives on 127.0.0.1: cookies are per host, not per port.
        app.config.update(SECRET_KEY=secrets.token_urlsafe(32),
                          SESSION_COOKIE_NAME=f"journey_rp_{port}",
                          SESSION_COOKIE_SAMESITE="Lax")

        def page(body: str, status: int = 200):
            return (f'<!doctype html><html lang="ja"><head><meta charset="utf-8">'
                    f"<title>Journey app</title></head><body>{body}</body></html>", status)

        @app.get("/")
        def home():
            return page('<h1>Journey app</h1><a id="sign-in" href="/login">サインイン</a>')

        @app.get("/login")
        def login():
            state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
            verifier = secrets.token_urlsafe(48)
            url, _ = self.oauth().create_authorization_url(
                self.metadata()["authorization_endpoint"], state=state, nonce=nonce,
                code_verifier=verifier)
            session["flow"] = {"state": state, "nonce": nonce, "verifier": verifier}
            return redirect(url, 303)

        @app.get("/callback")
        def callback():
            flow = session.pop("flow", None)
            if not flow or request.args.get("state") != flow["state"]:
                return page('<p id="error">state mismatch</p>', 400)
            if request.args.get("iss") != self.issuer:
                return page('<p id="error">wrong iss</p>', 400)
            if "code" not in request.args:
                return page(f'<p id="error">{escape(request.args.get("error", "no code"))}</p>',
                            400)
            metadata = self.metadata()
            token = self.oauth().fetch_token(metadata["token_endpoint"],
                                             code=request.args["code"],
                                             grant_type="authorization_code",
                                             code_verifier=flow["verifier"],
                                             timeout=HTTP_TIMEOUT)
            jwks = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).json()
            claims = verify_id_token(token["id_token"], jwks, issuer=self.issuer,
                                     client_id=self.client_id, nonce=flow["nonce"])
            info = requests.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT,
                                headers={"Authorization": f"Bearer {token['access_token']}"})
            info.raise_for_status()
            self.received.append(Received(claims["sub"], token["access_token"], claims,
                                          info.json()))
            return page(f'<h1>サインインしました</h1><p id="sub">{escape(claims["sub"])}</p>'
                        f'<p id="name">{escape(str(info.json().get("name", "")))}</p>')

        return app
