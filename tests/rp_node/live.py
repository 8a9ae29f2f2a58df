"""A provider served over real HTTP, and a person's browser driven with ``requests``.

Used by the independent-RP test (openid-client in Node) and the demo journey test; reusable
for card sign-in journeys (write another ``drive`` that does the card page).
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from idp.demo.serve import ServedApp
from tests.conftest import Student, csrf_of, use_unique_redis_prefix

REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class LiveProvider:
    """A provider app served on 127.0.0.1 with the issuer equal to its real address."""

    app: Any
    served: ServedApp

    @property
    def issuer(self) -> str:
        return self.app.extensions["mynagate"].settings.issuer

    @property
    def services(self) -> Any:
        return self.app.extensions["mynagate"]

    def stop(self) -> None:
        self.served.stop()
        if hasattr(self.services.store, "flush_prefix"):
            self.services.store.flush_prefix()  # this run's own keys only
        self.services.db.dispose()


def start_live_provider(settings_overrides: Mapping[str, Any]) -> LiveProvider:
    """Bind a free port first, then build the app whose issuer is that port's URL (the
    issuer must equal the URL the relying party discovers)."""
    from idp.app import create_app
    from idp.settings import Settings

    served = ServedApp("127.0.0.1", 0)
    try:
        settings = Settings.load({**settings_overrides, "issuer": served.url}, environ={})
        app = create_app(settings)
        # A key prefix of this run's own in the shared test Redis db (see docs/testing.md).
        use_unique_redis_prefix(app)
    except BaseException:
        served.stop()
        raise
    served.start(app)
    return LiveProvider(app=app, served=served)


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html) or \
        re.search(rf'type="hidden" name="{name}" value="([^"]*)"', html) or \
        re.search(rf'name="{name}" value="([^"]*)"', html)
    return match.group(1) if match else ""


class HttpBrowser:
    """Follows redirects by hand through the provider's pages, filling them like a person:
    the password sign-in form, the consent page (allow or deny) and the logout question."""

    def __init__(self, student: Student | None = None, *, allow: bool = True) -> None:
        self.http = requests.Session()
        self.student = student
        self.allow = allow
        self.visited: list[str] = []

    def _get(self, url: str) -> requests.Response:
        self.visited.append(url)
        return self.http.get(url, allow_redirects=False, timeout=30)

    def _post(self, url: str, data: dict) -> requests.Response:
        self.visited.append(url)
        return self.http.post(url, data=data, allow_redirects=False, timeout=30)

    def go(self, url: str, *, stop_at: str | None = None,
           response: requests.Response | None = None) -> tuple[str, requests.Response]:
        """Open ``url`` (or continue from ``response``) and act on each provider page until
        a redirect to ``stop_at`` (returned without being followed) or a page no one needs to
        act on. Returns (final URL, last response)."""
        if response is None:
            response = self._get(url)
        for _ in range(25):
            if response.status_code in REDIRECTS:
                url = urljoin(response.url, response.headers["Location"])
                if stop_at and url.startswith(stop_at):
                    return url, response
                response = self._get(url)
                continue
            path = urlsplit(response.url).path
            html = response.text
            if response.status_code == 200 and path == "/login" and 'name="password"' in html:
                assert self.student is not None, "a sign-in page needs a student"
                response = self._post(response.url.split("?")[0], {
                    "csrf_token": csrf_of(html), "txn": _hidden(html, "txn"),
                    "school": self.student.school_code, "login_id": self.student.login_id,
                    "password": self.student.password})
                assert response.status_code in REDIRECTS, response.text[:500]
                continue
            if response.status_code == 200 and path == "/consent":
                data = {"csrf_token": csrf_of(html), "txn": _hidden(html, "txn")}
                data["allow" if self.allow else "deny"] = "1"
                response = self._post(response.url.split("?")[0], data)
                continue
            if response.status_code == 200 and path == "/logout" and 'name="confirm"' in html:
                found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
                data = {name: htmllib.unescape(value) for name, value in found}
                data["confirm"] = "1"
                response = self._post(response.url.split("?")[0], data)
                continue
            return response.url, response
        raise AssertionError(f"too many steps: {self.visited[-5:]}")
