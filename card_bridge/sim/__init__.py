"""A virtual JPKI card for tests and demos: `VirtualJpkiCard` holds the card's state,
`VpcdCardClient` plugs it into pcscd through the vsmartcard vpcd driver.

The names load on first use: the simulator needs `cryptography` (the `simulator` extra),
which a school PC's install does not have, and `card-bridge --help` must work without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

DEFAULT_VPCD_PORT = 35963  # vpcd's first slot, "Virtual PCD 00 00"

if TYPE_CHECKING:
    from card_bridge.sim.model import VirtualJpkiCard, make_atr
    from card_bridge.sim.vpcd import VpcdCardClient

__all__ = ["DEFAULT_VPCD_PORT", "VirtualJpkiCard", "VpcdCardClient", "make_atr"]


def __getattr__(name: str) -> Any:
    if name in ("VirtualJpkiCard", "make_atr"):
        from card_bridge.sim import model

        return getattr(model, name)
    if name == "VpcdCardClient":
        from card_bridge.sim.vpcd import VpcdCardClient

        return VpcdCardClient
    raise AttributeError(f"module 'card_bridge.sim' has no attribute {name!r}")
