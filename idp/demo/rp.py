"""A tiny demo relying party: what a learning app's developer would write against Mynagate.

Authorization code flow with PKCE S256, ``state`` and ``nonce`` (Authlib's requests client),
the RFC 9207 ``iss`` check, the ID token verified against the provider's JWKS (joserfc), then
UserInfo; logout through the provider's ``end_session_endpoint``. It shows the ``sub`` and
claims it received, so two of them side by side show pairwise subjects at work.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, abort, redirect, render_template_string, request, session, url_for
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from idp.demo.seed import DEMO_SCOPE
from idp.signin.context import ACR_CARD

HTTP_TIMEOUT = 10
ID_TOKEN_ALGS = ["RS256", "ES256"]
MAX_SIGNED_IN = 200  # a demo keeps its signed-in people in memory; bound it


class IdTokenError(ValueError):
    """The ID token must not be trusted; the message says why."""


def verify_id_token(id_token: str, jwks: dict, *, issuer: str, client_id: str,
                    nonce: str | None, now: int | None = None, leeway: int = 30) -> dict:
    """OIDC Core §3.1.3.7: signature by the provider's keys, ``iss``, ``aud``, ``azp``,
    ``exp``/``iat`` and the ``nonce`` this app sent. Returns the claims."""
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=ID_TOKEN_ALGS)
        registry = JWTClaimsRegistry(
            now=now, leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True})
        registry.validate(token.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise IdTokenError(f"ID token rejected: {exc}") from exc
    claims = dict(token.claims)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenError("ID token rejected: several audiences but azp is not this app")
    if claims.get("nonce") != nonce:
        raise IdTokenError("ID token rejected: the nonce is not the one this app sent")
    return claims


PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ name }}</title>
<style>
body { font-family: sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.6; color: #222; }
.en { color: #666; font-size: .85em; display: block; }
.button { display: inline-block; padding: .6rem 1.2rem; border-radius: .4rem; border: 0;
          background: #0b5cad; color: #fff; text-decoration: none; font-size: 1rem;
          cursor: pointer; margin: .3rem 0; }
.button.secondary { background: #555; }
.sub { font-family: monospace; font-size: 1.1em; background: #eef4fb; padding: .4rem;
       word-break: break-all; }
pre { background: #f4f4f4; padding: .8rem; overflow-x: auto; }
.error { color: #a40000; }
th { text-align: left; padding-right: 1rem; vertical-align: top; }
</style></head><body>
<header><strong>{{ name }}</strong>
<span class="en">a demo relying party for Mynagate · {{ origin }}</span></header>
{% if page == "home" %}
  {% if person %}
    <h1>サインインしました <span class="en">Signed in</span></h1>
    <p>このアプリが受けとった あなたの番号(<code>sub</code>):
       <span class="en">The subject identifier this app received:</span></p>
    <p class="sub" id="sub">{{ person.sub }}</p>
    <p>べつのアプリでは、べつの番号になります。
       <span class="en">Another app (another host) receives a different sub for the same
       student: pairwise subjects.</span></p>
    <table>
      <tr><th>acr</th><td id="acr">{{ person.acr }}</td></tr>
      <tr><th>amr</th><td id="amr">{{ person.amr | join(" ") }}</td></tr>
      <tr><th>auth_time</th><td>{{ person.auth_time }}</td></tr>
    </table>
    <h2>IDトークンの中身 <span class="en">ID token claims (signature verified)</span></h2>
    <pre id="id-token-claims">{{ person.id_token_json }}</pre>
    <h2>UserInfo <span class="en">claims from the UserInfo endpoint</span></h2>
    <pre id="userinfo">{{ person.userinfo_json }}</pre>
    <form method="post" action="{{ url_for('logout') }}">
      <input type="hidden" name="token" value="{{ form_token }}">
      <button class="button secondary" type="submit">サインアウト
        <span class="en">Sign out (at Mynagate too)</span></button>
    </form>
  {% else %}
    <h1>ようこそ <span class="en">Welcome</span></h1>
    <p>学校のIDでサインインしてね。
       <span class="en">Sign in with your school account.</span></p>
  {% endif %}
  <p><a class="button" id="sign-in" href="{{ url_for('login') }}">マイナゲートでサインイン
     <span class="en">Sign in with Mynagate</span></a></p>
  <p><a id="sign-in-card" href="{{ url_for('login', card=1) }}">マイナンバーカードでサインイン
     <span class="en">Sign in with the MyNumber card (acr_values={{ acr_card }})</span></a></p>
{% elif page == "logged_out" %}
  <h1>サインアウトしました <span class="en">Signed out</span></h1>
  <p><a href="{{ url_for('home') }}">もどる <span class="en">Back</span></a></p>
{% else %}
  <h1 class="error">うまくいきませんでした <span class="en">Something went wrong</span></h1>
  <p class="error" id="error">{{ message }}</p>
  {% if detail %}<p><code id="error-detail">{{ detail }}</code></p>{% endif %}
  <p><a href="{{ url_for('home') }}">もどる <span class="en">Back</span></a></p>
{% endif %}
</body></html>
"""


class _Provider:
    """The provider's metadata, fetched when first needed (the provider may start later)."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._metadata: dict | None = None
        self._lock = threading.Lock()

    def metadata(self) -> dict:
        with self._lock:
            if self._metadata is None:
                response = requests.get(f"{self.issuer}/.well-known/openid-configuration",
                                        timeout=HTTP_TIMEOUT)
                response.raise_for_status()
                data = response.json()
                if data.get("issuer") != self.issuer:
                    raise ValueError("discovery: issuer does not match")
                self._metadata = data
            return self._metadata

    def jwks(self) -> dict:
        response = requests.get(self.metadata()["jwks_uri"], timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()


def create_demo_rp(name: str, issuer: str, client_id: str, client_secret: str,
                   redirect_uri: str, port: int) -> Flask:
    """A Flask app for one demo relying party, served on ``port`` at ``redirect_uri``'s host."""
    app = Flask(f"mynagate-demo-rp-{port}")
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    app.config.update(
        SECRET_KEY=secrets.token_urlsafe(32),
        # Cookies are per host, not per port: the provider and the RP on 127.0.0.1 must not
        # overwrite each other's cookie.
        SESSION_COOKIE_NAME=f"demo_rp_{port}",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    provider = _Provider(issuer)
    signed_in: OrderedDict[str, dict] = OrderedDict()
    signed_in_lock = threading.Lock()

    def oauth() -> OAuth2Session:
        return OAuth2Session(client_id, client_secret, scope=DEMO_SCOPE,
                             redirect_uri=redirect_uri, code_challenge_method="S256",
                             token_endpoint_auth_method="client_secret_basic")

    def render(page: str, status: int = 200, **context: Any):
        return render_template_string(PAGE, page=page, name=name, origin=origin,
                                      acr_card=ACR_CARD, **context), status

    def failure(message: str, detail: str | None = None, status: int = 400):
        return render("error", status, message=message, detail=detail)

    def current_person() -> dict | None:
        key = session.get("person")
        with signed_in_lock:
            return signed_in.get(key) if key else None

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "
            f"{issuer}; frame-ancestors 'none'; base-uri 'none'")
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def home():
        session.setdefault("form_token", secrets.token_urlsafe(16))
        return render("home", person=current_person(), form_token=session["form_token"])

    @app.get("/login")
    def login():
        try:
            endpoint = provider.metadata()["authorization_endpoint"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            return failure("マイナゲートにつながりません。 / Cannot reach Mynagate.",
                           str(exc), 502)
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        extra = {"acr_values": ACR_CARD} if request.args.get("card") else {}
        url, _ = oauth().create_authorization_url(
            endpoint, state=state, nonce=nonce, code_verifier=verifier, **extra)
        session["flow"] = {"state": state, "nonce": nonce, "verifier": verifier}
        return redirect(url, 303)

    @app.get("/callback")
    def callback():
        flow = session.pop("flow", None)
        if not flow or request.args.get("state") != flow["state"]:
            return failure("このサインインは古いか、ほかの画面のものです。もういちど ためしてね。 "
                           "/ This sign-in is stale or not ours (state mismatch).")
        # RFC 9207: the response must come from our provider (mix-up defence).
        if request.args.get("iss") != issuer:
            return failure("ちがうところからの返事です。 / Wrong issuer in the response.")
        if request.args.get("error"):
            message = ("サインインしませんでした。 / Sign-in did not complete."
                       if request.args["error"] == "access_denied" else
                       "サインインできませんでした。 / Sign-in failed.")
            detail = request.args["error"] + (
                ": " + request.args["error_description"]
                if request.args.get("error_description") else "")
            return failure(message, detail[:300])
        code = request.args.get("code")
        if not code:
            return failure("コードがありません。 / No authorization code.")
        try:
            metadata = provider.metadata()
            token = oauth().fetch_token(metadata["token_endpoint"], code=code,
                                        grant_type="authorization_code",
                                        code_verifier=flow["verifier"], timeout=HTTP_TIMEOUT)
            claims = verify_id_token(token.get("id_token", ""), provider.jwks(),
                                     issuer=issuer, client_id=client_id, nonce=flow["nonce"])
            info = requests.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT, headers={
                "Authorization": f"Bearer {token['access_token']}"})
            info.raise_for_status()
            userinfo = info.json()
        except IdTokenError as exc:
            return failure("IDトークンが正しくありません。 / The ID token is not valid.",
                           str(exc), 502)
        except Exception as exc:  # noqa: BLE001 - network, OAuth or JSON errors: show them
            return failure("サインインをしあげられませんでした。 / Could not finish signing in.",
                           f"{type(exc).__name__}: {exc}"[:300], 502)
        if userinfo.get("sub") != claims["sub"]:
            return failure("UserInfo の番号がちがいます。 / UserInfo sub does not match.")
        person = {
            "sub": claims["sub"], "acr": claims.get("acr"), "amr": claims.get("amr") or [],
            "auth_time": claims.get("auth_time"), "id_token": token["id_token"],
            "id_token_json": json.dumps(claims, ensure_ascii=False, indent=2, sort_keys=True),
            "userinfo_json": json.dumps(userinfo, ensure_ascii=False, indent=2,
                                        sort_keys=True),
            "at": time.time(),
        }
        key = secrets.token_urlsafe(16)
        with signed_in_lock:
            signed_in[key] = person
            while len(signed_in) > MAX_SIGNED_IN:
                signed_in.popitem(last=False)
        session["person"] = key
        return redirect(url_for("home"), 303)

    @app.post("/logout")
    def logout():
        if request.form.get("token") != session.get("form_token"):
            abort(400)
        person = current_person()
        with signed_in_lock:
            signed_in.pop(session.pop("person", ""), None)
        try:
            end_session = provider.metadata()["end_session_endpoint"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            return failure("マイナゲートにつながりません。 / Cannot reach Mynagate.",
                           str(exc), 502)
        state = secrets.token_urlsafe(16)
        session["logout_state"] = state
        params = {"client_id": client_id, "post_logout_redirect_uri":
                  f"{origin}/logged-out", "state": state, "ui_locales": "ja"}
        if person:
            params["id_token_hint"] = person["id_token"]
        return redirect(f"{end_session}?{urlencode(params)}", 303)

    @app.get("/logged-out")
    def logged_out():
        expected = session.pop("logout_state", None)
        if request.args.get("state") != expected:
            return failure("サインアウトの返事が合いません。 / Unexpected logout response.")
        return render("logged_out")

    return app
