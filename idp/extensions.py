"""The Flask extensions every room shares, created once without an app (bound to it by
:func:`idp.app.create_app`): modules mark their own views exempt from CSRF at import time
instead of reaching back into the app factory."""

from __future__ import annotations

from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
babel = Babel()
