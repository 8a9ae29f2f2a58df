"""Playing the card and the bridge in tests: tokens signed with ``cryptography`` directly
(independent of idp.jpki and card_bridge), and a browser on the card sign-in page."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import Browser, csrf_of, query_of

ORIGIN = "http://127.0.0.1:5000"  # the issuer's origin in the test settings


@dataclass
class Card:
    """A card as the tests see it: its certificate and the key inside the chip."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number


def sign_like_the_card(key: rsa.RSAPrivateKey, origin: str, challenge: str) -> bytes:
    """RSASSA-PKCS1-v1_5/SHA-256 over SHA-256(origin) || SHA-256(challenge), as in the
    published protocol (written out here, independent of idp.jpki.challenge)."""
    message = hashlib.sha256(origin.encode()).digest() + hashlib.sha256(challenge.encode()).digest()
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def make_token(certificate_der: bytes, key: rsa.RSAPrivateKey, challenge: str,
               origin: str = ORIGIN) -> dict:
    return {"format": "jpki-auth:1",
            "certificate": base64.b64encode(certificate_der).decode(),
            "algorithm": "RS256",
            "signature": base64.b64encode(sign_like_the_card(key, origin, challenge)).decode(),
            "bridge": "pytest/1.0"}


def token_for(card: Card, challenge: dict) -> dict:
    """The bridge's token for a challenge as the provider handed it out (page or endpoint)."""
    return make_token(card.der, card.key, challenge["challenge"], challenge["origin"])


class CardBrowser(Browser):
    """A browser on the card sign-in page, plus the password flow of :class:`Browser`."""

    _csrf_token: str | None = None

    def card_page(self, txn: str | None = None):
        """The card page, as the browser loads it (which issues its first challenge)."""
        page = self.c.get("/login/card", query_string={"txn": txn} if txn else None)
        assert page.status_code == 200
        self._csrf_token = re.search(r'data-csrf="([^"]+)"', page.get_data(as_text=True))[1]
        return page

    def csrf(self, txn: str | None = None) -> str:
        """This browser's CSRF token (one per session), as the page's script holds it. Read
        from the password page the first time, not the card page: loading the card page
        may issue a challenge."""
        if self._csrf_token is None:
            self._csrf_token = csrf_of(self.c.get("/login").get_data(as_text=True))
        return self._csrf_token

    def page_challenge(self, txn: str | None = None) -> dict:
        """The challenge the card page came with (data-challenge...), as its script reads it."""
        html = self.card_page(txn).get_data(as_text=True)
        found = re.search(r'data-challenge="([^"]+)"\s+data-challenge-origin="([^"]+)"\s+'
                          r'data-challenge-expires-in="(\d+)"', html)
        assert found, "the card page brought no challenge"
        return {"challenge": found[1], "origin": found[2], "expires_in": int(found[3])}

    def challenge(self, txn: str | None = None) -> dict:
        response = self.c.post("/login/card/challenge", query_string={"txn": txn} if txn else None,
                               headers={"X-CSRFToken": self.csrf(txn)})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def verify(self, token, txn: str | None = None, *, raw: bytes | None = None):
        kwargs = {"data": raw, "content_type": "application/json"} if raw is not None \
            else {"json": token}
        return self.c.post("/login/card/verify", query_string={"txn": txn} if txn else None,
                           headers={"X-CSRFToken": self.csrf(txn)}, **kwargs)

    def use_card(self, card: Card, txn: str | None = None, *, origin: str = ORIGIN):
        """Challenge, sign, verify: what the page's script does with the bridge."""
        answer = self.challenge(txn)
        assert answer["origin"] == ORIGIN and answer["expires_in"] == 300
        return self.verify(make_token(card.der, card.key, answer["challenge"], origin), txn)

    def start_authorization(self, rp, **params) -> tuple[str, str]:
        """/authorize until the login page; returns (txn id, PKCE verifier)."""
        response, verifier = self.authorize(rp, **params)
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        location = response.headers["Location"]
        assert location.startswith("/login"), location
        return query_of(location)["txn"], verifier

    def finish(self, response, rp) -> dict:
        """Follow redirects (consent included) back to the RP; returns its query."""
        while response.status_code in (302, 303):
            location = response.headers["Location"]
            if location.startswith(rp.redirect_uri):
                return query_of(location)
            if location.startswith("/consent"):
                response = self.consent(response)
            else:
                response = self.c.get(location)
        raise AssertionError(f"stopped at {response.status_code}: "
                             f"{response.get_data(as_text=True)[:300]}")

    def follow_json_redirect(self, response, rp) -> dict:
        """Where the card page's script goes next: straight back to the RP when the request
        could be answered at once (its query then), else through our pages."""
        assert response.status_code == 200, response.get_json()
        target = response.get_json()["redirect"]
        if target.startswith(rp.redirect_uri):
            return query_of(target)
        return self.finish(self.c.get(target), rp)

    def password_after_card(self, response, student, rp) -> dict:
        """card_not_linked -> the login page -> password -> つなぐ -> back at the RP."""
        return self.finish(self.link_after_card(response, student), rp)

    def link_after_card(self, response, student, *, link: bool = True):
        """card_not_linked -> the login page -> password -> the confirmation page -> つなぐ
        (or つながない); returns the answer to that choice."""
        body = response.get_json()
        assert response.status_code == 403 and body["error"] == "card_not_linked", body
        page = self.c.get(body["redirect"])
        assert page.status_code == 200
        signed_in = self.password_login(page, student)
        assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:300]
        assert signed_in.headers["Location"].startswith("/login/link"), signed_in.headers
        return self.choose_link(self.c.get(signed_in.headers["Location"]), link=link)

    def choose_link(self, confirm_page, *, link: bool = True):
        """Press つなぐ (or つながない) on the confirmation page."""
        assert confirm_page.status_code == 200, confirm_page.get_data(as_text=True)[:300]
        html = confirm_page.get_data(as_text=True)
        fields = dict(re.findall(r'name="(txn|card)" type="hidden" value="([^"]*)"', html))
        data = {"csrf_token": csrf_of(html), **fields, ("link" if link else "skip"): "1"}
        return self.c.post("/login/link", data=data)


def error_of(response) -> str:
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)[:300]
    return body.get("error")
