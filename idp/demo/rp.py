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
.button .en { color: #fff; }
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
    <p>このアプリが受けとった あなたの番号（<code>sub</code>）：
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


class SignedIn:
    """The people signed in to one demo app, in memory and bounded (the oldest leave first:
    someone signing in over and over cannot grow it without end)."""

    def __init__(self, limit: int = MAX_SIGNED_IN) -> None:
        self.limit = limit
        self._people: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str | None) -> dict | None:
        with self._lock:
            return self._people.get(key) if key else None

    def add(self, person: dict) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._people[key] = person
            while len(self._people) > self.limit:
                self._people.popitem(last=False)
        return key

    def pop(self, key: str) -> None:
        with self._lock:
            self._people.pop(key, None)


class _DemoRp:
    """One demo relying party's views; :func:`create_demo_rp` routes them."""

    def __init__(self, name: str, issuer: str, client_id: str, client_secret: str,
                 redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        self.name, self.issuer, self.redirect_uri = name, issuer, redirect_uri
        self.client_id, self.client_secret = client_id, client_secret
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.provider = _Provider(issuer)
        self.people = SignedIn()

    def oauth(self) -> OAuth2Session:
        return OAuth2Session(self.client_id, self.client_secret, scope=DEMO_SCOPE,
                             redirect_uri=self.redirect_uri, code_challenge_method="S256",
                             token_endpoint_auth_method="client_secret_basic")

    def render(self, page: str, status: int = 200, **context: Any):
        return render_template_string(PAGE, page=page, name=self.name, origin=self.origin,
                                      acr_card=ACR_CARD, **context), status

    def failure(self, message: str, detail: str | None = None, status: int = 400):
        return self.render("error", status, message=message, detail=detail)

    def current_person(self) -> dict | None:
        return self.people.get(session.get("person"))

    def headers(self, response):
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "
            f"{self.issuer}; frame-ancestors 'none'; base-uri 'none'")
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    def home(self):
        session.setdefault("form_token", secrets.token_urlsafe(16))
        return self.render("home", person=self.current_person(),
                           form_token=session["form_token"])

    def login(self):
        try:
            endpoint = self.provider.metadata()["authorization_endpoint"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            return self.failure("マイナゲートにつながりません。 / Cannot reach Mynagate.",
                                str(exc), 502)
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        extra = {"acr_values": ACR_CARD} if request.args.get("card") else {}
        url, _ = self.oauth().create_authorization_url(
            endpoint, state=state, nonce=nonce, code_verifier=verifier, **extra)
        session["flow"] = {"state": state, "nonce": nonce, "verifier": verifier}
        return redirect(url, 303)

    def callback(self):
        flow = session.pop("flow", None)
        refusal = self._refuse_response(flow)
        if refusal is not None:
            return refusal
        try:
            person = self._exchange(request.args["code"], flow)
        except IdTokenError as exc:
            return self.failure("IDトークンが正しくありません。 / The ID token is not valid.",
                                str(exc), 502)
        except Exception as exc:  # noqa: BLE001 - network, OAuth or JSON errors: show them
            return self.failure("サインインをしあげられませんでした。 / Could not finish "
                                "signing in.", f"{type(exc).__name__}: {exc}"[:300], 502)
        if person is None:
            return self.failure("UserInfo の番号がちがいます。 / UserInfo sub does not match.")
        session["person"] = self.people.add(person)
        return redirect(url_for("home"), 303)

    def _refuse_response(self, flow: dict | None):
        """The authorization response's checks before any token request, or None."""
        if not flow or request.args.get("state") != flow["state"]:
            return self.failure("このサインインは古いか、ほかの画面のものです。"
                                "もういちど ためしてね。 / This sign-in is stale or not ours "
                                "(state mismatch).")
        # RFC 9207: the response must come from our provider (mix-up defence).
        if request.args.get("iss") != self.issuer:
            return self.failure("ちがうところからの返事です。 / Wrong issuer in the response.")
        if request.args.get("error"):
            message = ("サインインしませんでした。 / Sign-in did not complete."
                       if request.args["error"] == "access_denied" else
                       "サインインできませんでした。 / Sign-in failed.")
            detail = request.args["error"] + (
                ": " + request.args["error_description"]
                if request.args.get("error_description") else "")
            return self.failure(message, detail[:300])
        if not request.args.get("code"):
            return self.failure("コードがありません。 / No authorization code.")
        return None

    def _exchange(self, code: str, flow: dict) -> dict | None:
        """Code → tokens → verified ID token → UserInfo; None when UserInfo's ``sub`` is not
        the ID token's."""
        metadata = self.provider.metadata()
        token = self.oauth().fetch_token(metadata["token_endpoint"], code=code,
                                         grant_type="authorization_code",
                                         code_verifier=flow["verifier"], timeout=HTTP_TIMEOUT)
        claims = verify_id_token(token.get("id_token", ""), self.provider.jwks(),
                                 issuer=self.issuer, client_id=self.client_id,
                                 nonce=flow["nonce"])
        info = requests.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT, headers={
            "Authorization": f"Bearer {token['access_token']}"})
        info.raise_for_status()
        userinfo = info.json()
        if userinfo.get("sub") != claims["sub"]:
            return None
        return {
            "sub": claims["sub"], "acr": claims.get("acr"), "amr": claims.get("amr") or [],
            "auth_time": claims.get("auth_time"), "id_token": token["id_token"],
            "id_token_json": json.dumps(claims, ensure_ascii=False, indent=2, sort_keys=True),
            "userinfo_json": json.dumps(userinfo, ensure_ascii=False, indent=2,
                                        sort_keys=True),
            "at": time.time(),
        }

    def logout(self):
        if request.form.get("token") != session.get("form_token"):
            abort(400)
        person = self.current_person()
        self.people.pop(session.pop("person", ""))
        try:
            end_session = self.provider.metadata()["end_session_endpoint"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            return self.failure("マイナゲートにつながりません。 / Cannot reach Mynagate.",
                                str(exc), 502)
        state = secrets.token_urlsafe(16)
        session["logout_state"] = state
        params = {"client_id": self.client_id, "post_logout_redirect_uri":
                  f"{self.origin}/logged-out", "state": state, "ui_locales": "ja"}
        if person:
            params["id_token_hint"] = person["id_token"]
        return redirect(f"{end_session}?{urlencode(params)}", 303)

    def logged_out(self):
        expected = session.pop("logout_state", None)
        if request.args.get("state") != expected:
            return self.failure("サインアウトの返事が合いません。 / Unexpected logout response.")
        return self.render("logged_out")


def create_demo_rp(name: str, issuer: str, client_id: str, client_secret: str,
                   redirect_uri: str, port: int) -> Flask:
    """A Flask app for one demo relying party, served on ``port`` at ``redirect_uri``'s host."""
    app = Flask(f"mynagate-demo-rp-{port}")
    app.config.update(
        SECRET_KEY=secrets.token_urlsafe(32),
        # Cookies are per host, not per port: the provider and the RP on 127.0.0.1 must not
        # overwrite each other's cookie.
        SESSION_COOKIE_NAME=f"demo_rp_{port}",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    demo = _DemoRp(name, issuer, client_id, client_secret, redirect_uri)
    app.after_request(demo.headers)
    for rule, endpoint, methods in (("/", "home", ["GET"]), ("/login", "login", ["GET"]),
                                    ("/callback", "callback", ["GET"]),
                                    ("/logout", "logout", ["POST"]),
                                    ("/logged-out", "logged_out", ["GET"])):
        app.add_url_rule(rule, endpoint, getattr(demo, endpoint), methods=methods)
    return app
