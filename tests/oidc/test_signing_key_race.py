"""Two provider instances starting at once on an empty key list (two containers of the
compose file, or two hosts) must end up with one key list: one active and one next key per
algorithm, every private half in the shared directory. Without a guard both would see no
key and both would create one."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from idp import keys as signing
from idp.store.db import Database
from idp.store.models import SigningKey
from tests.oidc.test_signing_keys import keys_dir, own_database  # noqa: F401 (fixtures)


def test_two_instances_starting_at_once_make_one_key_list(own_database, keys_dir,  # noqa: F811
                                                          monkeypatch):
    real_generate = signing._generate

    def slow_generate(alg):
        # Widen the window between "no key yet" and the insert, as a slow start would.
        key = real_generate(alg)
        time.sleep(0.2)
        return key

    monkeypatch.setattr(signing, "_generate", slow_generate)
    url = own_database.engine.url.render_as_string(hide_password=False)
    instances = [Database(url), Database(url)]  # two engines: two separate processes' pools
    for database in instances:
        # Connected once beforehand: SQLite's first connection switches the file to WAL, which
        # two connections cannot do at the same instant (nor does anyone run two SQLite
        # instances); the race under test is the key list's.
        database.ping()
    start = threading.Barrier(len(instances))
    results: list[object] = []

    def start_instance(database):
        start.wait()
        try:
            keys = signing.SigningKeys(database, keys_dir, 3600)
            keys.refresh()
            results.append((keys.kid("RS256"), keys.kid("ES256")))
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=start_instance, args=(db,)) for db in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for database in instances:
        database.dispose()

    assert not [r for r in results if isinstance(r, Exception)], results
    with own_database.session() as db:
        listed = sorted((row.alg, row.state) for row in db.scalars(select(SigningKey)))
        kids = set(db.scalars(select(SigningKey.kid)))
    assert listed == [("ES256", "active"), ("ES256", "next"),
                      ("RS256", "active"), ("RS256", "next")]
    # Both instances sign with the same keys from their very first token.
    assert results[0] == results[1]
    # The directory holds exactly the listed keys' private halves.
    assert {path.name.removesuffix(".jwk.json") for path in keys_dir.glob("*.jwk.json")} == kids
