"""The provider's own help pages. ``GET /help/card-bridge``: how a teacher (or a parent, or the
school's IT person) installs and starts the card bridge on a PC with a card reader, and how
a tablet's code is typed into it. Every "how do I install the card app?" message of the
provider links here, so the instructions are the ones for this provider (its own origin in
the commands) and never a repository path.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from idp.services import services

bp = Blueprint("help", __name__)

# The bridge's default port (card_bridge.server.DEFAULT_PORT; the provider does not import
# the bridge, tests/auth/test_help_pages.py keeps the two equal).
BRIDGE_PORT = 47263


@bp.get("/help/card-bridge")
def card_bridge() -> str:
    settings = services().settings
    return render_template(
        "help/card_bridge.html",
        origin=settings.issuer_origin,
        bridge_page=f"http://127.0.0.1:{BRIDGE_PORT}/",
    )
