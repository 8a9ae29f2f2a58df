"""Page fragments rendered once per language and kept: sentences that never change with
the request (the card page's two dozen messages and steps), so a page that shows them on
every card sign-in does not translate and escape each of them again each time.

Used from a template as a call block, around text that holds nothing of the request::

    {% call once_per_language("card-messages") %} ... {% endcall %}

A fragment with anything of the request in it (a token, a name, a URL with a transaction)
must not be put inside one: it would be shown to the next person. Plain links to the
provider's own pages (``url_for('static', ...)``, a help page) may: a fragment is kept per
language *and* per mount point (the WSGI script root), the one part of such a URL that
can differ between two requests.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, request
from flask_babel import get_locale
from markupsafe import Markup


def once_per_language(key: str, caller: Callable[[], str]) -> Markup:
    """The block's output for this request's language, rendered on its first use and kept
    by the app. When templates reload (development, debug), it is rendered each time, so
    an edit shows at once."""
    if current_app.jinja_env.auto_reload:
        return Markup(caller())  # noqa: S704 - the template's own output, already escaped
    kept: dict[tuple[str, str, str], Markup] = current_app.extensions.setdefault(
        "mynagate.fragments", {})
    cache_key = (key, str(get_locale() or ""), request.script_root)
    found = kept.get(cache_key)
    if found is None:
        # Two first renders at once make the same text; setdefault keeps one (atomic).
        found = kept.setdefault(cache_key, Markup(caller()))  # noqa: S704 - as above
    return found
