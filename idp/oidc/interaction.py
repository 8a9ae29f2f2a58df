"""Login transactions: an authorization request waiting for the person to sign in or agree.

Kept in the short-lived store under its own key and bound to the browser that started it, so
a transaction id seen elsewhere is useless. The authorization request is replayed from its
stored parameters once the person is done.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import session

from idp.accounts import linking
from idp.services import services
from idp.signin.current import browser_id

TXN_PARAM = "mynagate_txn"
KEY_PREFIX = "txn:"


@dataclass
class LoginTransaction:
    """One authorization request in progress. The stored record is this dataclass without
    ``id`` (the id is in the key)."""

    id: str
    browser: str
    params: dict[str, str]
    started: float
    card_required: bool = False
    client_name: str = ""
    client_id: str = ""
    authenticated_at: float | None = None
    consented_at: float | None = None
    denied: bool = False

    @staticmethod
    def key_for(txn_id: str) -> str:
        return KEY_PREFIX + txn_id

    @property
    def key(self) -> str:
        return self.key_for(self.id)

    @classmethod
    def start(cls, params: dict[str, str], *, card_required: bool = False,
              client_name: str = "", client_id: str = "") -> LoginTransaction:
        # A new authorization request is a new sign-in: a card tapped (and not linked) in an
        # earlier one must not be offered to whoever signs in now (shared school PCs).
        session.pop(linking.SESSION_KEY, None)
        txn = cls(id=secrets.token_urlsafe(24), browser=browser_id(), params=params,
                  started=time.time(), card_required=card_required, client_name=client_name,
                  client_id=client_id)
        txn.save()
        return txn

    @classmethod
    def load(cls, txn_id: str | None) -> LoginTransaction | None:
        """The transaction ``txn_id`` if it is alive and was started by this browser."""
        if not txn_id or not isinstance(txn_id, str) or len(txn_id) > 64:
            return None
        record = services().store.get(cls.key_for(txn_id))
        if record is None or record.get("browser") != browser_id():
            return None
        return cls.from_record(txn_id, record)

    @classmethod
    def from_record(cls, txn_id: str, record: dict[str, Any]) -> LoginTransaction:
        names = {f.name for f in dataclasses.fields(cls)} - {"id"}
        return cls(id=txn_id, **{k: v for k, v in record.items() if k in names})

    def to_record(self) -> dict[str, Any]:
        # A shallow copy: dataclasses.asdict deep-copies every value on each save.
        record = {name: getattr(self, name) for name in _RECORD_FIELDS}
        record["params"] = dict(self.params)
        return record

    def save(self, *, if_alive: bool = False) -> None:
        """Store the transaction; with ``if_alive``, only while its record still exists (it
        ended meanwhile, or an answer's batch whose outcome is unknown ended it: it stays
        ended)."""
        svc = services()
        write = svc.store.put_if_present if if_alive else svc.store.put
        write(self.key, self.to_record(), svc.settings.login_transaction_lifetime)

    def change(self, **changes: Any) -> None:
        """Change fields here, not in the store (:meth:`save` stores them)."""
        for name, value in changes.items():
            if name == "id" or name not in self.__dataclass_fields__:
                raise AttributeError(f"a login transaction has no field {name!r}")
            setattr(self, name, value)

    def finish(self) -> None:
        """The authorization request was answered: the transaction cannot be resumed again."""
        services().store.drop(self.key)  # with the code's batch when one is open

    #: True once the request's answer is made and its writes are sent (not a field: never
    #: stored). An answered transaction is not saved again, which would bring it back.
    answered = False

    def signed_in_during(self, auth_time: int) -> bool:
        """Whether a sign-in at ``auth_time`` happened in this transaction (a second of
        slack: auth_time is whole seconds, ``started`` is not)."""
        return bool(self.authenticated_at) and auth_time >= int(self.started) - 1

    @property
    def answered_consent(self) -> bool:
        return bool(self.consented_at or self.denied)

    def resume_url(self) -> str:
        """Where the browser goes to continue the authorization request."""
        params = dict(self.params)
        params[TXN_PARAM] = self.id
        return "/authorize?" + urlencode(params)


# What a stored record holds: the dataclass's fields but the id (which is in the key).
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(LoginTransaction) if f.name != "id")
