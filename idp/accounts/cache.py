"""The signed-in account and its consents, read once per process (``idp.store.row_cache``).

Every step of an SSO flow looked up the same account (authorize, token, UserInfo) and the
consent (authorize). A committed change to an account (locked, deactivated, a new grade, a
password, its tokens revoked) or to a consent (given, withdrawn) drops it in every process
at once, so a locked account or a withdrawn consent stops working everywhere, as before.
The account comes with its school (claims need it); a school renamed shows after the
entry's TTL, but an account moved to another school (idp.admin.transfers changes its row)
is dropped at once like any other change of the account.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from idp.store.bus import InvalidationBus
from idp.store.models import Account, Consent
from idp.store.row_cache import RowCache, watch_changes

ACCOUNTS = "accounts"
CONSENTS = "consents"


class AccountCache(RowCache[Account]):
    def __init__(self, database: Any, bus: InvalidationBus, **options: Any) -> None:
        self._db = database
        super().__init__(ACCOUNTS, bus, self._read, **options)
        watch_changes(database.sessions, bus, Account, ACCOUNTS, lambda row: [row.id])

    def _read(self, account_id: Any) -> Account | None:
        if not isinstance(account_id, str) or len(account_id) > 32:
            return None
        with self._db.read() as db:
            return db.get(Account, account_id)  # the school is joined (lazy="joined")

    def active(self, account_id: str) -> Account | None:
        """The account if it exists, is active and is not locked."""
        account = self.get(account_id)
        if account is None or not account.active or account.locked:
            return None
        return account


class ConsentCache(RowCache[frozenset]):
    """(account id, client id) → the scopes the person agreed to, or None for no consent
    (cached too: keys come from a signed-in account and a registered client)."""

    def __init__(self, database: Any, bus: InvalidationBus, **options: Any) -> None:
        self._db = database
        super().__init__(CONSENTS, bus, self._read, cache_missing=True, **options)
        watch_changes(database.sessions, bus, Consent, CONSENTS,
                      lambda row: [row.account_id])

    def _read(self, key: Any) -> frozenset | None:
        account_id, client_id = key
        with self._db.read() as db:
            scopes = db.scalar(select(Consent.scopes).where(
                Consent.account_id == account_id, Consent.client_id == client_id))
        return None if scopes is None else frozenset(scopes or [])

    def scopes(self, account_id: str, client_id: str) -> frozenset | None:
        return self.get((account_id, client_id))
