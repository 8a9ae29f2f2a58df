"""Signing keys for ID tokens: RS256 (default) and ES256, as JWK files in ``IDP_KEYS_DIR``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from joserfc.jwk import ECKey, KeySet, RSAKey

KEY_FILES = {"RS256": "rs256.jwk.json", "ES256": "es256.jwk.json"}


class SigningKeys:
    def __init__(self, keys: dict[str, RSAKey | ECKey]) -> None:
        self._by_alg = keys

    @classmethod
    def load_or_create(cls, directory: str) -> SigningKeys:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        keys: dict[str, RSAKey | ECKey] = {}
        for alg, filename in KEY_FILES.items():
            file = path / filename
            if file.exists():
                data = json.loads(file.read_text())
                key = (RSAKey if alg == "RS256" else ECKey).import_key(data)
            else:
                key = (RSAKey.generate_key(2048, auto_kid=True) if alg == "RS256"
                       else ECKey.generate_key("P-256", auto_kid=True))
                data = key.as_dict(private=True)
                data.update(alg=alg, use="sig")
                tmp = file.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    json.dump(data, fh)
                os.replace(tmp, file)
                key = (RSAKey if alg == "RS256" else ECKey).import_key(data)
            keys[alg] = key
        return cls(keys)

    def for_alg(self, alg: str) -> RSAKey | ECKey:
        return self._by_alg[alg]

    def kid(self, alg: str) -> str:
        return self._by_alg[alg].kid or ""

    def public_jwks(self) -> dict:
        out = []
        for alg, key in self._by_alg.items():
            data = key.as_dict(private=False)
            data.update(alg=alg, use="sig", kid=key.kid)
            out.append(data)
        return {"keys": out}

    def public_keyset(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())
