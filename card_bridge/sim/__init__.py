"""A virtual JPKI card for tests and demos: `VirtualJpkiCard` holds the card's state,
`VpcdCardClient` plugs it into pcscd through the vsmartcard vpcd driver."""

from card_bridge.sim.model import VirtualJpkiCard, make_atr
from card_bridge.sim.vpcd import DEFAULT_VPCD_PORT, VpcdCardClient

__all__ = ["DEFAULT_VPCD_PORT", "VirtualJpkiCard", "VpcdCardClient", "make_atr"]
