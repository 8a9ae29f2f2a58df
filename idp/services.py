"""The long-lived objects one app instance shares: settings, database, short-lived store,
signing keys, throttle and the card verifier. Built once by :func:`idp.app.create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from idp.keys import SigningKeys
from idp.settings import Settings
from idp.signin.throttle import Throttle
from idp.store.db import Database
from idp.store.shortlived import ShortLivedStore


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ShortLivedStore
    keys: SigningKeys
    throttle: Throttle
    card_verifier: Any = None  # idp.jpki.verifier.CardVerifier, set up by idp.auth.card
    extras: dict[str, Any] = field(default_factory=dict)


def services() -> Services:
    return current_app.extensions["mynagate"]
