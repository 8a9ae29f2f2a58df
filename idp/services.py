"""The long-lived objects one app instance shares: settings, database, short-lived store,
signing keys, throttle and the card sign-in service. Built once by
:func:`idp.app.create_app`; the types are imported only for the type checker, so every room
may read this holder without importing the rooms above it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from idp.accounts.cache import AccountCache, ConsentCache
    from idp.auth.card import CardService
    from idp.clients.cache import ClientCache
    from idp.event_log import EventLog
    from idp.keys import SigningKeys
    from idp.settings import Settings
    from idp.signin.throttle import Throttle
    from idp.store.bus import InvalidationBus
    from idp.store.db import Database
    from idp.store.shortlived import ShortLivedStore


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ShortLivedStore
    keys: SigningKeys
    throttle: Throttle
    card: CardService  # the card verifier, challenges and CRL refresher (idp.auth.card)
    bus: InvalidationBus  # tells every process to drop what it cached (idp.store.bus)
    clients: ClientCache  # client rows read once per process (idp.clients.cache)
    accounts: AccountCache  # accounts, with their school (idp.accounts.cache)
    consents: ConsentCache  # (account, client) → agreed scopes (idp.accounts.cache)
    events: EventLog  # an SSO flow's audit and disclosure records (idp.event_log)


def services() -> Services:
    return current_app.extensions["mynagate"]
